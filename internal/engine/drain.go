package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// dispatchLoop starts a submission for each due checkout (the FIFO head of
// each free terminal), at most Workers at a time and one per terminal,
// paced by DrainRate and paused by a 429 or while the gateway is offline.
// It sleeps until the next due time, new work, or a submission finishing.
func (e *Engine) dispatchLoop() {
	sem := make(chan struct{}, e.opts.Workers)
	var interval time.Duration
	if e.opts.DrainRate > 0 {
		interval = time.Duration(float64(time.Second) / e.opts.DrainRate)
	}
	var nextSlot time.Duration // on the monotonic clock
	for e.ctx.Err() == nil {
		if e.storeDamaged() {
			e.sleep(damagedPause)
			continue
		}
		if !e.health.isOnline() {
			// The probe loop kicks when the gateway answers again.
			e.idle(0)
			continue
		}
		if left := e.pauseLeft(); left > 0 {
			e.sleep(left)
			continue
		}
		now, mono, _ := e.clk.read()
		horizon := now
		// After a jump of the wall clock the due index's times are in
		// more than one frame: read past all of them, and let the
		// back-offs this process set decide on the monotonic clock.
		jumped := e.clk.state().absSum
		if jumped != 0 {
			horizon = now.Add(jumped + e.opts.BackoffMax + time.Minute)
		}
		recovering := e.takeRecover()
		if recovering {
			// The link is back: start every terminal's head now, whatever
			// back-off the outage gave it.
			horizon = maxTime(horizon, now.Add(e.opts.BackoffMax+time.Minute))
		}
		e.mu.Lock()
		n := len(e.inflight) + len(e.pushing) + e.opts.Workers
		e.mu.Unlock()
		if jumped != 0 {
			n += e.opts.Workers // some may be backing off still
		}
		batch, err := e.store.DueRefs(e.ctx, horizon, n)
		if err != nil {
			if e.ctx.Err() == nil {
				e.log.Error("reading due checkouts failed", "err", err)
				e.sleep(time.Second)
			}
			continue
		}
		started, busy := 0, 0
		var notYet time.Duration // the soonest back-off not yet over (jumped only)
		for _, ref := range batch {
			if jumped != 0 && !recovering {
				if at := e.track.get(ref.ID).retry; at > mono {
					if notYet == 0 || at-mono < notYet {
						notYet = at - mono
					}
					continue
				}
			}
			if !e.claim(ref.TerminalID) {
				busy++
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-e.ctx.Done():
				e.release(ref.TerminalID)
				return
			}
			if interval > 0 {
				if wait := nextSlot - e.clk.mono(); wait > 0 && !e.sleep(wait) {
					<-sem
					e.release(ref.TerminalID)
					return
				}
				nextSlot = max(e.clk.mono(), nextSlot) + interval
			}
			if !e.health.isOnline() || e.paused() {
				<-sem
				e.release(ref.TerminalID)
				break
			}
			started++
			e.wg.Add(1)
			go func(ref queue.DueRef) {
				defer e.wg.Done()
				defer func() {
					<-sem
					e.release(ref.TerminalID)
					e.kick()
				}()
				c, err := e.store.Get(e.ctx, ref.ID)
				if err != nil {
					if e.ctx.Err() == nil {
						e.log.Error("reading a due checkout failed", "checkout", ref.ID, "err", err)
					}
					return
				}
				if c.State == pos.StateQueued {
					e.process(c)
				}
			}(ref)
		}
		if started > 0 {
			continue
		}
		switch at, ok, err := e.store.NextDue(e.ctx); {
		case jumped != 0:
			// The index's times no longer say when: look again soon.
			if notYet <= 0 || notYet > time.Second {
				notYet = time.Second
			}
			e.idle(notYet)
		case err != nil || busy > 0 || !ok:
			// Wait for new work or a submission finishing.
			e.idle(time.Second)
		case at.After(now):
			e.idle(at.Sub(now))
		default:
			e.idle(time.Second)
		}
	}
}

// idle waits for a kick, d (0: no limit) or the engine stopping.
func (e *Engine) idle(d time.Duration) {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-e.wake:
	case <-e.store.Applied(): // accepted checkouts reached the database
	case <-timer:
	case <-e.ctx.Done():
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// claim marks terminal as having a submission in this process. It fails
// while the terminal has one already, or a push of its last invoice is
// still under way (pushOnTerminal).
func (e *Engine) claim(terminal string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inflight[terminal] || e.pushing[terminal] > 0 {
		return false
	}
	e.inflight[terminal] = true
	return true
}

func (e *Engine) release(terminal string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.inflight, terminal)
}

func (e *Engine) claimed(terminal string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inflight[terminal]
}

func (e *Engine) takeRecover() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.recover
	e.recover = false
	return r
}

// reread reads a submission's checkout again after a wait (a look-up, a
// 429's pause), so that what happens next is decided on what is stored
// now. ok is false when the submission must end here: shutting down
// (reconciled at the next Open), the read failed (retried later), or the
// checkout moved on meanwhile and is not this submission's any more.
func (e *Engine) reread(ctx context.Context, c pos.Checkout) (pos.Checkout, bool) {
	cur, err := e.store.Get(ctx, c.ID)
	switch {
	case ctx.Err() != nil:
		return c, false
	case err != nil:
		e.retryLater(ctx, c, err, "reading the checkout before sending failed")
		return c, false
	case cur.State != c.State || cur.Attempts != c.Attempts:
		return c, false
	}
	return cur, true
}

// process takes one due checkout (queued, head of its terminal) through
// one submission: durable submitting first, then a look-up if an earlier
// attempt may have reached Hesabe, then the deadline check, then the send.
func (e *Engine) process(c pos.Checkout) {
	ctx := e.ctx
	if c.Attempts == 0 && (c.CancelRequested || e.pastDeadline(c)) {
		// Never sent: it ends here without the gateway.
		e.finishUnsent(ctx, c)
		return
	}
	sub, err := e.move(ctx, c, pos.StateSubmitting, "submitting", nil)
	if err != nil {
		e.logMoveErr("start submission", c, err)
		return
	}
	c = sub
	if c.Attempts > 1 {
		// An earlier attempt may have created the invoice: look before
		// sending again. Hesabe has no idempotency key.
		inv, err := e.find(ctx, c.InvoiceNumber)
		switch {
		case ctx.Err() != nil:
			return // shutting down: reconciled at the next Open
		case err == nil:
			e.adopt(ctx, c, inv, "invoice found at the gateway; adopted")
			return
		case !absent(err):
			e.retryLater(ctx, c, err, "look-up before resending failed")
			return
		}
		// The look-up took a round trip: the till may have canceled
		// meanwhile (cancel_requested on submitting). Decide on what is
		// stored now, so a checkout canceled before it was sent is not
		// sent after all.
		cur, ok := e.reread(ctx, c)
		if !ok {
			return
		}
		c = cur
	}
	// A 429 answering any call (this submission's look-up, another
	// checkout's poll) may have paused every call to Hesabe since the
	// dispatcher started this submission: the create waits it out, and
	// then decides on what is stored by then (the till may have canceled,
	// the deadline may have passed meanwhile).
	waited, err := e.awaitPause(ctx)
	if err != nil {
		return // shutting down: reconciled at the next Open
	}
	if waited {
		cur, ok := e.reread(ctx, c)
		if !ok {
			return
		}
		c = cur
	}
	if c.CancelRequested || e.pastDeadline(c) {
		e.finishUnsent(ctx, c)
		return
	}
	e.submit(ctx, c)
}

// submit sends c (in submitting) to the gateway and records the outcome.
func (e *Engine) submit(ctx context.Context, c pos.Checkout) {
	// The create must not leave after the checkout's deadline, also when
	// the client has to log in again first: the call ends at the deadline
	// (an answer that was on its way then is ambiguous, and the look-up
	// that follows adopts or expires it).
	timeout := min(e.opts.CallTimeout, e.deadlineLeft(c))
	cctx, cancel := context.WithTimeout(ctx, timeout)
	inv, err := e.gw.CreatePOSInvoice(cctx, e.invoiceRequest(c))
	cancel()
	if ctx.Err() != nil {
		// Shutting down: the outcome is unknown and the checkout stays in
		// submitting; the next Open reconciles it.
		return
	}
	if err == nil {
		e.health.succeeded()
		e.adopt(ctx, c, inv, "invoice created")
		return
	}
	e.health.fail(err)
	switch pos.ClassOf(err) {
	case pos.ClassRetryable:
		e.retryLater(ctx, c, err, "gateway retryable error")
	case pos.ClassPermanent:
		reason := gatewayReason(err)
		_, merr := e.move(ctx, c, pos.StateFailed, "gateway refused: "+reason, func(c *pos.Checkout) error {
			c.LastError = err.Error()
			c.Result = &pos.Result{Reason: reason, Source: "gateway", At: e.now()}
			return nil
		})
		e.logMoveErr("record refusal", c, merr)
		e.log.Warn("gateway refused checkout", "checkout", c.ID, "reason", reason)
	default:
		// Ambiguous: the invoice may exist. Reconcile before anything else.
		e.log.Warn("submission outcome unknown; looking the invoice up", "checkout", c.ID, "err", err)
		found, ferr := e.find(ctx, c.InvoiceNumber)
		switch {
		case ctx.Err() != nil:
		case ferr == nil:
			e.adopt(ctx, c, found, "invoice found at the gateway after an unknown outcome; adopted")
		case absent(ferr):
			e.retryLater(ctx, c, err, "not at the gateway after an unknown outcome")
		default:
			e.retryLater(ctx, c, fmt.Errorf("%w; look-up: %v", err, ferr), "outcome unknown, look-up failed")
		}
	}
}

// adopt records that c's invoice exists at the gateway (created now or
// found by a look-up): submitting → sent, then any result it already has.
func (e *Engine) adopt(ctx context.Context, c pos.Checkout, inv *hesabe.POSInvoice, reason string) {
	if inv.Amount != 0 && inv.Amount != c.Amount || inv.TerminalID != "" && inv.TerminalID != c.TerminalID {
		e.log.Error("gateway invoice differs from the checkout", "checkout", c.ID, "invoice", inv.ID,
			"amount", inv.Amount, "want_amount", c.Amount, "terminal", inv.TerminalID)
	}
	sent, err := e.move(ctx, c, pos.StateSent, reason, func(c *pos.Checkout) error {
		c.InvoiceID, c.TransactionID, c.LastError = inv.ID, inv.TransactionID, ""
		return nil
	})
	if err != nil {
		e.logMoveErr("record sent", c, err)
		return
	}
	if inv.Status.Final() {
		e.applyGateway(ctx, sent, inv)
		return
	}
	switch {
	case sent.CancelRequested:
		// The till canceled it while it was being sent (or before its
		// look-up found it): never shown on the terminal, taken off it.
		// Its cancel grace begins now (graceStart).
		e.noteGrace(sent.ID)
		e.cancelOnTerminal(sent)
		return
	case e.pastDeadline(sent):
		// Past its deadline (found by a look-up, or a create answered
		// late): never shown on the terminal again, taken off it now.
		e.deadlinePassed(ctx, sent)
		return
	}
	e.pushOnTerminal(sent)
}

// pushOnTerminal shows c's invoice on its terminal through the link (if
// any), in the background: a terminal that does not answer (the link
// waits up to CallTimeout for it) holds no submission slot, whether the
// invoice was created or adopted after a look-up, so other terminals'
// checkouts are submitted meanwhile. c's terminal stays busy until the
// push settles: no next checkout is submitted on it before (claim), as
// when the submission made the push itself. Best effort: Hesabe pushes
// too, and a failed push is only logged. A terminal that refuses it as
// busy (another payment on its screen) is offered it again once it is
// free (pushWhenFree). Once Close has begun nothing is started.
func (e *Engine) pushOnTerminal(c pos.Checkout) {
	if e.link == nil {
		return
	}
	e.mu.Lock()
	// Under e.mu, as Close sets closed: an Add here happens before
	// Close's Wait begins, or not at all.
	if e.closed.Load() {
		e.mu.Unlock()
		return
	}
	e.pushing[c.TerminalID]++
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			if e.pushing[c.TerminalID]--; e.pushing[c.TerminalID] <= 0 {
				delete(e.pushing, c.TerminalID)
			}
			e.mu.Unlock()
			e.kick() // its terminal may be free
		}()
		e.pushWhenFree(c)
	}()
}

// busyNote is a sent checkout's LastError while its terminal refuses the
// invoice as busy: what the till sees instead of a checkout that only
// stays sent.
func busyNote(terminal string) string {
	return "terminal " + terminal + " is busy with another payment; the invoice is offered again when it is free"
}

// pushWhenFree pushes c's invoice and, while the terminal refuses it as
// busy, offers it again when the terminal reports it is free or every
// BusyRetry, as long as c is still sent, not asked to cancel, and before
// its deadline (past it the deadline loop cancels it). The first refusal
// is recorded on the checkout (busyNote); the checkout's next state
// change takes it off, but for expired, where it tells why.
func (e *Engine) pushWhenFree(c pos.Checkout) {
	noted := false
	for {
		free := e.whenFree(c.TerminalID) // before the push: a "free" during it is not missed
		ctx, cancel := context.WithTimeout(e.ctx, e.opts.CallTimeout)
		err := e.link.PushInvoice(ctx, c)
		cancel()
		switch {
		case err == nil:
			return // acknowledged: that transition takes the busy note off (move)
		case !errors.Is(err, ErrTerminalBusy):
			e.log.Warn("terminal push failed (Hesabe pushes too)", "checkout", c.ID, "terminal", c.TerminalID, "err", err)
			return
		case !noted:
			e.log.Warn("terminal refused the invoice: busy with another payment; offered again when it is free",
				"checkout", c.ID, "terminal", c.TerminalID)
			if _, err := e.move(e.ctx, c, c.State, "", func(c *pos.Checkout) error {
				c.LastError = busyNote(c.TerminalID)
				return nil
			}); err != nil && !errors.Is(err, errMoved) {
				e.logMoveErr("note the busy terminal", c, err)
			}
			noted = true
		}
		t := time.NewTimer(e.opts.BusyRetry)
		select {
		case <-free:
		case <-t.C:
		case <-e.ctx.Done():
		}
		t.Stop()
		if e.ctx.Err() != nil {
			return
		}
		cur, err := e.store.Get(e.ctx, c.ID)
		if err != nil || cur.State != pos.StateSent || cur.CancelRequested || e.pastDeadline(cur) {
			return // it moved on (acknowledged, paid, canceled, expiring), or cannot be read: Hesabe pushes too
		}
		c = cur
	}
}

// whenFree returns a channel closed the next time terminal reports that
// it is free (terminalFree).
func (e *Engine) whenFree(terminal string) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := e.freed[terminal]
	if ch == nil {
		ch = make(chan struct{})
		e.freed[terminal] = ch
	}
	return ch
}

// terminalFree wakes the pushes waiting for terminal to be free.
func (e *Engine) terminalFree(terminal string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch := e.freed[terminal]; ch != nil {
		close(ch)
		delete(e.freed, terminal)
	}
}

// retryLater puts c back at the head of its terminal's queue after a
// back-off (at least the pause, after a 429; the call that got it has
// paused every call already). Attempts > 0 from now on, so the next attempt
// looks the invoice up before sending.
func (e *Engine) retryLater(ctx context.Context, c pos.Checkout, cause error, why string) {
	delay := e.backoff(c.Attempts)
	if _, limited := rateLimited(cause); limited {
		delay = max(delay, e.pauseLeft())
	}
	_, err := e.move(ctx, c, pos.StateQueued, why, func(c *pos.Checkout) error {
		c.LastError = cause.Error()
		c.NextAttemptAt = e.now().Add(delay)
		return nil
	})
	if err == nil {
		// The stored time is the wall clock's; should it jump, the
		// dispatcher goes by this.
		e.noteRetry(c.ID, e.clk.mono()+delay)
	}
	e.logMoveErr("schedule retry", c, err)
}

// pause stops every call to Hesabe for d (a 429's Retry-After, or the
// back-off of a run of 429s without one; inARow is the run's length): the
// dispatcher starts no submission, the poller and the probe skip their
// rounds, and Hesabe's requests wait. Calls already under way finish;
// every later one, also the next call of a submission under way, waits
// for the pause to end (awaitPause).
func (e *Engine) pause(d time.Duration, inARow int) {
	until := int64(e.clk.mono() + d)
	for {
		old := e.pauseUntil.Load()
		if old >= until {
			return // paused for as long already (logged then)
		}
		if e.pauseUntil.CompareAndSwap(old, until) {
			break
		}
	}
	e.log.Warn("gateway rate limit: pausing every call to Hesabe", "for", d, "in_a_row", inARow)
	e.kickRequests() // Hesabe's requests look again when it ends
}

// awaitPause waits until no 429's pause is under way (also one that began
// or grew while it waited), or ctx ends (its error). waited reports
// whether there was a pause to wait out. Every call to Hesabe goes through
// it, so a call that a submission, a poll or a request makes after a 429
// answered any other call waits like the dispatcher does.
func (e *Engine) awaitPause(ctx context.Context) (waited bool, _ error) {
	for {
		d := time.Duration(e.pauseUntil.Load()) - e.clk.mono()
		if d <= 0 {
			return waited, ctx.Err()
		}
		waited = true
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return waited, ctx.Err()
		}
	}
}

// paused reports whether a 429's pause is under way.
func (e *Engine) paused() bool { return int64(e.clk.mono()) < e.pauseUntil.Load() }

// pauseLeft is how long the current pause still lasts (0: none).
func (e *Engine) pauseLeft() time.Duration {
	return max(time.Duration(e.pauseUntil.Load())-e.clk.mono(), 0)
}

// pausedUntil is when the current pause ends (zero: none).
func (e *Engine) pausedUntil() time.Time {
	if left := e.pauseLeft(); left > 0 {
		return e.now().Add(left)
	}
	return time.Time{}
}

// finishUnsent ends a checkout whose invoice is not at the gateway (never
// sent, or a look-up said so): canceled if the till asked, else expired.
func (e *Engine) finishUnsent(ctx context.Context, c pos.Checkout) {
	to, reason := pos.StateExpired, "not delivered by its deadline"
	res := &pos.Result{Reason: reason, Source: "bridge", At: e.now()}
	if c.CancelRequested {
		to, reason = pos.StateCanceled, "canceled by the till before it was sent"
		res = &pos.Result{Outcome: pos.OutcomeCanceled, Reason: reason, Source: "till", At: e.now()}
	}
	_, err := e.move(ctx, c, to, reason, func(c *pos.Checkout) error {
		c.Result = res
		return nil
	})
	e.logMoveErr("end unsent checkout", c, err)
}

// backoff is the delay before attempt n+1: BackoffInitial doubling per
// attempt up to BackoffMax, then jittered to between half and all of it.
func (e *Engine) backoff(attempts int) time.Duration {
	d := e.opts.BackoffInitial
	for i := 1; i < attempts && d < e.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, e.opts.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

func (e *Engine) invoiceRequest(c pos.Checkout) hesabe.POSInvoiceRequest {
	name := c.Customer.Name
	if name == "" {
		name = e.opts.CustomerName
	}
	return hesabe.POSInvoiceRequest{
		CustomerName: name, CustomerEmail: c.Customer.Email, CustomerPhone: c.Customer.Phone,
		Amount: c.Amount, TerminalID: c.TerminalID, InvoiceNumber: c.InvoiceNumber, Description: c.Description,
	}
}

// find looks an invoice up by invoice number. An error wrapping
// hesabe.ErrNotFound is an answer ("none"), not a failure.
func (e *Engine) find(ctx context.Context, number string) (*hesabe.POSInvoice, error) {
	if _, err := e.awaitPause(ctx); err != nil {
		return nil, fmt.Errorf("engine: look-up of invoice %s: waiting out a rate limit: %w", number, err)
	}
	cctx, cancel := context.WithTimeout(ctx, e.opts.CallTimeout)
	defer cancel()
	inv, err := e.gw.FindPOSInvoice(cctx, number)
	e.health.result(ctx, err)
	return inv, err
}

// absent reports whether a look-up's error is the gateway's answer that
// no invoice carries the number: the only answer on which a checkout may
// be sent again, or ended as never sent. The client gives
// hesabe.ErrNotFound for Hesabe's "Request not found", an HTTP 404 and a
// list without the number, and for nothing else: a refused look-up (a 401
// or 403 from a front end, another message without a Hesabe code) is a
// failed one (TestLookupRefusedIsNotAbsent here,
// TestLookupNotFoundOnlyOnNotFound in internal/hesabe).
func absent(err error) bool { return errors.Is(err, hesabe.ErrNotFound) }

// get looks an invoice up by its gateway id.
func (e *Engine) get(ctx context.Context, id int64) (*hesabe.POSInvoice, error) {
	if _, err := e.awaitPause(ctx); err != nil {
		return nil, fmt.Errorf("engine: status of invoice %d: waiting out a rate limit: %w", id, err)
	}
	cctx, cancel := context.WithTimeout(ctx, e.opts.CallTimeout)
	defer cancel()
	inv, err := e.gw.GetPOSInvoice(cctx, id)
	e.health.result(ctx, err)
	return inv, err
}

// gatewayReason is the gateway's own message for a refusal.
func gatewayReason(err error) string {
	var herr *hesabe.Error
	if errors.As(err, &herr) {
		if m := herr.Message.String(); m != "" {
			return m
		}
	}
	return err.Error()
}

// logMoveErr logs a failed transition unless the checkout simply moved on
// (another path got there first) or the engine is stopping.
func (e *Engine) logMoveErr(what string, c pos.Checkout, err error) {
	if err == nil || errors.Is(err, errMoved) || e.ctx.Err() != nil {
		return
	}
	if pos.ErrorCode(err) == pos.EConflict {
		e.log.Debug(what+": checkout changed meanwhile", "checkout", c.ID, "err", err)
		return
	}
	e.log.Error(what+" failed", "checkout", c.ID, "err", err)
}
