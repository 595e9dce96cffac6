package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// Create validates req and stores it durably, in state queued, before it
// returns. existing is true when req.IdempotencyKey was used before by an
// identical request: the stored checkout is returned (even past an offline
// limit: that request was already accepted). The same key with a different
// request is a pos.EConflict error.
//
// Errors: pos.EInvalid (with the field) for a bad request; pos.ELimit when
// an amount limit, or an offline limit while the gateway is unreachable,
// refuses it; pos.EUnavailable when the engine is closed.
func (e *Engine) Create(ctx context.Context, req pos.CheckoutRequest) (pos.Checkout, bool, error) {
	if e.closed.Load() {
		return pos.Checkout{}, false, pos.Errorf(pos.EUnavailable, "the bridge is shutting down; retry with the same idempotency key")
	}
	deadline, err := e.validate(req)
	if err != nil {
		return pos.Checkout{}, false, err
	}
	hash := RequestHash(req)
	if !e.Online() && (e.opts.Offline != OfflineLimits{}) {
		// A retry of an accepted request is answered even past a limit,
		// so look the key up before applying them. (Online, the store's
		// Create answers a known key itself, in the same transaction:
		// the stored checkout for the same request, a conflict for
		// another.)
		if req.IdempotencyKey != "" {
			old, err := e.store.GetByIdempotencyKey(ctx, req.IdempotencyKey)
			switch {
			case err == nil && old.RequestHash == hash:
				return old, true, nil
			case err == nil:
				return pos.Checkout{}, false, pos.FieldErrorf(pos.EConflict, "idempotency_key",
					"key %q was already used for a different request (checkout %s)", req.IdempotencyKey, old.ID)
			case pos.ErrorCode(err) != pos.ENotFound:
				return pos.Checkout{}, false, fmt.Errorf("engine: create: %w", err)
			}
		}
		// Offline accepts are serialized so the limits hold exactly.
		e.offlineMu.Lock()
		defer e.offlineMu.Unlock()
		if err := e.checkOffline(ctx, req.Amount); err != nil {
			return pos.Checkout{}, false, err
		}
	}
	now, mono, shift := e.clk.read()
	c, existing, err := e.store.Create(ctx, pos.Checkout{
		IdempotencyKey: req.IdempotencyKey,
		RequestHash:    hash,
		TillRef:        req.TillRef,
		TerminalID:     req.TerminalID,
		Amount:         req.Amount,
		Customer:       req.Customer,
		Description:    req.Description,
		Deadline:       now.Add(deadline),
		NextAttemptAt:  now,
	})
	if err != nil {
		var pe *pos.Error
		if errors.As(err, &pe) {
			return pos.Checkout{}, false, err
		}
		return pos.Checkout{}, false, fmt.Errorf("engine: create: %w", err)
	}
	if !existing {
		if shift != 0 {
			// Its deadline is stored on a clock that jumped since the
			// engine started: keep it on the monotonic clock (clock.go).
			e.track.update(c.ID, func(t *tracked) { t.deadline = mono + deadline })
		}
		e.notify.publish(c)
		if e.store.Applied() == nil {
			e.kick()
		} // else the dispatcher hears of it once it is applied (Store.Applied)
	}
	return c, existing, nil
}

// validate checks what the store does not and returns the deadline to use.
func (e *Engine) validate(req pos.CheckoutRequest) (time.Duration, error) {
	switch {
	case req.TerminalID == "":
		return 0, pos.FieldErrorf(pos.EInvalid, "terminal_id", "is required")
	case e.terms != nil && !e.terms[req.TerminalID]:
		return 0, pos.FieldErrorf(pos.EInvalid, "terminal_id", "unknown terminal %q", req.TerminalID)
	case req.Amount <= 0:
		return 0, pos.FieldErrorf(pos.EInvalid, "amount", "must be positive")
	case e.opts.MaxAmount > 0 && req.Amount > e.opts.MaxAmount:
		return 0, pos.FieldErrorf(pos.ELimit, "amount", "amount %s exceeds the single-payment limit %s", req.Amount, e.opts.MaxAmount)
	case req.Deadline < 0:
		return 0, pos.FieldErrorf(pos.EInvalid, "deadline", "must not be negative")
	case req.Deadline > e.opts.MaxDeadline:
		return 0, pos.FieldErrorf(pos.EInvalid, "deadline", "must be at most %s (the bridge's checkout.max_deadline); got %s",
			seconds(e.opts.MaxDeadline), seconds(req.Deadline))
	}
	if req.Deadline == 0 {
		return e.opts.DefaultDeadline, nil
	}
	return req.Deadline, nil
}

// checkOffline applies the offline limits to one more checkout of amount.
func (e *Engine) checkOffline(ctx context.Context, amount pos.Money) error {
	lim := e.opts.Offline
	if lim.MaxSingle > 0 && amount > lim.MaxSingle {
		return pos.FieldErrorf(pos.ELimit, "amount", "offline: amount %s exceeds the offline single-payment limit %s", amount, lim.MaxSingle)
	}
	st, err := e.store.Stats(ctx)
	if err != nil {
		return fmt.Errorf("engine: offline limits: %w", err)
	}
	if lim.MaxCount > 0 && st.Unsent >= lim.MaxCount {
		return pos.Errorf(pos.ELimit, "offline: %d checkouts already stored (limit %d)", st.Unsent, lim.MaxCount)
	}
	if lim.MaxAmount > 0 {
		total, err := st.UnsentAmount.Add(amount)
		if err != nil || total > lim.MaxAmount {
			return pos.Errorf(pos.ELimit, "offline: stored total would be %s KWD (limit %s)", total, lim.MaxAmount)
		}
	}
	return nil
}

// RequestHash fingerprints the fields of a request that make it "the
// same request" for idempotency: terminal, amount, till reference,
// customer, description and the requested deadline (as given, 0 for the
// default). Each field is length-prefixed, so no two requests collide by
// concatenation.
func RequestHash(r pos.CheckoutRequest) string {
	// One buffer, one hash: this runs on every accept.
	var buf [256]byte
	b := append(buf[:0], "posbridge checkout v1\x00"...)
	str := func(b []byte, s string) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		return append(b, s...)
	}
	b = str(b, r.TerminalID)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Amount))
	b = str(b, r.TillRef)
	b = str(b, r.Customer.Name)
	b = str(b, r.Customer.Email)
	b = str(b, r.Customer.Phone)
	b = str(b, r.Description)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Deadline))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Get returns checkout id, or a pos.ENotFound error.
func (e *Engine) Get(ctx context.Context, id string) (pos.Checkout, error) {
	return e.store.Get(ctx, id)
}

// Recent lists up to limit checkouts (1..500, default 50), newest first,
// starting after cursor ("" for the newest); next is the next page's
// cursor ("" at the end).
func (e *Engine) Recent(ctx context.Context, limit int, cursor string) ([]pos.Checkout, string, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	return e.store.Recent(ctx, cursor, limit)
}

// Cancel cancels checkout id as far as its state allows:
//   - queued: canceled at once if it was never sent; if an earlier attempt
//     may have reached Hesabe, marked cancel_requested and the invoice is
//     looked up first (then canceled as unsent, or as sent below);
//   - submitting: marked cancel_requested; it is canceled when the submit
//     settles (at once if the invoice was not created, else as sent);
//   - sent / on_terminal: marked cancel_requested and the terminal is asked
//     to cancel; it becomes canceled when the terminal or gateway confirms
//     (or paid/declined if the customer finished first), and expired if
//     nothing confirms within CancelGrace (still watched for a late
//     payment);
//   - canceled: returned as is (idempotent);
//   - paid: pos.EConflict "already paid"; other final states: pos.EConflict.
func (e *Engine) Cancel(ctx context.Context, id string) (pos.Checkout, error) {
	for range 5 {
		c, err := e.store.Get(ctx, id)
		if err != nil {
			return c, err
		}
		switch c.State {
		case pos.StateCanceled:
			return c, nil
		case pos.StatePaid:
			return c, pos.Errorf(pos.EConflict, "checkout %s is already paid", id)
		case pos.StateQueued:
			if c.Attempts == 0 {
				c, err = e.move(ctx, c, pos.StateCanceled, "canceled by the till", func(c *pos.Checkout) error {
					c.Result = &pos.Result{Outcome: pos.OutcomeCanceled, Reason: "canceled by the till before it was sent", Source: "till", At: e.now()}
					return nil
				})
				break
			}
			// An earlier attempt may have reached Hesabe: the submitter
			// looks the invoice up first, then cancels it as unsent or
			// as sent.
			if c.CancelRequested {
				return c, nil
			}
			c, err = e.move(ctx, c, pos.StateQueued, "", func(c *pos.Checkout) error {
				c.CancelRequested, c.CancelRequestedAt, c.NextAttemptAt = true, e.now(), e.now()
				return nil
			})
			if err == nil {
				e.noteRetry(c.ID, 0) // due now: the submitter looks it up
			}
			e.kick()
		case pos.StateSubmitting, pos.StateSent, pos.StateOnTerminal:
			if c.CancelRequested {
				return c, nil
			}
			c, err = e.move(ctx, c, c.State, "", func(c *pos.Checkout) error {
				c.CancelRequested, c.CancelRequestedAt = true, e.now()
				return nil
			})
			if err == nil && c.State != pos.StateSubmitting {
				e.noteGrace(c.ID)
				// In the background: the request is stored, and a
				// terminal that does not answer must not hold up the
				// till's call (its answer would not change this one).
				e.cancelOnTerminal(c)
			}
		default:
			return c, pos.Errorf(pos.EConflict, "checkout %s is already %s", id, c.State)
		}
		if errors.Is(err, errMoved) || (err != nil && pos.ErrorCode(err) == pos.EConflict) {
			continue // it moved on meanwhile: look again
		}
		return c, err
	}
	return pos.Checkout{}, pos.Errorf(pos.EConflict, "checkout %s kept changing; try again", id)
}

// cancelOnTerminal asks the terminal link (if any) to take c's invoice off
// its terminal, in the background: a terminal that does not answer (the
// link waits up to CallTimeout for its acknowledgement) holds up only its
// own checkout, not the loop or the till's call that asked. One request
// per checkout at a time, so at most one per active checkout (one per
// terminal). Once Close has begun nothing is started: the cancel request
// is stored, and the next Open asks the terminal again.
func (e *Engine) cancelOnTerminal(c pos.Checkout) {
	if e.link == nil {
		return
	}
	e.mu.Lock()
	// Under e.mu, as Close sets closed: an Add here happens before
	// Close's Wait begins, or not at all.
	if e.canceling[c.ID] || e.closed.Load() {
		e.mu.Unlock()
		return
	}
	e.canceling[c.ID] = true
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.canceling, c.ID)
			e.mu.Unlock()
		}()
		e.askTerminalCancel(e.ctx, c)
	}()
}

// askTerminalCancel asks the terminal link (if any) to take the invoice
// off the terminal and waits for its answer. Best effort: the gateway or
// terminal confirms.
func (e *Engine) askTerminalCancel(ctx context.Context, c pos.Checkout) {
	if e.link == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.CallTimeout)
	defer cancel()
	if err := e.link.CancelInvoice(ctx, c); err != nil {
		e.log.Warn("terminal cancel request failed", "checkout", c.ID, "terminal", c.TerminalID, "err", err)
	}
}

// seconds writes d as a till gives it: whole seconds ("1800 seconds"),
// else as a duration.
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%d seconds", d/time.Second)
	}
	return d.String()
}
