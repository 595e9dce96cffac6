package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// Create stores a checkout the till asked for, in state queued, and returns
// it once it is durable. existing reports that the idempotency key was
// already used by a request with the same RequestHash: the stored checkout
// is returned and nothing is written. The same key with another hash is a
// *pos.Error with code pos.EConflict.
//
// From c it takes IdempotencyKey, RequestHash, TillRef, TerminalID, Amount,
// Customer, Description, Deadline and NextAttemptAt (zero: now). It assigns
// ID, InvoiceNumber, State, CreatedAt, UpdatedAt and the first history
// entry, and ignores the other fields. Invalid input gives pos.EInvalid.
//
// Calls from many goroutines are group-committed. If ctx ends before the
// commit, Create returns ctx.Err() and the checkout may or may not have been
// stored: call Create again with the same key to find out.
func (s *Store) Create(ctx context.Context, c pos.Checkout) (_ pos.Checkout, existing bool, _ error) {
	if err := validateNew(&c); err != nil {
		return pos.Checkout{}, false, err
	}
	if err := s.refuseDamaged(); err != nil {
		return pos.Checkout{}, false, err
	}
	// Everything but the sequence number is settled and encoded here, in
	// the caller's goroutine, so the committer only does the puts.
	now := s.now()
	r := &record{Checkout: pos.Checkout{
		IdempotencyKey: c.IdempotencyKey,
		RequestHash:    c.RequestHash,
		TillRef:        c.TillRef,
		TerminalID:     c.TerminalID,
		Amount:         c.Amount,
		Customer:       c.Customer,
		Description:    c.Description,
		State:          pos.StateQueued,
		CreatedAt:      now,
		UpdatedAt:      now,
		Deadline:       c.Deadline.UTC().Round(0),
		NextAttemptAt:  c.NextAttemptAt.UTC().Round(0),
		History:        []pos.Transition{{At: now, To: pos.StateQueued, Reason: "accepted"}},
	}}
	if r.NextAttemptAt.IsZero() {
		r.NextAttemptAt = now
	}
	enc, err := encodeRecord(r)
	if err != nil {
		return pos.Checkout{}, false, err
	}
	if len(enc) > maxNewRecord {
		// The accept log's replay takes a longer frame for a torn one.
		return pos.Checkout{}, false, pos.Errorf(pos.EInvalid, "checkout is too large (%d bytes stored, at most %d)", len(enc), maxNewRecord)
	}
	var out *record
	if s.wal != nil {
		out, existing, err = s.wal.create(ctx, r, enc)
	} else {
		out, existing, err = s.createInTx(ctx, r, enc)
	}
	if err != nil {
		return pos.Checkout{}, false, err
	}
	return out.Checkout, existing, nil
}

// createInTx is Create without the accept log (Options.NoAcceptLog): the
// committer settles the key and inserts the checkout in its next batch.
func (s *Store) createInTx(ctx context.Context, r *record, enc []byte) (out *record, existing bool, err error) {
	key := r.IdempotencyKey
	err = s.update(ctx, func(tx *bolt.Tx) error {
		out, existing = nil, false
		b := s.open(tx)
		if key != "" {
			if v := b.idem.Get([]byte(key)); v != nil {
				old, err := b.load(seqOf(v))
				if err != nil {
					return err
				}
				if old == nil {
					return errIndex("idempotency key %q points to missing checkout #%d", key, seqOf(v))
				}
				if old.Checkout.RequestHash != r.RequestHash {
					return reject(pos.FieldErrorf(pos.EConflict, "idempotency_key",
						"key %q was already used for a different request (checkout %s)", key, old.ID))
				}
				out, existing = old, true
				return nil
			}
		}
		seq := b.checkouts.Sequence() + 1
		nr := *r // Batch may run this more than once: r stays as it was
		nr.Seq, nr.ID, nr.InvoiceNumber = seq, s.formatID(seq), s.formatInvoice(seq)
		if err := b.insert(&nr, enc); err != nil {
			return err
		}
		out = &nr
		return nil
	})
	return out, existing, err
}

// insert stores a new checkout under its sequence, which must follow the
// checkout bucket's, and advances that sequence.
func (b *buckets) insert(r *record, enc []byte) error {
	if err := b.put(nil, r, enc); err != nil {
		return err
	}
	if err := b.checkouts.SetSequence(r.Seq); err != nil {
		return fmt.Errorf("queue: set sequence: %w", err)
	}
	return nil
}

// insertNew stores new queued checkouts, as insert does for each, in
// sequence order after the bucket's sequence. Each terminal's entry, the
// link from its old tail and its due entry are written once for the run
// instead of once per checkout, and the line entries are put in sequence
// order.
func (b *buckets) insertNew(es []*walEntry) error {
	if len(es) == 0 {
		return nil
	}
	c := b.counters()
	q := slot(pos.StateQueued)
	type termRun struct{ idx []int }
	runs := make(map[string]*termRun)
	var order []string
	for i, e := range es {
		r := e.rec
		if r.State != pos.StateQueued {
			return errIndex("new checkout %s is %s, not queued", r.ID, r.State)
		}
		key := seqKey(r.Seq)
		if err := b.checkouts.Put(key, e.enc); err != nil {
			return fmt.Errorf("queue: put checkout %s: %w", r.ID, err)
		}
		if r.IdempotencyKey != "" {
			if err := b.idem.Put([]byte(r.IdempotencyKey), key); err != nil {
				return fmt.Errorf("queue: put idempotency key: %w", err)
			}
		}
		if err := b.deadline.Put(timeSeqKey(r.Deadline, r.Seq), nil); err != nil {
			return fmt.Errorf("queue: put index entry: %w", err)
		}
		c.byState[q]++
		c.unsentAmount += int64(r.Amount)
		run := runs[r.TerminalID]
		if run == nil {
			run = &termRun{}
			runs[r.TerminalID] = run
			order = append(order, r.TerminalID)
		}
		run.idx = append(run.idx, i)
	}
	if err := b.putCounters(c); err != nil {
		return err
	}
	links := make([]lineEntry, len(es))
	for _, id := range order {
		idx := runs[id].idx
		term := []byte(id)
		t, err := b.termGet(term)
		if err != nil {
			return err
		}
		haveDue := t.dueKey()
		first := es[idx[0]].rec
		prev := uint64(0)
		if t.head == 0 {
			t.head = first.Seq
			t.dueAt = timeBytes(first.NextAttemptAt)
		} else {
			if t.tail >= first.Seq {
				return errIndex("terminal %s's FIFO tail #%d is not before new checkout #%d", id, t.tail, first.Seq)
			}
			if err := b.setLink(t.tail, true, first.Seq); err != nil {
				return err
			}
			prev = t.tail
		}
		for k, i := range idx {
			r := es[i].rec
			e := lineEntry{prev: prev, at: timeBytes(r.NextAttemptAt)}
			if k+1 < len(idx) {
				e.next = es[idx[k+1]].rec.Seq
			}
			links[i] = e
			prev = r.Seq
		}
		t.tail = prev
		if err := b.moveDue(term, haveDue, t.dueKey()); err != nil {
			return err
		}
		if err := b.termPut(term, t); err != nil {
			return err
		}
	}
	for i, e := range es {
		if err := b.linePut(e.rec.Seq, links[i]); err != nil {
			return err
		}
	}
	if err := b.checkouts.SetSequence(es[len(es)-1].rec.Seq); err != nil {
		return fmt.Errorf("queue: set sequence: %w", err)
	}
	return nil
}

// maxNewRecord bounds a new checkout's encoding: its accept log frame
// must stay within what the replay reads as a frame (walMaxFrame).
const maxNewRecord = walMaxFrame - walFixed

func (s *Store) now() time.Time { return s.opt.Now().UTC().Round(0) }

func validateNew(c *pos.Checkout) error {
	switch {
	case c.TerminalID == "":
		return pos.FieldErrorf(pos.EInvalid, "terminal_id", "is required")
	case len(c.TerminalID) > maxKeyLen || strings.ContainsRune(c.TerminalID, 0):
		return pos.FieldErrorf(pos.EInvalid, "terminal_id", "must be at most %d bytes without NUL", maxKeyLen)
	case len(c.IdempotencyKey) > maxKeyLen:
		return pos.FieldErrorf(pos.EInvalid, "idempotency_key", "must be at most %d bytes", maxKeyLen)
	case c.IdempotencyKey != "" && c.RequestHash == "":
		return pos.FieldErrorf(pos.EInvalid, "request_hash", "is required with an idempotency key")
	case c.Amount <= 0:
		return pos.FieldErrorf(pos.EInvalid, "amount", "must be positive")
	case c.Deadline.IsZero():
		return pos.FieldErrorf(pos.EInvalid, "deadline", "is required")
	}
	return nil
}
