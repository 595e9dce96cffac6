package queue

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// Check walks every record and index in one read transaction and reports
// the first disagreement (an error matching ErrCorrupt): each record's
// index entries exist, each index entry points to a matching record, the
// counters equal a recount, each terminal's FIFO is a well-linked list of
// its queued checkouts in acceptance order, at most one checkout per
// terminal is active, and the due entries are the heads of the free
// terminals. It streams: memory stays bounded by the number of terminals,
// not of checkouts. For tests and `doctor`.
func (s *Store) Check(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		var want counters
		var n int
		var idem, line, submitting, deadline, done, active int
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
			i := slot(r.State)
			if i < 0 {
				return errIndex("checkout %s has unknown state %q", r.ID, r.State)
			}
			want.byState[i]++
			if isUnsent(r.State) {
				want.unsentAmount += int64(r.Amount)
			}
			has := func(bk *bolt.Bucket, key []byte, in bool, name string, count *int) error {
				got := bk.Get(key) != nil
				if got != in {
					return errIndex("checkout %s (%s): %s entry present=%v, want %v", r.ID, r.State, name, got, in)
				}
				if in {
					*count++
				}
				return nil
			}
			if r.IdempotencyKey != "" {
				v := b.idem.Get([]byte(r.IdempotencyKey))
				if v == nil || seqOf(v) != r.Seq {
					return errIndex("checkout %s: idempotency key does not point to it", r.ID)
				}
				idem++
			}
			if r.State == pos.StateQueued {
				e, ok := b.lineGet(r.Seq)
				if !ok {
					return errIndex("queued checkout %s has no FIFO entry", r.ID)
				}
				if !bytes.Equal(e.at, timeBytes(r.NextAttemptAt)) {
					return errIndex("queued checkout %s: FIFO entry's next-attempt time differs", r.ID)
				}
				line++
			} else if b.line.Get(seqKey(r.Seq)) != nil {
				return errIndex("checkout %s (%s) has a FIFO entry", r.ID, r.State)
			}
			if err := has(b.submitting, seqKey(r.Seq), r.State == pos.StateSubmitting, "submitting", &submitting); err != nil {
				return err
			}
			if isActive(r.State) {
				t, err := b.termGet([]byte(r.TerminalID))
				if err != nil {
					return err
				}
				if t.active != r.Seq {
					return errIndex("checkout %s (%s): terminal %s's active entry does not point to it", r.ID, r.State, r.TerminalID)
				}
				active++
			}
			if err := has(b.deadline, timeSeqKey(r.Deadline, r.Seq), !r.State.Final(), "deadline", &deadline); err != nil {
				return err
			}
			if r.State.Final() {
				if err := has(b.done, timeSeqKey(r.UpdatedAt, r.Seq), true, "done", &done); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, c := range []struct {
			name string
			bk   *bolt.Bucket
			n    int
		}{{"idempotency", b.idem, idem}, {"line", b.line, line}, {"submitting", b.submitting, submitting}, {"deadline", b.deadline, deadline},
			{"done", b.done, done}} {
			if got := c.bk.Stats().KeyN; got != c.n {
				return errIndex("%s index has %d entries, records account for %d", c.name, got, c.n)
			}
		}
		if got := b.counters(); got != want {
			return errIndex("counters %+v, recount %+v", got, want)
		}
		return s.checkTerminals(ctx, b, want.byState[slot(pos.StateQueued)], active)
	})
}

// checkTerminals walks every terminal's FIFO (linked, in acceptance order,
// only that terminal's queued checkouts, from head to tail) and checks its
// active count and due entry. queued and active are the records' counts.
func (s *Store) checkTerminals(ctx context.Context, b *buckets, queued int64, active int) error {
	var linked int64
	var actives, dues int
	err := b.term.ForEach(func(term, _ []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := b.termGet(term)
		if err != nil {
			return err
		}
		if t.active == 0 && t.head == 0 {
			return errIndex("terminal %s: an entry with nothing in it", term)
		}
		if t.active != 0 {
			actives++
		}
		var prev uint64
		for seq := t.head; seq != 0; {
			e, ok := b.lineGet(seq)
			if !ok {
				return errIndex("terminal %s: FIFO entry #%d is not queued", term, seq)
			}
			if (prev != 0 && e.prev != prev) || seq <= prev { // the head's prev is not kept
				return errIndex("terminal %s: FIFO entry #%d links back to #%d, not #%d", term, seq, e.prev, prev)
			}
			if got, err := s.terminalOf(b, seq); err != nil {
				return err
			} else if got != string(term) {
				return errIndex("terminal %s: FIFO holds #%d of terminal %s", term, seq, got)
			}
			if linked++; linked > queued {
				return errIndex("FIFOs hold more entries than the %d queued checkouts (a cycle?)", queued)
			}
			prev, seq = seq, e.next
		}
		if prev != t.tail {
			return errIndex("terminal %s: FIFO ends at #%d, tail says #%d", term, prev, t.tail)
		}
		if want := t.dueKey(); want != nil {
			dues++
			if v := b.due.Get(want); !bytes.Equal(v, term) {
				return errIndex("terminal %s: due entry missing", term)
			}
			if h, _ := b.lineGet(t.head); !bytes.Equal(h.at, t.dueAt) {
				return errIndex("terminal %s: due time is not its head's next-attempt time", term)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if linked != queued {
		return errIndex("FIFOs hold %d entries, %d checkouts are queued", linked, queued)
	}
	if actives != active {
		return errIndex("%d terminals have an active entry, %d checkouts are active", actives, active)
	}
	if got := b.due.Stats().KeyN; got != dues {
		return errIndex("due has %d entries, free terminals with waiting checkouts %d", got, dues)
	}
	return nil
}

// terminalOf reads only the terminal id of record seq.
func (s *Store) terminalOf(b *buckets, seq uint64) (string, error) {
	v := b.checkouts.Get(seqKey(seq))
	if v == nil {
		return "", errIndex("FIFO entry for missing checkout #%d", seq)
	}
	if len(v) > 0 && v[0] == formatBinary {
		d := decoder{s: string(v[1:])}
		for range 3 {
			d.string()
		}
		if t := d.string(); d.err == nil {
			return t, nil
		}
	}
	r, err := s.decode(seq, v)
	if err != nil {
		return "", err
	}
	return r.TerminalID, nil
}
