package queue

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// ErrCorrupt marks an index that disagrees with the records. It means a bug
// or a damaged file, never bad input.
var ErrCorrupt = errors.New("queue: index inconsistent with records")

func errIndex(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// edges is the state machine of pos.State's documentation:
//
//	queued → submitting → sent → on_terminal → paid | declined | canceled | expired | failed
//
// plus queued → canceled | expired; submitting → queued (retryable
// failure) | canceled | expired (the submit settled as "not at the
// gateway"); sent → paid | declined | canceled | expired (a result without
// a terminal ack); every non-final state → failed; and one edge out of a
// final state: expired → paid, only for a checkout whose invoice reached
// the gateway (InvoiceID set) and was paid after the bridge gave up on it.
var edges = map[pos.State][]pos.State{
	pos.StateQueued:     {pos.StateSubmitting, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	pos.StateSubmitting: {pos.StateSent, pos.StateQueued, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	pos.StateSent:       {pos.StateOnTerminal, pos.StatePaid, pos.StateDeclined, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	pos.StateOnTerminal: {pos.StatePaid, pos.StateDeclined, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	pos.StateExpired:    {pos.StatePaid},
}

// latePaid reports the one edge out of a final state: an expired checkout
// whose invoice exists at the gateway was paid after all.
func latePaid(old *pos.Checkout, to pos.State) bool {
	return old.State == pos.StateExpired && to == pos.StatePaid && old.InvoiceID != 0
}

// Allowed reports whether the state machine has the edge from → to.
// expired → paid is in the table but Transition takes it only for a
// checkout with an InvoiceID.
func Allowed(from, to pos.State) bool {
	for _, s := range edges[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Transition moves checkout id to state to and returns the stored result
// once it is durable. mutate (may be nil) is called first with a copy of the
// current checkout (c.State is still the old state) to set what the step
// learned: InvoiceID, TransactionID, Result, LastError, NextAttemptAt (when
// going back to queued; zero means now). It may return an error to abort
// (for example when c is not in the state the caller expected); that error
// is returned unchanged and nothing is written. mutate may run more than
// once and must not have other side effects.
//
// Transition then checks and records the step:
//   - no such checkout: pos.ENotFound;
//   - the edge is not in the state machine, or the checkout is final:
//     pos.EConflict (a final state never changes, except expired → paid
//     for a checkout with an InvoiceID: the gateway reported a late payment);
//   - to == current state: a field update without a history entry
//     (refused on final checkouts);
//   - entering submitting requires that the checkout heads its terminal's
//     FIFO and that the terminal has no active checkout (pos.EConflict),
//     and counts one attempt;
//   - mutate may not change what the till sent or the store assigned
//     (ID, key, hash, terminal, amount, customer, description, deadline,
//     invoice number, created-at, history): pos.EInvalid.
//
// The history gets {now, old state, to, reason}.
func (s *Store) Transition(ctx context.Context, id string, to pos.State, reason string,
	mutate func(c *pos.Checkout) error) (pos.Checkout, error) {
	seq, ok := s.parseID(id)
	if !ok {
		return pos.Checkout{}, pos.Errorf(pos.ENotFound, "no checkout %q", id)
	}
	if !to.Valid() {
		return pos.Checkout{}, pos.Errorf(pos.EInvalid, "unknown state %q", to)
	}
	var out *record
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out = nil
		b := s.open(tx)
		old, err := b.load(seq)
		if err != nil {
			return err
		}
		if old == nil {
			return reject(pos.Errorf(pos.ENotFound, "no checkout %q", id))
		}
		r, err := s.step(b, old, to, reason, mutate)
		if err != nil {
			return reject(err)
		}
		if err := b.put(old, r, nil); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return pos.Checkout{}, err
	}
	return out.Checkout, nil
}

// step computes the new record; it writes nothing.
func (s *Store) step(b *buckets, old *record, to pos.State, reason string, mutate func(*pos.Checkout) error) (*record, error) {
	if old.State.Final() && !latePaid(&old.Checkout, to) {
		return nil, pos.Errorf(pos.EConflict, "checkout %s is %s; a final state never changes", old.ID, old.State)
	}
	if to != old.State && !Allowed(old.State, to) {
		return nil, pos.Errorf(pos.EConflict, "checkout %s cannot go from %s to %s", old.ID, old.State, to)
	}
	if to == pos.StateSubmitting && old.State == pos.StateQueued {
		t, err := b.termGet([]byte(old.TerminalID))
		if err != nil {
			return nil, err
		}
		if t.active != 0 {
			return nil, pos.Errorf(pos.EConflict, "terminal %s is busy with checkout %s", old.TerminalID, s.formatID(t.active))
		}
		if t.head == 0 {
			return nil, errIndex("queued checkout %s missing from terminal %s's FIFO", old.ID, old.TerminalID)
		}
		if t.head != old.Seq {
			return nil, pos.Errorf(pos.EConflict, "checkout %s waits behind %s on terminal %s", old.ID, s.formatID(t.head), old.TerminalID)
		}
	}
	r := &record{Seq: old.Seq, Checkout: old.Checkout}
	r.History = append([]pos.Transition(nil), old.History...)
	if old.Result != nil {
		res := *old.Result
		r.Result = &res
	}
	if mutate != nil {
		if err := mutate(&r.Checkout); err != nil {
			return nil, err
		}
		if err := sameIdentity(&old.Checkout, &r.Checkout); err != nil {
			return nil, err
		}
	}
	now := s.now()
	r.State = to
	r.UpdatedAt = now
	r.NextAttemptAt = r.NextAttemptAt.UTC().Round(0)
	if to != old.State {
		r.History = append(r.History, pos.Transition{At: now, From: old.State, To: to, Reason: reason})
		if to == pos.StateSubmitting {
			r.Attempts++
		}
		if to == pos.StateQueued && r.NextAttemptAt.IsZero() {
			r.NextAttemptAt = now
		}
	}
	if r.Result != nil {
		r.Result.At = r.Result.At.UTC().Round(0)
	}
	return r, nil
}

// sameIdentity refuses changes to what the till sent or the store assigned.
func sameIdentity(a, b *pos.Checkout) error {
	type identity struct {
		ID, Key, Hash, TillRef, Terminal, Description, Invoice string
		Amount                                                 pos.Money
		Customer                                               pos.Customer
		Created, Deadline                                      int64
		HistoryLen                                             int
	}
	id := func(c *pos.Checkout) identity {
		return identity{c.ID, c.IdempotencyKey, c.RequestHash, c.TillRef, c.TerminalID, c.Description, c.InvoiceNumber,
			c.Amount, c.Customer, c.CreatedAt.UnixNano(), c.Deadline.UnixNano(), len(c.History)}
	}
	if id(a) != id(b) {
		return pos.Errorf(pos.EInvalid, "checkout %s: a transition may not change what the till sent or the store assigned", a.ID)
	}
	return nil
}
