package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
)

// lateWatch is an expired checkout whose invoice reached the gateway: it
// is polled until Until in case the customer paid after all.
type lateWatch struct {
	ID            string
	InvoiceID     int64
	TransactionID string
	Until         time.Duration // on the monotonic clock (clock.mono)
}

// maxLateWatch bounds the late-payment watch list (memory stays flat).
const maxLateWatch = 10_000

// reconcileStartup settles a checkout found in submitting when the engine
// opens (or orphaned later): its outcome is unknown, so look it up. Found:
// adopt it. Not found: back to queued, or canceled/expired if the till
// canceled it or its deadline passed. Look-up failed: back to queued with a
// back-off; Attempts > 0 makes the next attempt look up first.
func (e *Engine) reconcileStartup(ctx context.Context, c pos.Checkout) {
	inv, err := e.find(ctx, c.InvoiceNumber)
	switch {
	case ctx.Err() != nil:
	case err == nil:
		e.log.Info("reconciled: invoice found at the gateway; adopted", "checkout", c.ID, "invoice", inv.ID)
		e.adopt(ctx, c, inv, "reconciled: invoice found at the gateway; adopted")
	case absent(err):
		if c.CancelRequested || e.pastDeadline(c) {
			e.finishUnsent(ctx, c)
			return
		}
		_, merr := e.move(ctx, c, pos.StateQueued, "reconciled: not at the gateway; will send", func(c *pos.Checkout) error {
			c.NextAttemptAt = e.now()
			return nil
		})
		if merr == nil {
			e.noteRetry(c.ID, 0) // due now
		}
		e.logMoveErr("requeue after reconcile", c, merr)
	default:
		e.retryLater(ctx, c, err, "outcome unknown after restart; look-up failed")
	}
}

// pollLoop follows sent and on_terminal checkouts at the gateway, the
// source of truth, every PollInterval. Each checkout's poll runs in its
// own goroutine, at most Workers at a time and one per checkout, so a
// poll the gateway is slow to answer (up to CallTimeout) holds up only
// its own checkout's result. A round is skipped, or cut short, while a
// 429 pauses the calls to Hesabe. (lateLoop polls the expired invoices
// still watched for a late payment, the same way with slots of its own.)
func (e *Engine) pollLoop() { e.pollEvery(e.pollOnce) }

// pollEvery runs round every PollInterval until the engine closes, with
// Workers slots of its own, skipping a round while a 429 pauses the calls
// to Hesabe.
func (e *Engine) pollEvery(round func(ctx context.Context, sem chan struct{})) {
	sem := make(chan struct{}, e.opts.Workers)
	t := time.NewTicker(e.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		if !e.paused() && !e.storeDamaged() {
			round(e.ctx, sem)
		}
	}
}

func (e *Engine) pollOnce(ctx context.Context, sem chan struct{}) {
	active, err := e.store.ActiveAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("reading active checkouts failed", "err", err)
		}
		return
	}
	for _, c := range active {
		if ctx.Err() != nil || e.paused() {
			return
		}
		if c.State == pos.StateSubmitting {
			// No submission of this process owns it (a failed write
			// after a crash-safe send): reconcile it like at start-up,
			// its terminal claimed until the look-up settles.
			if !e.claimed(c.TerminalID) && e.claim(c.TerminalID) {
				if !e.startPoll(sem, c.ID, func() {
					defer e.release(c.TerminalID)
					e.reconcileStartup(ctx, c)
				}) {
					e.release(c.TerminalID)
				}
			}
			continue
		}
		e.startPoll(sem, c.ID, func() { e.follow(ctx, c) })
	}
}

// startPoll runs poll, the poll of checkout id, in its own goroutine once
// a slot of sem is free. It returns false, without running it, when that
// checkout's last poll is still under way or the engine is stopping.
func (e *Engine) startPoll(sem chan struct{}, id string, poll func()) bool {
	e.mu.Lock()
	if e.polling[id] {
		e.mu.Unlock()
		return false
	}
	e.polling[id] = true
	e.mu.Unlock()
	done := func() {
		e.mu.Lock()
		delete(e.polling, id)
		e.mu.Unlock()
	}
	select {
	case sem <- struct{}{}:
	case <-e.ctx.Done():
		done()
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			<-sem
			done()
		}()
		poll()
	}()
	return true
}

// lateLoop polls the expired invoices still watched for a late payment
// every PollInterval, in a loop of their own so they never delay the
// polls of active checkouts. Like those, each invoice's poll runs in its
// own goroutine, at most Workers at a time (slots of their own) and one
// per checkout, so one the gateway is slow to answer delays no other.
func (e *Engine) lateLoop() { e.pollEvery(e.pollLate) }

// follow polls one sent/on_terminal checkout and applies its deadline and
// cancel grace.
func (e *Engine) follow(ctx context.Context, c pos.Checkout) {
	inv, err := e.get(ctx, c.InvoiceID)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, hesabe.ErrNotFound) {
			e.log.Debug("invoice poll failed", "checkout", c.ID, "err", err)
		} else if errors.Is(err, hesabe.ErrNotFound) {
			e.log.Error("invoice vanished at the gateway", "checkout", c.ID, "invoice", c.InvoiceID)
		}
		// Without a fresh "still pending" from the gateway nothing is
		// given up: the checkout may be paid.
		if !c.CancelRequested && e.pastDeadline(c) {
			e.deadlinePassed(ctx, c)
		}
		return
	}
	if inv.Status.Final() {
		e.applyGateway(ctx, c, inv)
		return
	}
	switch {
	case c.CancelRequested && e.graceOver(c):
		reason := fmt.Sprintf("the terminal did not confirm the cancel within %s", e.opts.CancelGrace)
		if !c.Deadline.After(c.CancelRequestedAt) {
			reason = fmt.Sprintf("not paid by its deadline; the terminal did not confirm the cancel within %s", e.opts.CancelGrace)
		}
		exp, err := e.move(ctx, c, pos.StateExpired, reason, func(c *pos.Checkout) error {
			c.Result = &pos.Result{Reason: reason + "; watched for a late payment", Source: "bridge", At: e.now()}
			return nil
		})
		if err != nil {
			e.logMoveErr("expire unconfirmed checkout", c, err)
			return
		}
		e.watchLate(exp, e.opts.LateWindow)
		e.log.Warn("checkout expired at the terminal without confirmation; watching for a late payment",
			"checkout", c.ID, "invoice", c.InvoiceID)
	case !c.CancelRequested && e.pastDeadline(c):
		e.deadlinePassed(ctx, c)
	}
}

// graceStart is when CancelGrace began for a cancel-requested checkout:
// when the cancel was asked, or, for one canceled before its invoice was
// at the gateway (queued after an attempt, or submitting), when it got
// there and the terminal could first be asked.
func graceStart(c pos.Checkout) time.Time {
	start := c.CancelRequestedAt
	for i := len(c.History) - 1; i >= 0; i-- {
		if c.History[i].To == pos.StateSent {
			if c.History[i].At.After(start) {
				start = c.History[i].At
			}
			break
		}
	}
	return start
}

// deadlinePassed asks the terminal to cancel a sent checkout whose deadline
// passed; it ends when the terminal or gateway confirms, or after
// CancelGrace (see follow). The poller and the deadline loop may both
// find it: only the first records the request and asks the terminal.
func (e *Engine) deadlinePassed(ctx context.Context, c pos.Checkout) {
	c2, err := e.move(ctx, c, c.State, "", func(c *pos.Checkout) error {
		if c.CancelRequested {
			return errMoved
		}
		c.CancelRequested, c.CancelRequestedAt = true, e.now()
		return nil
	})
	if err != nil {
		e.logMoveErr("request cancel at deadline", c, err)
		return
	}
	e.noteGrace(c2.ID)
	e.cancelOnTerminal(c2)
}

// applyGateway moves c to the final state the gateway reports.
func (e *Engine) applyGateway(ctx context.Context, c pos.Checkout, inv *hesabe.POSInvoice) {
	res := &pos.Result{Reference: inv.TransactionID, Source: "gateway", At: e.now()}
	var to pos.State
	switch inv.Status {
	case hesabe.InvoicePaid:
		to, res.Outcome = pos.StatePaid, pos.OutcomeApproved
	case hesabe.InvoiceFailed:
		to, res.Outcome, res.Reason = pos.StateDeclined, pos.OutcomeDeclined, "declined"
	case hesabe.InvoiceCanceled:
		to, res.Outcome, res.Reason = pos.StateCanceled, pos.OutcomeCanceled, "canceled at the terminal or gateway"
	case hesabe.InvoiceExpired:
		to, res.Reason = pos.StateExpired, "the gateway expired the invoice"
	default:
		return
	}
	_ = e.finish(ctx, c, to, "gateway: invoice "+inv.Status.String(), res) // logged; the next poll tries again
}

// finish moves an active (or, for a late payment, expired) checkout to a
// final state; duplicates and late repeats are harmless. It returns nil
// once the change is committed or when there is nothing to change (the
// checkout is already final), errNotSent for a checkout not yet at the
// gateway, and the store's error otherwise (errMoved: it changed since c
// was read).
func (e *Engine) finish(ctx context.Context, c pos.Checkout, to pos.State, reason string, res *pos.Result) error {
	if c.State == pos.StateExpired {
		if to == pos.StatePaid && c.InvoiceID != 0 {
			return e.recordLatePaid(ctx, c, res)
		}
		return nil
	}
	if c.State.Final() {
		return nil
	}
	if c.State == pos.StateSubmitting || c.State == pos.StateQueued {
		return errNotSent
	}
	_, err := e.move(ctx, c, to, reason, func(c *pos.Checkout) error {
		c.Result = res
		return nil
	})
	e.logMoveErr("record result", c, err)
	return err
}

// recordLatePaid records that an expired checkout was paid after all: the
// till must learn the truth (expired → paid), loudly.
func (e *Engine) recordLatePaid(ctx context.Context, c pos.Checkout, res *pos.Result) error {
	res.Reason = "paid after the bridge had expired the checkout"
	// Counted before the move publishes the change, so that whoever sees
	// the checkout paid also finds it counted (taken back if it fails).
	e.latePaid.Add(1)
	_, err := e.move(ctx, c, pos.StatePaid, "late payment: "+res.Source+" reports paid after expiry", func(c *pos.Checkout) error {
		c.Result = res
		return nil
	})
	if err != nil {
		e.latePaid.Add(-1)
		e.logMoveErr("record late payment", c, err)
		return err
	}
	e.unwatchLate(c.ID)
	e.log.Error("LATE PAYMENT: an expired checkout was paid; the till has been told (state paid)",
		"checkout", c.ID, "invoice", c.InvoiceID, "amount", c.Amount, "terminal", c.TerminalID, "source", res.Source)
	return nil
}

// watchLate adds c to the watch list for left more (real) time; false
// when the list is full.
func (e *Engine) watchLate(c pos.Checkout, left time.Duration) bool {
	if c.InvoiceID == 0 {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.late[c.ID]; !ok && len(e.late) >= maxLateWatch {
		e.log.Warn("late-payment watch list full; not watching", "checkout", c.ID)
		return false
	}
	e.late[c.ID] = lateWatch{ID: c.ID, InvoiceID: c.InvoiceID, TransactionID: c.TransactionID, Until: e.clk.mono() + left}
	return true
}

func (e *Engine) unwatchLate(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.late, id)
}

func (e *Engine) lateByTransaction(tx string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.late {
		if w.TransactionID == tx {
			return w.ID, true
		}
	}
	return "", false
}

// lateLoadPage is how many finished checkouts loadLate reads at a time.
const lateLoadPage = 1000

// loadLate rebuilds the watch list after a restart from the checkouts
// that finished within LateWindow. It reads every one of them, a page at
// a time: most are paid or declined, and the expired ones among them may
// come after any number of those.
func (e *Engine) loadLate(ctx context.Context) error {
	now := e.now()
	since := now.Add(-e.opts.LateWindow)
	var prev map[string]bool // the previous page, which the next one may overlap
	for {
		list, err := e.store.Finished(ctx, since, lateLoadPage)
		if err != nil {
			return fmt.Errorf("read recently finished checkouts: %w", err)
		}
		fresh := 0
		page := make(map[string]bool, len(list))
		for _, c := range list {
			page[c.ID] = true
			if prev[c.ID] {
				continue
			}
			fresh++
			if c.State == pos.StateExpired && c.InvoiceID != 0 && !e.watchLate(c, c.UpdatedAt.Add(e.opts.LateWindow).Sub(now)) {
				return nil // the watch list is full (logged)
			}
		}
		if len(list) < lateLoadPage {
			return nil
		}
		if fresh == 0 {
			// A whole page finished at one instant: cannot page past it.
			e.log.Warn("late-payment watch list: too many checkouts finished at one instant; not reading further", "at", since)
			return nil
		}
		// The next page starts at this page's last finishing time (the
		// index is ordered by it), so it repeats the ones finished then.
		since, prev = list[len(list)-1].UpdatedAt, page
	}
}

// pollLate starts the poll of every watched invoice whose window is not
// over (and whose last poll is not still under way), dropping those whose
// window is; it returns once each is started, or when a 429 pauses the
// calls to Hesabe or the engine stops.
func (e *Engine) pollLate(ctx context.Context, sem chan struct{}) {
	e.mu.Lock()
	list := make([]lateWatch, 0, len(e.late))
	for _, w := range e.late {
		list = append(list, w)
	}
	e.mu.Unlock()
	now := e.clk.mono()
	for _, w := range list {
		if ctx.Err() != nil || e.paused() {
			return
		}
		if now > w.Until {
			e.unwatchLate(w.ID)
			continue
		}
		e.startPoll(sem, w.ID, func() { e.pollLateOne(ctx, w) })
	}
}

// pollLateOne polls one watched invoice: paid → the checkout moves
// expired → paid; another final status → no longer watched.
func (e *Engine) pollLateOne(ctx context.Context, w lateWatch) {
	inv, err := e.get(ctx, w.InvoiceID)
	if err != nil || !inv.Status.Final() {
		return
	}
	if inv.Status != hesabe.InvoicePaid {
		e.unwatchLate(w.ID) // confirmed not paid
		return
	}
	c, err := e.store.Get(ctx, w.ID)
	if err != nil {
		return
	}
	_ = e.finish(ctx, c, pos.StatePaid, "", &pos.Result{Outcome: pos.OutcomeApproved, Reference: inv.TransactionID, Source: "gateway", At: e.now()})
}

// deadlineLoop expires queued checkouts that were never sent once their
// deadline passes, and starts the cancel of sent ones. A queued checkout
// with earlier attempts is left to the submitter, which looks it up first.
func (e *Engine) deadlineLoop() {
	for e.ctx.Err() == nil {
		if e.storeDamaged() {
			e.sleep(damagedPause)
			continue
		}
		e.clk.resync()
		e.expireDue(e.ctx)
		wait := time.Second
		if at, ok, err := e.store.NextDeadline(e.ctx); err == nil && ok {
			w, _, shift := e.clk.read()
			if d := untilStored(at, w, shift); d > 0 && d < wait {
				wait = d
			}
		}
		e.sleep(wait)
	}
}

func (e *Engine) expireDue(ctx context.Context) {
	// The deadline index holds wall-clock times; after a jump, read past
	// every frame and decide on each checkout's own (deadlineLeft).
	w, _, _ := e.clk.read()
	list, err := e.store.Expiring(ctx, w.Add(e.clk.state().absSum), 1024)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("reading expiring checkouts failed", "err", err)
		}
		return
	}
	for _, c := range list {
		if !e.pastDeadline(c) {
			continue
		}
		switch {
		case c.State == pos.StateQueued && c.Attempts == 0:
			e.finishUnsent(ctx, c)
		case c.State == pos.StateQueued:
			e.kick() // the submitter looks it up, then expires it
		case (c.State == pos.StateSent || c.State == pos.StateOnTerminal) && !c.CancelRequested:
			e.deadlinePassed(ctx, c)
		}
	}
}

// pruneEvery is how often pruneLoop runs (tests shorten it).
var pruneEvery = 5 * time.Minute

// pruneLoop removes checkouts past the store's retention.
func (e *Engine) pruneLoop() {
	for e.sleep(pruneEvery) {
		for !e.storeDamaged() {
			// A finished checkout is kept for the retention in real
			// time: a clock set forward does not age it (nor its
			// idempotency key) at once; one set back keeps it longer.
			w, _, shift := e.clk.read()
			n, more, err := e.store.Prune(e.ctx, w.Add(-(shift - e.clk.state().minShift)))
			if err != nil {
				if e.ctx.Err() == nil {
					e.log.Error("prune failed", "err", err)
				}
				break
			}
			if n > 0 {
				e.log.Debug("pruned finished checkouts", "removed", n)
			}
			if !more {
				break
			}
		}
	}
}
