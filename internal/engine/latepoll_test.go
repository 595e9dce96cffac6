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

// TestSlowLatePollDelaysNoOther: two expired checkouts whose invoices
// reached Hesabe are watched for a late payment. The gateway takes its
// time answering the poll of one of them (up to CallTimeout, here a
// minute). The other one's customer pays meanwhile: the till must learn
// it (expired → paid) at the next poll, not after the slow one; and the
// slow invoice is not polled again while its poll is under way.
func TestSlowLatePollDelaysNoOther(t *testing.T) {
	opts := fastOptions()
	opts.CallTimeout = time.Minute
	h := newHarness(t, opts, false)
	expired := func(c pos.Checkout) *hesabe.POSInvoice {
		t.Helper()
		inv := h.leftSent(c)
		if _, err := h.store.Transition(context.Background(), c.ID, pos.StateExpired, "not paid by its deadline", func(c *pos.Checkout) error {
			c.Result = &pos.Result{Reason: "not paid by its deadline; watched for a late payment", Source: "bridge", At: time.Now()}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return inv
	}
	x := h.create(checkoutReq(termA, "x", 1000))
	xinv := expired(x)
	z := h.create(checkoutReq(termB, "z", 1000))
	zinv := expired(z)
	// Only Z's poll is slow (Z's is the newest invoice, so no other id
	// starts with its digits).
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Path: fmt.Sprintf("smartpos-invoices/%d", zinv.ID), Latency: time.Minute})
	h.open()
	eventually(t, "Z's poll under way", func() bool { return h.sim.Stats().FaultsFired[hesabesim.FaultLatency] > 0 })
	if err := h.sim.SetInvoiceStatus(xinv.ID, hesabe.InvoicePaid); err != nil {
		t.Fatal(err)
	}
	c := h.waitFor(x.ID, pos.StatePaid)
	if !hasReason(c, pos.StatePaid, "late payment") {
		t.Errorf("X paid without the late-payment reason: %+v", c.History)
	}
	if n := h.sim.Stats().FaultsFired[hesabesim.FaultLatency]; n != 1 {
		t.Fatalf("Z polled %d times while its first poll was under way, want 1", n)
	}
	if c, err := h.eng.Get(context.Background(), z.ID); err != nil || c.State != pos.StateExpired {
		t.Fatalf("Z: %v %s, want still expired", err, c.State)
	}
	if st := h.eng.Status(); st.LatePaid != 1 {
		t.Errorf("status: %d late payments, want 1", st.LatePaid)
	}
}
