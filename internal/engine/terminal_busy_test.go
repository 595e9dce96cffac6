package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/pos"
)

// busyTerminal is a fakeLink whose terminal refuses invoices as busy
// (another payment on its screen) while busy is set, and acknowledges
// them otherwise.
func busyTerminal(h func() *engine.Engine, busy *atomic.Bool) *fakeLink {
	return &fakeLink{
		eng: h,
		holdPush: func(ctx context.Context, c pos.Checkout) error {
			if busy.Load() {
				return fmt.Errorf("push invoice %s to %s: %w", c.TransactionID, c.TerminalID, engine.ErrTerminalBusy)
			}
			return nil
		},
		onPush: func(c pos.Checkout) []pos.TerminalEvent {
			return []pos.TerminalEvent{{Kind: pos.TerminalAck, TerminalID: c.TerminalID, TransactionID: c.TransactionID}}
		},
	}
}

// busyHarness opens an engine whose terminal termA refuses invoices as
// busy while the returned flag is set (it starts set), with BusyRetry
// retry; change, if given, adjusts the link before the engine opens.
func busyHarness(t *testing.T, retry time.Duration, change ...func(*fakeLink)) (*harness, *fakeLink, *atomic.Bool) {
	t.Helper()
	opts := fastOptions()
	opts.BusyRetry = retry
	busy := &atomic.Bool{}
	busy.Store(true)
	var h *harness
	link := busyTerminal(func() *engine.Engine { return h.eng }, busy)
	for _, f := range change {
		f(link)
	}
	opts.Terminal = link
	h = newHarness(t, opts, true)
	return h, link, busy
}

// TestBusyTerminalGetsInvoiceWhenFree: a terminal that refuses an invoice
// because another payment is on its screen is offered it again as soon
// as it reports it is free, and meanwhile the till sees why the checkout
// waits (last_error). Before, the refusal was only logged: the checkout
// stayed sent with nothing said, and the terminal never got the invoice
// from the bridge (its next checkout waited for this one's deadline and
// cancel grace, minutes).
func TestBusyTerminalGetsInvoiceWhenFree(t *testing.T) {
	h, link, busy := busyHarness(t, time.Hour) // only the terminal's "free" may bring the retry

	c := h.create(checkoutReq(termA, "busy-1", 1250))
	got := h.waitUntil(c.ID, "the busy note", func(c pos.Checkout) bool { return c.LastError != "" })
	if got.State != pos.StateSent || !strings.Contains(got.LastError, "busy") || !strings.Contains(got.LastError, termA) {
		t.Fatalf("while the terminal is busy: %s, last_error %q; want sent with a note naming the busy terminal", got.State, got.LastError)
	}
	time.Sleep(200 * time.Millisecond)
	if n := link.pushCount(); n != 1 {
		t.Fatalf("%d pushes while the terminal stayed busy and said nothing, want 1", n)
	}

	busy.Store(false)
	// The terminal's busy status first (no retry), then idle.
	if err := h.eng.HandleTerminalEvent(context.Background(), pos.TerminalEvent{Kind: pos.TerminalStatus, TerminalID: termA, Busy: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := link.pushCount(); n != 1 {
		t.Fatalf("%d pushes after a busy status, want 1", n)
	}
	if err := h.eng.HandleTerminalEvent(context.Background(), pos.TerminalEvent{Kind: pos.TerminalStatus, TerminalID: termA}); err != nil {
		t.Fatal(err)
	}
	got = h.waitWithin(c.ID, 5*time.Second, pos.StateOnTerminal)
	if got.State != pos.StateOnTerminal {
		t.Fatalf("5s after the terminal reported idle the checkout is %s (pushes %d), want on_terminal", got.State, link.pushCount())
	}
	if got.LastError != "" {
		t.Errorf("on the terminal, last_error is still %q", got.LastError)
	}
	if n := link.pushCount(); n != 2 {
		t.Errorf("%d pushes, want 2", n)
	}
}

// TestBusyTerminalRetriedWithoutStatus: a terminal that never reports
// idle is offered the invoice again every BusyRetry until it takes it.
func TestBusyTerminalRetriedWithoutStatus(t *testing.T) {
	h, link, busy := busyHarness(t, 50*time.Millisecond)

	c := h.create(checkoutReq(termA, "busy-2", 1250))
	eventually(t, "three refusals", func() bool { return link.pushCount() >= 3 })
	busy.Store(false)
	if got := h.waitWithin(c.ID, 5*time.Second, pos.StateOnTerminal); got.State != pos.StateOnTerminal || got.LastError != "" {
		t.Fatalf("checkout %s, last_error %q, want on_terminal without a note", got.State, got.LastError)
	}
}

// TestBusyTerminalNotOfferedAfterCheckoutEnds: once the checkout is no
// longer sent (here the till canceled it), a busy terminal is not offered
// its invoice again.
func TestBusyTerminalNotOfferedAfterCheckoutEnds(t *testing.T) {
	h, link, _ := busyHarness(t, 30*time.Millisecond, func(link *fakeLink) {
		link.onCancel = func(c pos.Checkout) []pos.TerminalEvent {
			return []pos.TerminalEvent{{Kind: pos.TerminalResult, TerminalID: c.TerminalID, TransactionID: c.TransactionID,
				Outcome: pos.OutcomeCanceled, Reason: "canceled by the till"}}
		}
	})

	c := h.create(checkoutReq(termA, "busy-3", 1250))
	eventually(t, "two refusals", func() bool { return link.pushCount() >= 2 })
	if _, err := h.eng.Cancel(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	got := h.waitFor(c.ID, pos.StateCanceled)
	if got.LastError != "" {
		t.Errorf("canceled, last_error is still %q", got.LastError)
	}
	time.Sleep(100 * time.Millisecond)
	n := link.pushCount()
	time.Sleep(300 * time.Millisecond) // ten BusyRetry periods
	if m := link.pushCount(); m != n {
		t.Fatalf("%d more pushes after the checkout was canceled", m-n)
	}
}

// TestSentCheckoutPushedAgainAfterRestart: a checkout the last run left
// sent (at the gateway, its terminal had not acknowledged the invoice:
// the link's outbox died with the process) is pushed to its terminal
// again when the engine opens. Before, only Hesabe's own push could still
// bring it to the terminal.
func TestSentCheckoutPushedAgainAfterRestart(t *testing.T) {
	opts := fastOptions()
	silent := &fakeLink{holdPush: func(ctx context.Context, c pos.Checkout) error {
		<-ctx.Done() // never answers
		return ctx.Err()
	}}
	opts.Terminal = silent
	h := newHarness(t, opts, true)
	c := h.create(checkoutReq(termA, "restart-1", 1250))
	h.waitFor(c.ID, pos.StateSent)
	eventually(t, "the first push", func() bool { return silent.pushCount() == 1 })
	h.close()

	var eng *engine.Engine
	answering := &fakeLink{eng: func() *engine.Engine { return eng },
		onPush: func(c pos.Checkout) []pos.TerminalEvent {
			return []pos.TerminalEvent{{Kind: pos.TerminalAck, TerminalID: c.TerminalID, TransactionID: c.TransactionID}}
		}}
	opts.Terminal = answering
	eng = engine.New(h.store, h.client, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Close(ctx)
	})
	if err := eng.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	got := h.waitWithin(c.ID, 5*time.Second, pos.StateOnTerminal)
	if got.State != pos.StateOnTerminal || answering.pushCount() != 1 {
		t.Fatalf("after the restart the checkout is %s with %d pushes, want on_terminal after 1", got.State, answering.pushCount())
	}
	h.wantOneInvoice(got)
}
