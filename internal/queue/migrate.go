package queue

import (
	"fmt"

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
	// terminal, so each entry's successor is the next key if it has the
	// same terminal.
	var pending struct {
		seq  uint64
		e    lineEntry
		term string
	}
	flush := func(next uint64) error {
		if pending.seq == 0 {
			return nil
		}
		pending.e.next = next
		return b.linePut(pending.seq, pending.e)
	}
	c := fifo.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) < 9 || k[len(k)-9] != 0 || len(v) != 8 {
			return fmt.Errorf("%w: malformed version 1 fifo entry %x", ErrCorrupt, k)
		}
		term, seq := string(k[:len(k)-9]), seqOf(k)
		t := terms[term]
		if t == nil {
			t = &termState{}
			terms[term] = t
		}
		var prev uint64
		if pending.seq != 0 && pending.term == term {
			if seq <= pending.seq {
				return fmt.Errorf("%w: version 1 fifo of %s out of order", ErrCorrupt, term)
			}
			if err := flush(seq); err != nil {
				return err
			}
			prev = pending.seq
		} else if err := flush(0); err != nil {
			return err
		}
		if t.head == 0 {
			t.head = seq
		}
		t.tail = seq
		pending.seq, pending.term = seq, term
		pending.e = lineEntry{prev: prev, at: append([]byte(nil), v...)}
	}
	if err := flush(0); err != nil {
		return err
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
