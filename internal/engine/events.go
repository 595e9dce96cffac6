package engine

// Terminal events: a terminal's ack and result reach the engine through
// OnTerminalEvent / HandleTerminalEvent, wait in the event loops (one per
// shard of terminals), and are matched to their checkout and stored;
// a result is answered only once its transition is committed.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// eventShards is how many event loops run. An event goes to the shard of
// its terminal, so one terminal's events are handled in order while
// different terminals' results are committed together.
const eventShards = 8

// maxEventBatch bounds how many queued events one loop takes at a time.
const maxEventBatch = 256

// ErrEventsBusy is returned by OnTerminalEvent when the engine's event
// queue is full. A terminal link then leaves the result unacknowledged, so
// the terminal sends it again; gateway polling would find it too.
var ErrEventsBusy = errors.New("engine: terminal event queue full; send it again")

// ErrEventsClosed is returned for a terminal result the engine can no
// longer store because it is closing: the terminal sends it again to the
// next run.
var ErrEventsClosed = errors.New("engine: closing; terminal result not stored, send it again")

// errNotSent: a terminal result for a checkout the engine does not yet
// know to be at the gateway (queued or submitting). It is not dropped:
// the terminal sends it again, by when the checkout is sent.
var errNotSent = errors.New("engine: checkout not yet sent to the gateway; send the result again")

// queuedEvent is a terminal event waiting for an event loop. done, for a
// result, is answered (buffered, so the loop never waits for the caller)
// once what the result changes is committed, or with why it is not.
type queuedEvent struct {
	ev   pos.TerminalEvent
	done chan error
}

// OnTerminalEvent is HandleTerminalEvent without a context of the
// caller's: the wait for a result is bounded by ResultTimeout alone.
func (e *Engine) OnTerminalEvent(ev pos.TerminalEvent) error {
	return e.HandleTerminalEvent(context.Background(), ev)
}

// HandleTerminalEvent takes an event from a terminal link. An ack is only
// queued for the engine's event loops (nobody waits for it). A result
// returns nil only once what it changes is durably stored (the checkout
// paid, declined or canceled), or once the engine found there is nothing
// to change (a repeat, a checkout already final, no checkout it could be
// about, an outcome it does not know): a terminal link may then
// acknowledge it to the terminal. Otherwise it returns an error and the
// link leaves the result unacknowledged, so the terminal sends it again:
// ErrEventsBusy when the queue is full, ErrEventsClosed when the engine
// closes, a store error, or a timeout when the commit takes longer than
// ResultTimeout (or ctx ends first). A result that timed out is still
// handled; its repeat then finds it done. Events are matched by
// TransactionID, else InvoiceNumber.
//
// The wait is one group commit (about a millisecond; seconds on a slow
// disk): results of different terminals, queued at the same time, share
// commits.
func (e *Engine) HandleTerminalEvent(ctx context.Context, ev pos.TerminalEvent) error {
	if (ev.Kind == pos.TerminalStatus && !ev.Busy) || ev.Kind == pos.TerminalConnected {
		e.terminalFree(ev.TerminalID) // an invoice it refused as busy is offered again
	}
	if ev.Kind != pos.TerminalAck && ev.Kind != pos.TerminalResult {
		return nil
	}
	if e.closed.Load() {
		if ev.Kind == pos.TerminalAck {
			return nil // an ack changes nothing the poller does not learn
		}
		return ErrEventsClosed
	}
	qe := queuedEvent{ev: ev}
	if ev.Kind == pos.TerminalResult {
		qe.done = make(chan error, 1)
	}
	select {
	case e.events[shardOf(ev.TerminalID)] <- qe:
	default:
		e.droppedEvents.Add(1)
		e.log.Warn("terminal event refused: engine busy (the terminal resends it; gateway polling finds it too)",
			"terminal", ev.TerminalID, "kind", ev.Kind)
		return ErrEventsBusy
	}
	if qe.done == nil {
		return nil
	}
	timer := time.NewTimer(e.opts.ResultTimeout)
	defer timer.Stop()
	select {
	case err := <-qe.done:
		return err
	case <-timer.C:
		return fmt.Errorf("engine: terminal result (terminal %s, transaction %s) not stored within %s; send it again: %w",
			ev.TerminalID, ev.TransactionID, e.opts.ResultTimeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return fmt.Errorf("engine: terminal result (terminal %s, transaction %s) not stored yet; send it again: %w",
			ev.TerminalID, ev.TransactionID, ctx.Err())
	case <-e.ctx.Done():
		select {
		case err := <-qe.done: // answered as the engine closed
			return err
		default:
			return ErrEventsClosed
		}
	}
}

func shardOf(terminal string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(terminal); i++ {
		h = (h ^ uint32(terminal[i])) * 16777619
	}
	return int(h % eventShards)
}

// eventLoop handles one shard's events. It takes every event already
// queued and handles each terminal's events in order, different terminals
// at the same time, so their transitions share group commits instead of
// each waiting for its own (a shard serves several terminals). Each
// result's caller hears when its own transition is committed.
func (e *Engine) eventLoop(ch <-chan queuedEvent) {
	var batch []queuedEvent
	for {
		select {
		case <-e.ctx.Done():
			return
		case qe := <-ch:
			batch = append(batch[:0], qe)
		}
	fill:
		for len(batch) < maxEventBatch {
			select {
			case qe := <-ch:
				batch = append(batch, qe)
			default:
				break fill
			}
		}
		e.handleEvents(batch)
		clear(batch)
	}
}

// handleEvents handles a batch: one goroutine per terminal, each taking
// that terminal's events in their order; it returns when all are done.
func (e *Engine) handleEvents(batch []queuedEvent) {
	if len(batch) == 1 {
		e.handleQueued(batch[0])
		return
	}
	byTerm := map[string][]queuedEvent{}
	var order []string
	for _, qe := range batch {
		if byTerm[qe.ev.TerminalID] == nil {
			order = append(order, qe.ev.TerminalID)
		}
		byTerm[qe.ev.TerminalID] = append(byTerm[qe.ev.TerminalID], qe)
	}
	var wg sync.WaitGroup
	for _, term := range order {
		wg.Add(1)
		go func(evs []queuedEvent) {
			defer wg.Done()
			for _, qe := range evs {
				e.handleQueued(qe)
			}
		}(byTerm[term])
	}
	wg.Wait()
}

// handleQueued handles one event and answers its caller, if one waits.
func (e *Engine) handleQueued(qe queuedEvent) {
	err := e.handleEvent(e.ctx, qe.ev)
	if qe.done != nil {
		qe.done <- err
	}
}

// maxEventRetries bounds how often an event is matched again when its
// checkout changed between the read and the commit.
const maxEventRetries = 3

// handleEvent applies one event and returns nil once what it changes is
// committed or there is nothing to change; an error otherwise (the store
// failed, the engine is stopping, the checkout is not yet at the gateway,
// or it kept changing under the event).
func (e *Engine) handleEvent(ctx context.Context, ev pos.TerminalEvent) error {
	for try := 0; ; try++ {
		c, ok, err := e.match(ctx, ev)
		if err != nil {
			if ctx.Err() != nil {
				return ErrEventsClosed
			}
			e.log.Error("terminal event: reading its checkout failed", "terminal", ev.TerminalID, "kind", ev.Kind, "err", err)
			return fmt.Errorf("engine: terminal %s event: find its checkout: %w", ev.TerminalID, err)
		}
		if !ok {
			e.log.Debug("terminal event for no known checkout", "terminal", ev.TerminalID, "kind", ev.Kind,
				"transaction", ev.TransactionID, "invoice_number", ev.InvoiceNumber)
			return nil
		}
		err = e.applyEvent(ctx, c, ev)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ErrEventsClosed
		case (errors.Is(err, errMoved) || pos.ErrorCode(err) == pos.EConflict) && try < maxEventRetries:
			continue // it changed under the event: look again
		case errors.Is(err, errNotSent):
			return err
		}
		return fmt.Errorf("engine: terminal %s event for checkout %s: %w", ev.TerminalID, c.ID, err)
	}
}

// applyEvent applies ev to c, the checkout it is about.
func (e *Engine) applyEvent(ctx context.Context, c pos.Checkout, ev pos.TerminalEvent) error {
	at := ev.At
	if at.IsZero() {
		at = e.now()
	}
	switch ev.Kind {
	case pos.TerminalAck:
		if c.State == pos.StateSent {
			_, err := e.move(ctx, c, pos.StateOnTerminal, "terminal acknowledged", nil)
			e.logMoveErr("record terminal ack", c, err)
			return err
		}
	case pos.TerminalResult:
		res := &pos.Result{Outcome: ev.Outcome, Reference: ev.Reference, Reason: ev.Reason, Source: "terminal", At: at}
		var to pos.State
		switch ev.Outcome {
		case pos.OutcomeApproved:
			to = pos.StatePaid
		case pos.OutcomeDeclined:
			to = pos.StateDeclined
		case pos.OutcomeCanceled:
			to = pos.StateCanceled
		default:
			// Sending it again cannot make it known.
			e.log.Warn("terminal result with an unknown outcome", "checkout", c.ID, "outcome", ev.Outcome)
			return nil
		}
		return e.finish(ctx, c, to, "terminal: "+string(ev.Outcome), res)
	}
	return nil
}

// match finds the checkout an event is about: the terminal's active one
// when the transaction id (or invoice number) agrees, else by invoice
// number, else an expired one still watched for a late payment. ok is
// false when there is none; err is set when the store could not say.
func (e *Engine) match(ctx context.Context, ev pos.TerminalEvent) (_ pos.Checkout, ok bool, _ error) {
	c, ok, err := e.store.Active(ctx, ev.TerminalID)
	if err != nil {
		return pos.Checkout{}, false, fmt.Errorf("active checkout of terminal %s: %w", ev.TerminalID, err)
	}
	if ok && ((ev.TransactionID != "" && c.TransactionID == ev.TransactionID) ||
		(ev.TransactionID == "" && ev.InvoiceNumber != "" && c.InvoiceNumber == ev.InvoiceNumber)) {
		return c, true, nil
	}
	if ev.InvoiceNumber != "" {
		c, err := e.store.GetByInvoiceNumber(ctx, ev.InvoiceNumber)
		switch {
		case err == nil:
			return c, true, nil
		case pos.ErrorCode(err) != pos.ENotFound:
			return pos.Checkout{}, false, fmt.Errorf("checkout with invoice number %s: %w", ev.InvoiceNumber, err)
		}
	}
	if ev.TransactionID != "" {
		if id, ok := e.lateByTransaction(ev.TransactionID); ok {
			c, err := e.store.Get(ctx, id)
			switch {
			case err == nil:
				return c, true, nil
			case pos.ErrorCode(err) != pos.ENotFound:
				return pos.Checkout{}, false, fmt.Errorf("checkout %s: %w", id, err)
			}
		}
	}
	return pos.Checkout{}, false, nil
}
