package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// TestSlowPollDelaysNoOtherResult: the gateway takes its time answering
// the status poll of one invoice (up to CallTimeout, here a minute). The
// other terminal's customer pays meanwhile: the till must learn it at the
// next poll, not after the slow one; and the slow invoice is not polled
// again while its poll is under way.
func TestSlowPollDelaysNoOtherResult(t *testing.T) {
	opts := fastOptions()
	opts.CallTimeout = time.Minute
	h := newHarness(t, opts, false)
	x := h.create(checkoutReq(termA, "x", 1000))
	xinv := h.leftSent(x)
	z := h.create(checkoutReq(termB, "z", 1000))
	zinv := h.leftSent(z)
	// Only Z's poll is slow (Z's is the newest invoice, so no other id
	// starts with its digits).
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Path: fmt.Sprintf("smartpos-invoices/%d", zinv.ID), Latency: time.Minute})
	h.open()
	eventually(t, "Z's poll under way", func() bool { return h.sim.Stats().FaultsFired[hesabesim.FaultLatency] > 0 })
	if err := h.sim.SetInvoiceStatus(xinv.ID, hesabe.InvoicePaid); err != nil {
		t.Fatal(err)
	}
	h.waitFor(x.ID, pos.StatePaid)
	if n := h.sim.Stats().FaultsFired[hesabesim.FaultLatency]; n != 1 {
		t.Fatalf("Z polled %d times while its first poll was under way, want 1", n)
	}
	if c, err := h.eng.Get(context.Background(), z.ID); err != nil || c.State != pos.StateSent {
		t.Fatalf("Z: %v %s, want still sent", err, c.State)
	}
}

// TestHungTerminalCancelDelaysNoOther: a checkout's deadline passes and
// its terminal never answers the cancel (the link waits CallTimeout, here
// a minute). Nothing else may wait for it: a checkout queued on the other
// terminal still expires at its deadline, and that terminal's payment is
// still seen at the next poll. The terminal is asked once, not again by every
// loop that sees the checkout.
func TestHungTerminalCancelDelaysNoOther(t *testing.T) {
	opts := fastOptions()
	opts.CallTimeout = time.Minute
	h, link := newLinkedHarness(t, opts)
	link.hold = func(ctx context.Context, c pos.Checkout) error {
		if c.TerminalID == termA {
			<-ctx.Done() // termA does not answer
			return ctx.Err()
		}
		return nil
	}
	// Z: sent on termA, its deadline passes.
	r := checkoutReq(termA, "z", 1000)
	r.Deadline = 50 * time.Millisecond
	z := h.create(r)
	h.leftSent(z)
	// X: sent on termB, W queued behind it with a short deadline.
	x := h.create(checkoutReq(termB, "x", 1000))
	xinv := h.leftSent(x)
	wr := checkoutReq(termB, "w", 1000)
	wr.Deadline = time.Second
	w := h.create(wr)
	eventually(t, "Z past its deadline", func() bool { return time.Now().After(z.Deadline) })
	h.open()
	eventually(t, "termA asked to cancel Z", func() bool { return link.cancelCount() > 0 })
	w = h.waitFor(w.ID, pos.StateExpired, pos.StateSubmitting, pos.StateSent)
	if w.State != pos.StateExpired || h.invoices(w) != 0 {
		t.Fatalf("W: %s with %d invoices, want expired unsent", w.State, h.invoices(w))
	}
	if err := h.sim.SetInvoiceStatus(xinv.ID, hesabe.InvoicePaid); err != nil {
		t.Fatal(err)
	}
	h.waitFor(x.ID, pos.StatePaid)
	if n := link.cancelCount(); n != 1 {
		t.Fatalf("termA asked to cancel Z %d times, want 1", n)
	}
}

// TestTillCancelDoesNotWaitForTerminal: the till cancels a sent checkout
// whose terminal does not answer (the link would wait CallTimeout, here a
// minute). The cancel request is stored before the terminal is asked, so
// the till's call answers with cancel_requested while the terminal is
// still being asked, not after it.
func TestTillCancelDoesNotWaitForTerminal(t *testing.T) {
	opts := fastOptions()
	opts.CallTimeout = time.Minute
	h, link := newLinkedHarness(t, opts)
	asked, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	link.hold = func(ctx context.Context, c pos.Checkout) error {
		asked <- struct{}{}
		select { // the terminal does not answer until the test ends
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c := h.create(checkoutReq(termA, "z", 1000))
	h.leftSent(c)
	h.open()
	type answer struct {
		c   pos.Checkout
		err error
	}
	done := make(chan answer, 1)
	go func() {
		got, err := h.eng.Cancel(context.Background(), c.ID)
		done <- answer{got, err}
	}()
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("the terminal was never asked to cancel")
	}
	select {
	case a := <-done:
		if a.err != nil || !a.c.CancelRequested || a.c.State != pos.StateSent {
			t.Fatalf("cancel answered %s, cancel_requested %v, err %v; want sent with cancel_requested", a.c.State, a.c.CancelRequested, a.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the till's cancel waited for a terminal that does not answer")
	}
}
