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
	if s.wal != nil {
		out, existing, err := s.wal.create(ctx, r, enc)
		if err != nil {
			return pos.Checkout{}, false, err
		}
		return out.Checkout, existing, nil
	}
	var out *record
	err = s.update(ctx, func(tx *bolt.Tx) error {
		out, existing = nil, false
		b := s.open(tx)
		if c.IdempotencyKey != "" {
			if v := b.idem.Get([]byte(c.IdempotencyKey)); v != nil {
				old, err := b.load(seqOf(v))
				if err != nil {
					return err
				}
				if old == nil {
					return errIndex("idempotency key %q points to missing checkout #%d", c.IdempotencyKey, seqOf(v))
				}
				if old.Checkout.RequestHash != c.RequestHash {
					return reject(pos.FieldErrorf(pos.EConflict, "idempotency_key",
						"key %q was already used for a different request (checkout %s)", c.IdempotencyKey, old.ID))
				}
				out, existing = old, true
				return nil
			}
		}
		seq := b.checkouts.Sequence() + 1
		nr := *r
		nr.Seq, nr.ID, nr.InvoiceNumber = seq, s.formatID(seq), s.formatInvoice(seq)
		if err := b.insert(&nr, enc); err != nil {
			return err
		}
		out = &nr
		return nil
	})
	if err != nil {
		return pos.Checkout{}, false, err
	}
	return out.Checkout, existing, nil
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
