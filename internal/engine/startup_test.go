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

// TestOpenDoesNotWaitForLookups: a crash left 20 checkouts in submitting
// (one per terminal) and the gateway hangs. Open must not look each one
// up in turn before it returns (20 × CallTimeout = 40 s here): the daemon
// opens the till API only after Open, so the tills would get no answer
// at all meanwhile. The no-double-charge rule still holds: none of them
// is sent while its look-up is unsettled, and once the gateway answers
// each ends with exactly one invoice (adopted where the crashed attempt
// had created it).
func TestOpenDoesNotWaitForLookups(t *testing.T) {
	const n = 20
	simOpt, terms := withTerminals(n)
	opts := fastOptions()
	opts.Terminals = terms
	opts.CallTimeout = 2 * time.Second
	h := newHarness(t, opts, false, simOpt)
	h.payAll(hesabe.InvoicePaid, 0)
	ctx := context.Background()
	var cs []pos.Checkout
	for i, term := range terms {
		c := h.create(checkoutReq(term, fmt.Sprintf("k%02d", i), pos.Money(1000+i)))
		if _, err := h.store.Transition(ctx, c.ID, pos.StateSubmitting, "submitting", nil); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			h.invoiceAt(c) // this one's create had reached Hesabe
		}
		cs = append(cs, c)
	}
	// Every look-up hangs until its call times out.
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Path: "smartpos-invoices", Latency: time.Minute})

	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	opened := make(chan error, 1)
	start := time.Now()
	go func() { opened <- h.eng.Open(octx) }()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		cancel()
		<-opened
		t.Fatalf("Open had not returned after %s: %d look-ups of up to %s each, one at a time",
			time.Since(start).Round(time.Second), n, opts.CallTimeout)
	}

	// Each look-up times out; the checkout goes back to queued, unsent.
	for _, c := range cs {
		h.waitUntil(c.ID, "the failed look-up", func(c pos.Checkout) bool {
			return hasReason(c, pos.StateQueued, "look-up failed")
		})
	}
	for i, c := range cs {
		if got, want := h.invoices(c), 1-i%2; got != want {
			t.Fatalf("checkout %d: %d invoices while its look-ups hung, want %d", i, got, want)
		}
	}

	h.sim.ClearFaults()
	for i, c := range cs {
		c = h.waitFor(c.ID, pos.StatePaid)
		h.wantOneInvoice(c)
		if adopted := hasReason(c, pos.StateSent, "adopted"); adopted != (i%2 == 0) {
			t.Fatalf("checkout %d: adopted %v, history %+v", i, adopted, c.History)
		}
	}
}
