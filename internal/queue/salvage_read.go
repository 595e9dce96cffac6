package queue

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// Reading the damaged file: its meta, the store's own checks, the accept
// log, and what is known of the records that could not be copied.

// readMeta reads the old file's schema, instance id, sequences and
// counters.
func (sv *salvager) readMeta() error {
	var schema uint32
	var inst []byte
	err := guard(func() error {
		return sv.ro.View(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bMeta)
			if meta == nil {
				return fmt.Errorf("%w: no meta bucket (not a posbridge queue file)", ErrSchema)
			}
			v := meta.Get(kSchema)
			if len(v) != 4 {
				return fmt.Errorf("%w: the meta bucket has no schema version", ErrSchema)
			}
			schema = binary.BigEndian.Uint32(v)
			inst = bytes.Clone(meta.Get(kInstance))
			if len(inst) != 4 {
				return errors.New("the meta bucket has no instance id")
			}
			if b := tx.Bucket(bCheckouts); b != nil {
				sv.dbSeq = b.Sequence()
			}
			if b := tx.Bucket(bReq); b != nil {
				sv.reqSeq = b.Sequence()
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("queue: salvage %s: %w", sv.src.path, err)
	}
	if schema > SchemaVersion {
		return fmt.Errorf("queue: salvage %s: schema version %d is newer than this posbridge's %d (use the release that wrote it): %w",
			sv.src.path, schema, SchemaVersion, ErrSchema)
	}
	sv.inst, sv.src.inst = inst, hex.EncodeToString(inst)
	sv.rep.Instance, sv.rep.Schema = sv.src.inst, schema
	return nil
}

// checkOld runs the store's own checks on the old file, under the guard.
func (sv *salvager) checkOld() {
	if sv.rep.Schema < SchemaVersion {
		return // the version 1 layout: Open upgrades it; Check reads version 2
	}
	err := sv.src.Check(sv.ctx)
	if err == nil {
		err = sv.src.CheckRequests(sv.ctx)
	}
	if err != nil {
		sv.rep.Damaged, sv.rep.CheckError = true, err.Error()
	}
}

// readLog reads the accept log's frames of this database, by the rules
// of its replay (wal.go): consecutive sequences from the start, up to the
// first torn frame.
func (sv *salvager) readLog(path string) error {
	sv.logged = map[uint64]*walEntry{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: salvage: read accept log: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("queue: salvage: read accept log %s: %w", path, err)
	}
	var prev uint64
	for off := 0; off+walFrameHdr <= len(data); {
		length := int(binary.BigEndian.Uint32(data[off:]))
		if length == 0 {
			if off%walPage == 0 {
				break
			}
			off = (off/walPage + 1) * walPage
			continue
		}
		valid := length >= walFixed && length <= walMaxFrame && off+walFrameHdr+length <= len(data)
		if valid {
			valid = crc32.Checksum(data[off+walFrameHdr:off+walFrameHdr+length], castagnoli) == binary.BigEndian.Uint32(data[off+4:])
		}
		if !valid {
			if pad := walPage - off%walPage; pad < 4 && allZero(data[off:off+pad]) {
				off += pad
				continue
			}
			break
		}
		payload := data[off+walFrameHdr : off+walFrameHdr+length]
		seq := binary.BigEndian.Uint64(payload[4:12])
		if prev != 0 && seq != prev+1 {
			break
		}
		if !bytes.Equal(payload[:4], sv.inst) {
			if seq > sv.dbSeq {
				return fmt.Errorf("queue: salvage: the accept log %s holds checkouts of another database (instance %x, this one is %s); "+
					"if the database was replaced on purpose, move the log away: %w", path, payload[:4], sv.src.inst, ErrAcceptLog)
			}
			break
		}
		prev = seq
		off += walFrameHdr + length
		enc := bytes.Clone(payload[walFixed:])
		r, err := sv.src.decode(seq, enc)
		if err != nil {
			break // what the replay would refuse was never applied
		}
		sv.logged[seq] = &walEntry{rec: r, enc: enc}
		sv.logMax = max(sv.logMax, seq)
	}
	return nil
}

// describeMissing sorts the sequence numbers not copied into lost (a
// record could not be read, or something names one that is not there)
// and absent (pruned), with what the indexes and the log tell of them.
func (sv *salvager) describeMissing(tx *bolt.Tx, missing map[uint64]string) {
	if len(missing) == 0 {
		return
	}
	known := map[uint64]*LostCheckout{}
	note := func(seq uint64) *LostCheckout {
		if _, ok := missing[seq]; !ok {
			return nil
		}
		l := known[seq]
		if l == nil {
			l = &LostCheckout{Seq: seq}
			known[seq] = l
		}
		return l
	}
	walk := func(name []byte, fn func(k, v []byte)) {
		err := guard(func() error {
			bk := tx.Bucket(name)
			if bk == nil {
				return nil
			}
			return bk.ForEach(func(k, v []byte) error { fn(k, v); return nil })
		})
		if err != nil {
			sv.rep.Damaged = true
			sv.rep.UnreadableIndexes = append(sv.rep.UnreadableIndexes, string(name))
		}
	}
	walk(bIdem, func(k, v []byte) {
		if len(v) == 8 {
			if l := note(seqOf(v)); l != nil {
				l.IdempotencyKey = string(k)
			}
		}
	})
	walk(bDeadline, func(k, _ []byte) {
		if len(k) == 16 {
			if l := note(seqOf(k)); l != nil && l.State == "" {
				l.State = "not final"
			}
		}
	})
	walk(bDone, func(k, _ []byte) {
		if len(k) == 16 {
			if l := note(seqOf(k)); l != nil {
				l.State = "final"
			}
		}
	})
	walk(bLine, func(k, _ []byte) {
		if len(k) == 8 {
			if l := note(seqOf(k)); l != nil {
				l.State = pos.StateQueued
			}
		}
	})
	walk(bSubmitting, func(k, _ []byte) {
		if len(k) == 8 {
			if l := note(seqOf(k)); l != nil {
				l.State = pos.StateSubmitting
			}
		}
	})
	walk(bTerm, func(k, v []byte) {
		if len(v) == termLen {
			if l := note(binary.BigEndian.Uint64(v)); l != nil {
				l.TerminalID = string(k)
				if l.State == "" || l.State == "not final" {
					l.State = "active (submitting, sent or on_terminal)"
				}
			}
		}
	})
	seqs := make([]uint64, 0, len(missing))
	for seq := range missing {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		why := missing[seq]
		l := known[seq]
		if e := sv.logged[seq]; e != nil {
			if l == nil {
				l = &LostCheckout{Seq: seq}
			}
			if why == "" {
				why = "the accept log has it but the database does not"
			}
			r := e.rec
			l.IdempotencyKey, l.TerminalID, l.TillRef, l.Amount = r.IdempotencyKey, r.TerminalID, r.TillRef, r.Amount
		}
		if why == "" && l == nil {
			sv.rep.Absent++ // pruned
			continue
		}
		if l == nil {
			l = &LostCheckout{Seq: seq}
		}
		if why == "" {
			why = "not in the database, but its indexes name it"
		}
		l.Why, l.ID, l.InvoiceNumber = why, sv.src.formatID(seq), sv.src.formatInvoice(seq)
		sv.rep.Lost = append(sv.rep.Lost, *l)
	}
}
