package queue

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// Reads never hold more than the page of results they return: they walk an
// index with a cursor and decode only the records they return. None of
// them calls back into caller code inside a transaction.

// Get returns checkout id, or a pos.ENotFound error.
func (s *Store) Get(ctx context.Context, id string) (pos.Checkout, error) {
	seq, ok := s.parseID(id)
	if !ok {
		return pos.Checkout{}, pos.Errorf(pos.ENotFound, "no checkout %q", id)
	}
	return s.getSeq(ctx, seq, id)
}

// GetByInvoiceNumber returns the checkout sent to Hesabe as invoice_number
// inv (for reconciling a gateway answer), or a pos.ENotFound error.
func (s *Store) GetByInvoiceNumber(ctx context.Context, inv string) (pos.Checkout, error) {
	seq, ok := s.parseInvoice(inv)
	if !ok {
		return pos.Checkout{}, pos.Errorf(pos.ENotFound, "no checkout with invoice number %q", inv)
	}
	return s.getSeq(ctx, seq, inv)
}

// GetByIdempotencyKey returns the checkout created with key, or a
// pos.ENotFound error (also once the checkout has been pruned).
func (s *Store) GetByIdempotencyKey(ctx context.Context, key string) (pos.Checkout, error) {
	return s.getByIndex(ctx, bIdem, key, "idempotency key")
}

func (s *Store) getByIndex(ctx context.Context, bucket []byte, key, what string) (pos.Checkout, error) {
	var out pos.Checkout
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return pos.Errorf(pos.ENotFound, "no checkout with %s %q", what, key)
		}
		r, err := s.open(tx).load(seqOf(v))
		if err != nil {
			return err
		}
		if r == nil {
			return errIndex("%s %q points to missing checkout #%d", what, key, seqOf(v))
		}
		out = r.Checkout
		return nil
	})
	return out, err
}

func (s *Store) getSeq(ctx context.Context, seq uint64, name string) (pos.Checkout, error) {
	var out pos.Checkout
	view := s.view
	if s.wal != nil && seq <= s.wal.applied.Load() {
		// The log holds only checkouts newer than what is applied: this
		// one is in the database as every earlier write left it.
		view = s.viewApplied
	}
	err := view(ctx, func(tx *bolt.Tx) error {
		r, err := s.open(tx).load(seq)
		if err != nil {
			return err
		}
		if r == nil {
			return pos.Errorf(pos.ENotFound, "no checkout %q", name)
		}
		out = r.Checkout
		return nil
	})
	return out, err
}

// Due returns up to max checkouts the engine may start now: each is queued,
// heads its terminal's FIFO, its terminal has no active checkout, and its
// next-attempt time is at or before now. They come in next-attempt order
// (then acceptance order); there is at most one per terminal.
func (s *Store) Due(ctx context.Context, now time.Time, max int) ([]pos.Checkout, error) {
	return s.scanTimeIndex(ctx, bDue, now, max)
}

// Applied is signalled (one pending signal at most) after each database
// transaction that applied checkouts from the accept log: what DueRefs
// and NextDue see may have changed. It is nil for a store opened with
// NoAcceptLog, whose Create commits to the database before it returns.
// One consumer (the engine's dispatcher) should receive from it.
func (s *Store) Applied() <-chan struct{} {
	if s.wal == nil {
		return nil
	}
	return s.wal.signal
}

// NextDue returns the earliest next-attempt time in the due index, so the
// engine knows how long it may sleep; ok is false when nothing waits.
// Like DueRefs it does not wait for the accept log.
func (s *Store) NextDue(ctx context.Context) (at time.Time, ok bool, err error) {
	return s.firstTime(ctx, s.viewApplied, bDue)
}

// Expiring returns up to max non-final checkouts whose deadline is at or
// before now, earliest deadline first, whatever their state: the engine
// decides (a queued one is expired; an in-flight one may need a look-up).
func (s *Store) Expiring(ctx context.Context, now time.Time, max int) ([]pos.Checkout, error) {
	return s.scanTimeIndex(ctx, bDeadline, now, max)
}

// NextDeadline returns the earliest deadline of a non-final checkout.
func (s *Store) NextDeadline(ctx context.Context) (at time.Time, ok bool, err error) {
	return s.firstTime(ctx, s.view, bDeadline)
}

func (s *Store) scanTimeIndex(ctx context.Context, bucket []byte, now time.Time, max int) ([]pos.Checkout, error) {
	var out []pos.Checkout
	limit := timeBytes(now)
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.First(); k != nil && len(out) < max; k, _ = c.Next() {
			if bytes.Compare(k[:8], limit) > 0 {
				break
			}
			r, err := b.load(seqOf(k))
			if err != nil {
				return err
			}
			if r == nil {
				return errIndex("%s entry for missing checkout #%d", bucket, seqOf(k))
			}
			out = append(out, r.Checkout)
		}
		return nil
	})
	return out, err
}

func (s *Store) firstTime(ctx context.Context, view func(context.Context, func(*bolt.Tx) error) error, bucket []byte) (at time.Time, ok bool, err error) {
	err = view(ctx, func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucket).Cursor().First(); k != nil {
			at, ok = timeOf(k), true
		}
		return nil
	})
	return at, ok, err
}

// Active returns the checkout terminal is busy with (submitting, sent or
// on_terminal); ok is false when the terminal is free.
func (s *Store) Active(ctx context.Context, terminal string) (c pos.Checkout, ok bool, err error) {
	err = s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		t, err := b.termGet([]byte(terminal))
		if err != nil || t.active == 0 {
			return err
		}
		r, err := b.load(t.active)
		if err != nil {
			return err
		}
		if r == nil {
			return errIndex("terminal %s active with missing checkout #%d", terminal, t.active)
		}
		c, ok = r.Checkout, true
		return nil
	})
	return c, ok, err
}

// ActiveAll returns every active checkout, in terminal order: at start-up
// the engine reconciles those found in submitting. There is at most one per
// terminal, so the slice is as long as the number of busy terminals.
func (s *Store) ActiveAll(ctx context.Context) ([]pos.Checkout, error) {
	var out []pos.Checkout
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		return b.term.ForEach(func(k, _ []byte) error {
			t, err := b.termGet(k)
			if err != nil || t.active == 0 {
				return err
			}
			r, err := b.load(t.active)
			if err != nil {
				return err
			}
			if r == nil {
				return errIndex("terminal %s active with missing checkout #%d", k, t.active)
			}
			out = append(out, r.Checkout)
			return nil
		})
	})
	return out, err
}

// Waiting returns up to max queued checkouts of terminal in FIFO order,
// starting after the checkout with ID after ("" for the head). The first
// one of Waiting(ctx, t, "", 1) is the terminal's next checkout.
func (s *Store) Waiting(ctx context.Context, terminal, after string, max int) ([]pos.Checkout, error) {
	var out []pos.Checkout
	var afterSeq uint64
	if after != "" {
		seq, ok := s.parseID(after)
		if !ok {
			return nil, pos.Errorf(pos.EInvalid, "bad cursor %q", after)
		}
		afterSeq = seq
	}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		t, err := b.termGet([]byte(terminal))
		if err != nil {
			return err
		}
		next := t.head
		if afterSeq != 0 {
			// Continue from the cursor if it still waits on this
			// terminal; else skip from the head to what came after it
			// (the FIFO is in acceptance order).
			if e, ok := b.lineGet(afterSeq); ok {
				if r, err := b.load(afterSeq); err == nil && r != nil && r.TerminalID == terminal {
					next = e.next
				}
			}
			for next != 0 && next <= afterSeq {
				e, ok := b.lineGet(next)
				if !ok {
					return errIndex("terminal %s: FIFO entry #%d is not queued", terminal, next)
				}
				next = e.next
			}
		}
		for next != 0 && len(out) < max {
			e, ok := b.lineGet(next)
			if !ok {
				return errIndex("terminal %s: FIFO entry #%d is not queued", terminal, next)
			}
			r, err := b.load(next)
			if err != nil {
				return err
			}
			if r == nil {
				return errIndex("fifo entry for missing checkout #%d", next)
			}
			out = append(out, r.Checkout)
			next = e.next
		}
		return nil
	})
	return out, err
}

// Recent returns up to max checkouts, newest first, starting just before
// the checkout with ID before ("" for the newest), and the cursor for the
// next page ("" at the end).
func (s *Store) Recent(ctx context.Context, before string, max int) (page []pos.Checkout, next string, err error) {
	var startSeq uint64 = 1<<64 - 1
	if before != "" {
		seq, ok := s.parseID(before)
		if !ok {
			return nil, "", pos.Errorf(pos.EInvalid, "bad cursor %q", before)
		}
		startSeq = seq
	}
	err = s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bCheckouts).Cursor()
		k, v := c.Seek(seqKey(startSeq))
		if k == nil {
			k, v = c.Last()
		}
		if k != nil && seqOf(k) >= startSeq {
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			if len(page) == max {
				next = page[len(page)-1].ID
				return nil
			}
			r, err := s.decode(seqOf(k), v)
			if err != nil {
				return err
			}
			page = append(page, r.Checkout)
		}
		return nil
	})
	return page, next, err
}

// Stats are the counters for offline limits and diagnostics.
type Stats struct {
	// ByState counts stored checkouts per state (pruned ones are gone).
	ByState map[pos.State]int
	// Unsent counts checkouts stored but not yet known to Hesabe (queued or
	// submitting): the offline limits apply to these.
	Unsent       int
	UnsentAmount pos.Money
	// OldestUnsent is when the oldest unsent checkout was accepted (zero if
	// none); OldestUnsentAge is its age by the store's clock.
	OldestUnsent    time.Time
	OldestUnsentAge time.Duration
}

// Stats reads the counters. They are kept in the database, changed in the
// same transaction as the records, so this costs one read transaction and
// two look-ups, whatever the queue's size.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		c := b.counters()
		st.ByState = make(map[pos.State]int, len(stateSlots))
		for i, state := range stateSlots {
			st.ByState[state] = int(c.byState[i])
		}
		st.Unsent = st.ByState[pos.StateQueued] + st.ByState[pos.StateSubmitting]
		st.UnsentAmount = pos.Money(c.unsentAmount)
		// The oldest unsent: the lower sequence of the first queued and
		// the first submitting checkout.
		k, _ := b.line.Cursor().First()
		if sk, _ := b.submitting.Cursor().First(); sk != nil && (k == nil || bytes.Compare(sk, k) < 0) {
			k = sk
		}
		if k != nil {
			r, err := b.load(seqOf(k))
			if err != nil {
				return err
			}
			if r == nil {
				return errIndex("unsent entry for missing checkout #%d", seqOf(k))
			}
			st.OldestUnsent = r.CreatedAt
			st.OldestUnsentAge = s.now().Sub(r.CreatedAt)
		}
		return nil
	})
	return st, err
}

// Finished returns up to max checkouts that became final at or after
// since, oldest first (the retention index, so pruned ones are gone). The
// engine uses it at start-up to find recently expired invoices it still
// watches for a late payment.
func (s *Store) Finished(ctx context.Context, since time.Time, max int) ([]pos.Checkout, error) {
	var out []pos.Checkout
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.open(tx)
		c := b.done.Cursor()
		for k, _ := c.Seek(timeBytes(since)); k != nil && len(out) < max; k, _ = c.Next() {
			r, err := b.load(seqOf(k))
			if err != nil {
				return err
			}
			if r == nil {
				return errIndex("done entry for missing checkout #%d", seqOf(k))
			}
			out = append(out, r.Checkout)
		}
		return nil
	})
	return out, err
}

// DueRef names a due checkout without decoding its record.
type DueRef struct {
	ID            string
	TerminalID    string
	NextAttemptAt time.Time
}

// DueRefs is Due without the records: up to max references, in the same
// order, read from the due index alone. A dispatcher that skips terminals
// it is already busy with decodes only the checkouts it starts (with Get).
//
// Unlike the other reads, DueRefs does not wait for checkouts accepted
// into the accept log to be applied: it sees them once they are (within
// about 10 ms under load, at once otherwise), and Applied tells when that
// happens. A dispatcher woken by every accept would otherwise force a
// small database commit per accept.
func (s *Store) DueRefs(ctx context.Context, now time.Time, max int) ([]DueRef, error) {
	var out []DueRef
	limit := timeBytes(now)
	err := s.viewApplied(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bDue).Cursor()
		for k, v := c.First(); k != nil && len(out) < max; k, v = c.Next() {
			if bytes.Compare(k[:8], limit) > 0 {
				break
			}
			out = append(out, DueRef{ID: s.formatID(seqOf(k)), TerminalID: string(v), NextAttemptAt: timeOf(k)})
		}
		return nil
	})
	return out, err
}
