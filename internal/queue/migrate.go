package queue

import (
	"bytes"
	"container/heap"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Schema version 1 → 2, run by Open inside its one transaction: either the
// whole upgrade is committed or the file stays as it was.
//
// Version 1 kept each terminal's FIFO as keys terminal 0x00 seq (one
// insertion point per terminal), the unsent checkouts in a bucket of their
// own, and the active checkout and due entry per terminal in two more.
// Version 2 keeps the queued checkouts in the line (FIFOs linked through
// it), the submitting ones in a bucket of their own, and one entry per
// terminal.
// Records keep their JSON encoding (format 1) until they next change:
// decode reads both formats.

// The version 1 buckets this upgrade replaces.
var (
	bV1FIFO    = []byte("fifo")    // terminal 0x00 seq → next-attempt time (queued)
	bV1Unsent  = []byte("unsent")  // seq → nil (queued or submitting)
	bV1Active  = []byte("active")  // terminal → seq
	bV1DueTerm = []byte("dueterm") // terminal → its key in due
)

func migrateV1(tx *bolt.Tx) error {
	fifo, unsent, active := tx.Bucket(bV1FIFO), tx.Bucket(bV1Unsent), tx.Bucket(bV1Active)
	if fifo == nil || unsent == nil || active == nil {
		return fmt.Errorf("%w: a version 1 file without its fifo, unsent or active bucket", ErrCorrupt)
	}
	for _, name := range [][]byte{bLine, bSubmitting, bTerm} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	// The due entries are rebuilt from the FIFOs below.
	if err := tx.DeleteBucket(bDue); err != nil && err != bolt.ErrBucketNotFound {
		return fmt.Errorf("drop due: %w", err)
	}
	if _, err := tx.CreateBucket(bDue); err != nil {
		return fmt.Errorf("create bucket due: %w", err)
	}
	b := (&Store{}).openTx(tx)
	terms := map[string]*termState{} // one per terminal
	// FIFOs: the old keys are terminal-major, acceptance order within one
	// terminal. The line is written in sequence order (appends: keys
	// written out of order into one transaction's pages cost seconds per
	// 100,000), merging one cursor per terminal.
	var heads fifoHeap
	c := fifo.Cursor()
	for k, _ := c.First(); k != nil; {
		if len(k) < 9 || k[len(k)-9] != 0 {
			return fmt.Errorf("%w: malformed version 1 fifo key %x", ErrCorrupt, k)
		}
		prefix := slices.Clone(k[:len(k)-8])
		fc := &fifoCursor{c: fifo.Cursor(), prefix: prefix}
		fc.k, fc.v = fc.c.Seek(prefix)
		heads = append(heads, fc)
		k, _ = c.Seek(append(slices.Clone(prefix[:len(prefix)-1]), 1)) // the next terminal
	}
	heap.Init(&heads)
	for heads.Len() > 0 {
		fc := heads[0]
		seq, at := seqOf(fc.k), slices.Clone(fc.v)
		if len(fc.v) != 8 {
			return fmt.Errorf("%w: malformed version 1 fifo entry %x", ErrCorrupt, fc.k)
		}
		term := string(fc.prefix[:len(fc.prefix)-1])
		t := terms[term]
		if t == nil {
			t = &termState{head: seq}
			terms[term] = t
		}
		var next uint64
		fc.k, fc.v = fc.c.Next()
		if fc.k != nil && bytes.HasPrefix(fc.k, fc.prefix) && len(fc.k) == len(fc.prefix)+8 {
			next = seqOf(fc.k)
			if next <= seq {
				return fmt.Errorf("%w: version 1 fifo of %s out of order", ErrCorrupt, term)
			}
			heap.Fix(&heads, 0)
		} else {
			heap.Pop(&heads)
		}
		if err := b.linePut(seq, lineEntry{prev: t.tail, next: next, at: at}); err != nil {
			return err
		}
		t.tail = seq
	}
	// Submitting checkouts: unsent but in no FIFO.
	c = unsent.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 8 {
			return fmt.Errorf("%w: malformed version 1 unsent entry %x", ErrCorrupt, k)
		}
		if b.line.Get(k) == nil {
			if err := b.submitting.Put(k, nil); err != nil {
				return err
			}
		}
	}
	c = active.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(v) != 8 {
			return fmt.Errorf("%w: malformed version 1 active entry for %s", ErrCorrupt, k)
		}
		t := terms[string(k)]
		if t == nil {
			t = &termState{}
			terms[string(k)] = t
		}
		t.active = seqOf(v)
	}
	for term, t := range terms {
		if t.active == 0 {
			h, ok := b.lineGet(t.head)
			if !ok {
				return fmt.Errorf("%w: terminal %s's FIFO head is not queued", ErrCorrupt, term)
			}
			t.dueAt = h.at
			if err := b.due.Put(t.dueKey(), []byte(term)); err != nil {
				return err
			}
		}
		if err := b.termPut([]byte(term), *t); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{bV1FIFO, bV1Unsent, bV1Active, bV1DueTerm} {
		if err := tx.DeleteBucket(name); err != nil && err != bolt.ErrBucketNotFound {
			return fmt.Errorf("drop %s: %w", name, err)
		}
	}
	return nil
}

// fifoCursor walks one terminal's version 1 FIFO keys.
type fifoCursor struct {
	c      *bolt.Cursor
	prefix []byte // terminal 0x00
	k, v   []byte
}

// fifoHeap orders the terminals' cursors by the sequence they are at.
type fifoHeap []*fifoCursor

func (h fifoHeap) Len() int           { return len(h) }
func (h fifoHeap) Less(i, j int) bool { return seqOf(h[i].k) < seqOf(h[j].k) }
func (h fifoHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *fifoHeap) Push(x any)        { *h = append(*h, x.(*fifoCursor)) }
func (h *fifoHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
