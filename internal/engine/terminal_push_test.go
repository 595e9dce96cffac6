package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// TestSilentTerminalPushHoldsNoWorker: invoices pushed to terminals that
// do not answer (the link waits up to CallTimeout, here a minute) must not
// hold the engine's submission slots. With Workers 2 and two checkouts
// whose pushes hang, a checkout on a third, healthy terminal is still sent
// at once, not a CallTimeout later. "adopted": each create reaches Hesabe
// but its answer is lost (apply-then-drop), so the engine finds the
// invoice by its invoice_number and adopts it instead of sending it again;
// "created": the creates are answered. As before, a silent terminal's next
// checkout is not submitted while its last push is still under way, and
// is once that push settles.
func TestSilentTerminalPushHoldsNoWorker(t *testing.T) {
	for _, tc := range []struct {
		name  string
		adopt bool
	}{{"adopted", true}, {"created", false}} {
		t.Run(tc.name, func(t *testing.T) {
			simOpt, ids := withTerminals(3)
			silent, healthy := ids[:2], ids[2]
			opts := fastOptions()
			opts.Terminals = ids
			opts.Workers = 2
			opts.CallTimeout = time.Minute
			link := &fakeLink{}
			opts.Terminal = link
			h := newHarness(t, opts, false, simOpt)
			link.eng = func() *engine.Engine { return h.eng }
			release := make(chan struct{})
			link.holdPush = func(ctx context.Context, c pos.Checkout) error {
				if c.TerminalID == healthy {
					return nil
				}
				select { // silent until released (or CallTimeout)
				case <-release:
					return errors.New("terminal busy")
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if tc.adopt {
				h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Path: "smartpos-transaction", Count: 2})
			}
			h.open()
			x := h.create(checkoutReq(silent[0], "x", 1000))
			y := h.create(checkoutReq(silent[1], "y", 1000))
			x2 := h.create(checkoutReq(silent[0], "x2", 1000)) // behind X
			eventually(t, "X and Y pushed to their terminals", func() bool { return link.pushCount() == 2 })
			for _, c := range []pos.Checkout{x, y} {
				c = h.get(c.ID)
				if c.State != pos.StateSent || c.Attempts != 1 || tc.adopt != hasReason(c, pos.StateSent, "adopted") {
					t.Fatalf("%s: %s after %d attempts, history %+v; want sent after 1 attempt (adopted: %v)",
						c.IdempotencyKey, c.State, c.Attempts, c.History, tc.adopt)
				}
				h.wantOneInvoice(c)
			}
			if tc.adopt {
				if n := h.sim.Stats().FaultsFired[hesabesim.FaultApplyThenDrop]; n != 2 {
					t.Fatalf("apply-then-drop fired %d times, want 2", n)
				}
			}

			// Both slots' checkouts are waiting on their terminals.
			z := h.create(checkoutReq(healthy, "z", 1000))
			if got := h.waitWithin(z.ID, 5*time.Second, pos.StateSent); got.State != pos.StateSent {
				t.Fatalf("Z is %s 5s after it was accepted (CallTimeout %s): a submission slot waited for a silent terminal's push",
					got.State, opts.CallTimeout)
			}
			h.wantOneInvoice(z)

			// X is paid while its push still waits: X2 is not submitted
			// on that terminal until the push settles.
			if err := h.sim.SetInvoiceStatus(h.get(x.ID).InvoiceID, hesabe.InvoicePaid); err != nil {
				t.Fatal(err)
			}
			h.waitFor(x.ID, pos.StatePaid)
			time.Sleep(300 * time.Millisecond)
			if c := h.get(x2.ID); c.State != pos.StateQueued || h.invoices(c) != 0 {
				t.Fatalf("X2: %s with %d invoices while X's push was under way, want queued", c.State, h.invoices(c))
			}
			close(release) // the terminals answer (refusing): the pushes settle
			if got := h.waitWithin(x2.ID, 5*time.Second, pos.StateSent); got.State != pos.StateSent {
				t.Fatalf("X2 is %s 5s after X's push settled, want sent", got.State)
			}
			h.wantOneInvoice(x2)
			// The push follows the commit of sent, in the background.
			eventually(t, "X2 pushed", func() bool { return link.pushCount() == 4 })
			time.Sleep(50 * time.Millisecond)
			if n := link.pushCount(); n != 4 {
				t.Fatalf("%d pushes, want 4 (X, Y, Z, X2)", n)
			}
		})
	}
}

func (h *harness) get(id string) pos.Checkout {
	h.t.Helper()
	c, err := h.eng.Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("Get(%s): %v", id, err)
	}
	return c
}

// waitWithin waits (on the engine's notifications) up to d for checkout id
// to be in one of states, and returns it as it is then.
func (h *harness) waitWithin(id string, d time.Duration, states ...pos.State) pos.Checkout {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var since time.Time
	for {
		c, err := h.eng.Wait(ctx, id, since)
		if err != nil {
			h.t.Fatalf("Wait(%s): %v", id, err)
		}
		for _, s := range states {
			if c.State == s {
				return c
			}
		}
		if ctx.Err() != nil {
			return c
		}
		since = c.UpdatedAt
	}
}
