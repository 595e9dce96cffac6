package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/pos"
)

// TestTerminalResultAckedOnlyOnceStored: a terminal link acknowledges a
// payment result to the terminal when OnTerminalEvent returns nil, and
// the terminal then forgets it. So nil must mean "stored": the checkout's
// transition is committed (or there was nothing to change), never merely
// queued in memory, where a crash would lose the result until gateway
// polling found it. When the result cannot be stored (the store stalls or
// fails, the engine closes), the link must hear an error, so the result
// stays unacknowledged and the terminal sends it again.
func TestTerminalResultAckedOnlyOnceStored(t *testing.T) {
	// setup opens an engine with checkout X sent on termA (polling too
	// slow to matter) and returns it with X's result as its terminal
	// sends it.
	setup := func(t *testing.T, opts engine.Options) (*harness, pos.Checkout, pos.TerminalEvent) {
		opts.PollInterval = time.Hour
		h := newHarness(t, opts, false)
		x := h.create(checkoutReq(termA, "x", 1000))
		inv := h.leftSent(x)
		h.open()
		return h, x, pos.TerminalEvent{Kind: pos.TerminalResult, TerminalID: termA, TransactionID: inv.TransactionID,
			Outcome: pos.OutcomeApproved, Reference: "RRN-1"}
	}
	state := func(t *testing.T, h *harness, id string) pos.Checkout {
		t.Helper()
		c, err := h.store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("nil once stored", func(t *testing.T) {
		h, x, ev := setup(t, fastOptions())
		if err := h.eng.OnTerminalEvent(ev); err != nil {
			t.Fatalf("result: %v", err)
		}
		if c := state(t, h, x.ID); c.State != pos.StatePaid || c.Result == nil || c.Result.Source != "terminal" {
			t.Fatalf("OnTerminalEvent returned nil with the checkout still %s: a crash now loses the acknowledged result", c.State)
		}
		// A repeat (the ack was lost), a result for no checkout of ours:
		// nothing to change, acknowledged.
		if err := h.eng.OnTerminalEvent(ev); err != nil {
			t.Errorf("repeat: %v", err)
		}
		other := ev
		other.TransactionID, other.InvoiceNumber = "no-such-transaction", "PB00000000-0000000000"
		if err := h.eng.OnTerminalEvent(other); err != nil {
			t.Errorf("result for no checkout: %v", err)
		}
	})

	t.Run("store stalls", func(t *testing.T) {
		opts := fastOptions()
		opts.ResultTimeout = 200 * time.Millisecond
		h, x, ev := setup(t, opts)
		// A write that holds the store's committer: every other write
		// waits behind it, as behind a disk that does not answer.
		z := h.create(checkoutReq(termB, "z", 1000))
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		held := make(chan error, 1)
		go func() {
			_, err := h.store.Transition(context.Background(), z.ID, z.State, "", func(*pos.Checkout) error {
				once.Do(func() {
					close(entered)
					<-release
				})
				return errors.New("test: nothing to write")
			})
			held <- err
		}()
		<-entered
		releaseOnce := sync.OnceFunc(func() { close(release) })
		defer releaseOnce()
		if err := h.eng.OnTerminalEvent(ev); err == nil {
			t.Fatal("OnTerminalEvent returned nil while the store could not commit the result")
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want a timeout", err)
		}
		if c := state(t, h, x.ID); c.State != pos.StateSent {
			t.Fatalf("X %s while the store was held", c.State)
		}
		releaseOnce()
		<-held
		// The refused result was still handled; the terminal's resend
		// finds it done.
		h.waitFor(x.ID, pos.StatePaid)
		if err := h.eng.OnTerminalEvent(ev); err != nil {
			t.Fatalf("resend after the store recovered: %v", err)
		}
	})

	t.Run("store fails", func(t *testing.T) {
		h, _, ev := setup(t, fastOptions())
		if err := h.store.Close(); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.OnTerminalEvent(ev); err == nil {
			t.Fatal("OnTerminalEvent returned nil with the store closed")
		}
	})

	t.Run("engine closed", func(t *testing.T) {
		h, x, ev := setup(t, fastOptions())
		h.close()
		if err := h.eng.OnTerminalEvent(ev); !errors.Is(err, engine.ErrEventsClosed) {
			t.Fatalf("OnTerminalEvent after Close: %v, want ErrEventsClosed", err)
		}
		if c := state(t, h, x.ID); c.State != pos.StateSent {
			t.Fatalf("X %s", c.State)
		}
	})
}

// TestTerminalResultBeforeSentIsNotAcked: the terminal reports a payment
// for an invoice Hesabe pushed to it while the bridge had not yet stored
// the create's answer (the checkout is still submitting). The result must
// not be acknowledged and dropped: it is refused, so the terminal sends it
// again, and once the checkout is sent the repeat is stored.
func TestTerminalResultBeforeSentIsNotAcked(t *testing.T) {
	opts := fastOptions()
	opts.PollInterval = time.Hour
	h := newHarness(t, opts, false)
	x := h.create(checkoutReq(termA, "x", 1000))
	if _, err := h.store.Transition(context.Background(), x.ID, pos.StateSubmitting, "submitting", nil); err != nil {
		t.Fatal(err)
	}
	ev := pos.TerminalEvent{Kind: pos.TerminalResult, TerminalID: termA, InvoiceNumber: x.InvoiceNumber,
		Outcome: pos.OutcomeApproved}
	// Open reconciles X (submitting) by a look-up; every look-up's
	// answer is held until the result has been refused.
	answer := make(chan struct{})
	h.calls(func(op string, err error) {
		if op == "find pos invoice" {
			<-answer
		}
	})
	h.invoiceAt(x) // the create had reached Hesabe
	h.open()
	err := h.eng.OnTerminalEvent(ev)
	close(answer)
	if err == nil {
		t.Fatal("a result for a checkout still submitting was acknowledged (and dropped)")
	}
	h.waitFor(x.ID, pos.StateSent)
	if err := h.eng.OnTerminalEvent(ev); err != nil {
		t.Fatalf("the terminal's resend: %v", err)
	}
	if c, err := h.store.Get(context.Background(), x.ID); err != nil || c.State != pos.StatePaid {
		t.Fatalf("X %s (%v) after the resend was acknowledged, want paid", c.State, err)
	}
}
