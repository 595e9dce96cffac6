package queue

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// Check walks every record and index in one read transaction and reports
// the first disagreement (an error matching ErrCorrupt): each record's
// index entries exist, each index entry points to a matching record, the
// counters equal a recount, and per terminal at most one checkout is active
// and the due entry is its FIFO head. It streams: memory stays bounded by
// the number of terminals, not of checkouts. For tests and `doctor`.
func (s *Store) Check(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		var want counters
		var n int
		var entries [6]int // idem, fifo, unsent, active, deadline, done
		err := b.checkouts.ForEach(func(k, v []byte) error {
			if n++; n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			r, err := s.decode(seqOf(k), v)
			if err != nil {
				return err
			}
			if r.ID != s.formatID(r.Seq) {
				return errIndex("checkout #%d has id %s", r.Seq, r.ID)
			}
			i := slot(r.State)
			if i < 0 {
				return errIndex("checkout %s has unknown state %q", r.ID, r.State)
			}
			want.byState[i]++
			if isUnsent(r.State) {
				want.unsentAmount += int64(r.Amount)
			}
			has := func(bk *bolt.Bucket, key []byte, in bool, name string, count int) error {
				got := bk.Get(key) != nil
				if got != in {
					return errIndex("checkout %s (%s): %s entry present=%v, want %v", r.ID, r.State, name, got, in)
				}
				if in {
					entries[count]++
				}
				return nil
			}
			if r.IdempotencyKey != "" {
				v := b.idem.Get([]byte(r.IdempotencyKey))
				if v == nil || seqOf(v) != r.Seq {
					return errIndex("checkout %s: idempotency key does not point to it", r.ID)
				}
				entries[0]++
			}
			if err := has(b.fifo, fifoKey(r.TerminalID, r.Seq), r.State == pos.StateQueued, "fifo", 1); err != nil {
				return err
			}
			if err := has(b.unsent, seqKey(r.Seq), isUnsent(r.State), "unsent", 2); err != nil {
				return err
			}
			if isActive(r.State) {
				v := b.active.Get([]byte(r.TerminalID))
				if v == nil || seqOf(v) != r.Seq {
					return errIndex("checkout %s (%s): terminal %s's active entry does not point to it", r.ID, r.State, r.TerminalID)
				}
				entries[3]++
			}
			if err := has(b.deadline, timeSeqKey(r.Deadline, r.Seq), !r.State.Final(), "deadline", 4); err != nil {
				return err
			}
			if r.State.Final() {
				if err := has(b.done, timeSeqKey(r.UpdatedAt, r.Seq), true, "done", 5); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, bk := range []*bolt.Bucket{b.idem, b.fifo, b.unsent, b.active, b.deadline, b.done} {
			if got := bk.Stats().KeyN; got != entries[i] {
				return errIndex("index %d has %d entries, records account for %d", i, got, entries[i])
			}
		}
		if got := b.counters(); got != want {
			return errIndex("counters %+v, recount %+v", got, want)
		}
		// Due: exactly one entry per free terminal with waiting checkouts,
		// pointing to its FIFO head.
		dueN := 0
		err = b.dueTerm.ForEach(func(term, key []byte) error {
			dueN++
			if v := b.due.Get(key); !bytes.Equal(v, term) {
				return errIndex("terminal %s: due entry missing", term)
			}
			if b.active.Get(term) != nil {
				return errIndex("terminal %s is active but has a due entry", term)
			}
			prefix := fifoPrefix(string(term))
			k, v := b.fifo.Cursor().Seek(prefix)
			if k == nil || !bytes.HasPrefix(k, prefix) || seqOf(k) != seqOf(key) || !bytes.Equal(v, key[:8]) {
				return errIndex("terminal %s: due entry is not its FIFO head", term)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if got := b.due.Stats().KeyN; got != dueN {
			return errIndex("due has %d entries, terminals %d", got, dueN)
		}
		// Every free terminal with a FIFO must be due.
		c := b.fifo.Cursor()
		for k, _ := c.First(); k != nil; {
			term := k[:len(k)-9]
			if b.active.Get(term) == nil && b.dueTerm.Get(term) == nil {
				return fmt.Errorf("%w: terminal %s has waiting checkouts but none due", ErrCorrupt, term)
			}
			k, _ = c.Seek(append(append([]byte(nil), term...), 1)) // next terminal
		}
		return nil
	})
}
