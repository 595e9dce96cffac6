package queue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// writeIndexes writes every checkout index, each in key order, the
// terminals' entries, the counters and the sequence.
func (sv *salvager) writeIndexes(idem map[string]uint64, deadline, done [][]byte, queued []queuedRef, settled []*walEntry, highest uint64) error {
	put := func(name []byte, fill float64, n int, kv func(i int) ([]byte, []byte)) error {
		for from := 0; from < n; from += 4 * salvageChunk {
			err := sv.dst.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket(name)
				bk.FillPercent = fill
				for i := from; i < min(n, from+4*salvageChunk); i++ {
					k, v := kv(i)
					if err := bk.Put(k, v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("queue: salvage: write index %s: %w", name, err)
			}
		}
		return nil
	}
	keys := make([]string, 0, len(idem))
	for k := range idem {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if err := put(bIdem, bolt.DefaultFillPercent, len(keys), func(i int) ([]byte, []byte) {
		return []byte(keys[i]), seqKey(idem[keys[i]])
	}); err != nil {
		return err
	}
	for _, ix := range []struct {
		name []byte
		keys [][]byte
	}{{bDeadline, deadline}, {bDone, done}} {
		slices.SortFunc(ix.keys, bytes.Compare)
		if err := put(ix.name, appendFill, len(ix.keys), func(i int) ([]byte, []byte) { return ix.keys[i], nil }); err != nil {
			return err
		}
	}
	// The FIFOs: each terminal's queued checkouts in sequence order,
	// linked through the line (queued is in sequence order).
	terms := map[string]*termState{}
	links := make([]lineEntry, len(queued))
	last := map[string]int{}
	for i, q := range queued {
		t := terms[q.term]
		if t == nil {
			t = &termState{head: q.seq, dueAt: q.at}
			terms[q.term] = t
		}
		links[i] = lineEntry{at: q.at}
		if j, ok := last[q.term]; ok {
			links[i].prev = queued[j].seq
			links[j].next = q.seq
		}
		last[q.term] = i
		t.tail = q.seq
	}
	if err := put(bLine, appendFill, len(queued), func(i int) ([]byte, []byte) {
		e := links[i]
		v := make([]byte, 0, lineLen)
		v = binary.BigEndian.AppendUint64(v, e.prev)
		v = binary.BigEndian.AppendUint64(v, e.next)
		return seqKey(queued[i].seq), append(v, e.at...)
	}); err != nil {
		return err
	}
	var submitting [][]byte
	for _, e := range settled {
		r := e.rec
		if !isActive(r.State) {
			continue
		}
		t := terms[r.TerminalID]
		if t == nil {
			t = &termState{}
			terms[r.TerminalID] = t
		}
		t.active = r.Seq
		if r.State == pos.StateSubmitting {
			submitting = append(submitting, seqKey(r.Seq))
		}
	}
	err := sv.dst.Update(func(tx *bolt.Tx) error {
		b := (&Store{}).openTx(tx)
		for _, k := range submitting {
			if err := b.submitting.Put(k, nil); err != nil {
				return err
			}
		}
		for term, t := range terms {
			if k := t.dueKey(); k != nil {
				if err := b.due.Put(k, []byte(term)); err != nil {
					return err
				}
			}
			if err := b.termPut([]byte(term), *t); err != nil {
				return err
			}
		}
		if err := b.writeCounters(sv.counters); err != nil {
			return err
		}
		return b.checkouts.SetSequence(highest)
	})
	if err != nil {
		return fmt.Errorf("queue: salvage: write terminals and counters: %w", err)
	}
	return nil
}
