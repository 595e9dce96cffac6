package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

func TestPaidByGatewayPolling(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.payAll(hesabe.InvoicePaid, 50*time.Millisecond)
	events, stop := h.eng.Subscribe()
	defer stop()
	c := h.create(checkoutReq(termA, "k1", 1500))
	if c.State != pos.StateQueued || c.InvoiceNumber == "" || c.ID == "" {
		t.Fatalf("created %+v", c)
	}
	c = h.waitFor(c.ID, pos.StatePaid)
	if c.Result == nil || c.Result.Outcome != pos.OutcomeApproved || c.Result.Source != "gateway" {
		t.Fatalf("result %+v", c.Result)
	}
	inv := h.wantOneInvoice(c)
	if c.InvoiceID != inv.ID || c.TransactionID != inv.TransactionID || inv.Amount != 1500 || inv.TerminalID != termA {
		t.Fatalf("checkout %+v, invoice %+v", c, inv)
	}
	// Subscribers saw every step, in order.
	var seen []pos.State
	for len(seen) == 0 || seen[len(seen)-1] != pos.StatePaid {
		select {
		case ev := <-events:
			if ev.ID == c.ID {
				seen = append(seen, ev.State)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("subscriber saw %v", seen)
		}
	}
	want := []pos.State{pos.StateQueued, pos.StateSubmitting, pos.StateSent, pos.StatePaid}
	if strings.Join(states(seen), ",") != strings.Join(states(want), ",") {
		t.Fatalf("subscriber saw %v, want %v", seen, want)
	}
	if st := h.eng.Status(); !st.Online || st.Queued != 0 || st.LastGatewayOK.IsZero() {
		t.Fatalf("status %+v", st)
	}
}

func states(s []pos.State) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func TestPaidByTerminalEvent(t *testing.T) {
	opts := fastOptions()
	opts.PollInterval = time.Hour // results only from the terminal
	h, link := newLinkedHarness(t, opts)
	link.onPush = func(c pos.Checkout) []pos.TerminalEvent {
		return []pos.TerminalEvent{
			{Kind: pos.TerminalAck, TerminalID: c.TerminalID, TransactionID: c.TransactionID},
			{Kind: pos.TerminalResult, TerminalID: c.TerminalID, TransactionID: c.TransactionID,
				Outcome: pos.OutcomeApproved, Reference: "AUTH123"},
			// A repeat is harmless.
			{Kind: pos.TerminalResult, TerminalID: c.TerminalID, TransactionID: c.TransactionID,
				Outcome: pos.OutcomeApproved, Reference: "AUTH123"},
		}
	}
	h.open()
	c := h.create(checkoutReq(termA, "k1", 1500))
	c = h.waitFor(c.ID, pos.StatePaid)
	if c.Result.Source != "terminal" || c.Result.Reference != "AUTH123" {
		t.Fatalf("result %+v", c.Result)
	}
	if !hasReason(c, pos.StateOnTerminal, "acknowledged") {
		t.Fatalf("no on_terminal step: %+v", c.History)
	}
	h.wantOneInvoice(c)
}

func TestDeclined(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.payAll(hesabe.InvoiceFailed, 0)
	c := h.create(checkoutReq(termB, "k1", 2500))
	c = h.waitFor(c.ID, pos.StateDeclined)
	if c.Result == nil || c.Result.Outcome != pos.OutcomeDeclined {
		t.Fatalf("result %+v", c.Result)
	}
}

func TestPermanentErrorFails(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultPlainError, Path: "smartpos-transaction", Count: 1})
	c := h.create(checkoutReq(termA, "k1", 1500))
	c = h.waitFor(c.ID, pos.StateFailed)
	if c.Result == nil || !strings.Contains(c.Result.Reason, "Invalid Request Data") || c.Result.Source != "gateway" {
		t.Fatalf("result %+v", c.Result)
	}
	if c.Attempts != 1 || h.invoices(c) != 0 {
		t.Fatalf("attempts %d, invoices %d", c.Attempts, h.invoices(c))
	}
}

func TestRetryableBacksOff(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.payAll(hesabe.InvoicePaid, 0)
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Path: "smartpos-transaction", Count: 2, Status: 503})
	c := h.create(checkoutReq(termA, "k1", 1500))
	c = h.waitFor(c.ID, pos.StatePaid)
	if c.Attempts != 3 {
		t.Fatalf("attempts %d, want 3", c.Attempts)
	}
	retries := 0
	for _, tr := range c.History {
		if tr.From == pos.StateSubmitting && tr.To == pos.StateQueued {
			retries++
		}
	}
	if retries != 2 {
		t.Fatalf("%d retries in history %+v", retries, c.History)
	}
	h.wantOneInvoice(c)
}

func TestRateLimited429(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.payAll(hesabe.InvoicePaid, 0)
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: "smartpos-transaction", Count: 1})
	c := h.create(checkoutReq(termA, "k1", 1500))
	c = h.waitFor(c.ID, pos.StatePaid)
	if c.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", c.Attempts)
	}
	h.wantOneInvoice(c)
}

func TestAmbiguousReconcileAdopts(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.payAll(hesabe.InvoicePaid, 100*time.Millisecond)
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Path: "smartpos-transaction", Count: 1})
	c := h.create(checkoutReq(termA, "k1", 1500))
	c = h.waitFor(c.ID, pos.StatePaid)
	if c.Attempts != 1 {
		t.Fatalf("attempts %d, want 1 (adopted, not resent)", c.Attempts)
	}
	if !hasReason(c, pos.StateSent, "adopted") {
		t.Fatalf("not adopted: %+v", c.History)
	}
	h.wantOneInvoice(c)
	if n := h.sim.Stats().FaultsFired[hesabesim.FaultApplyThenDrop]; n != 1 {
		t.Fatalf("fault fired %d times", n)
	}
}

func TestStartupReconcile(t *testing.T) {
	h := newHarness(t, fastOptions(), false)
	h.payAll(hesabe.InvoicePaid, 0)
	ctx := context.Background()
	// Two checkouts left in submitting by a "crash": A's invoice reached
	// Hesabe, B's did not.
	a, _, err := h.eng.Create(ctx, checkoutReq(termA, "a", 1000))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := h.eng.Create(ctx, checkoutReq(termB, "b", 2000))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []pos.Checkout{a, b} {
		if _, err := h.store.Transition(ctx, c.ID, pos.StateSubmitting, "before crash", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.client.CreatePOSInvoice(ctx, hesabe.POSInvoiceRequest{CustomerName: "Salman", Amount: 1000,
		TerminalID: termA, InvoiceNumber: a.InvoiceNumber}); err != nil {
		t.Fatal(err)
	}
	h.open()
	a = h.waitFor(a.ID, pos.StatePaid)
	b = h.waitFor(b.ID, pos.StatePaid)
	if !hasReason(a, pos.StateSent, "reconciled") || a.Attempts != 1 {
		t.Fatalf("a not adopted at start-up: attempts %d, %+v", a.Attempts, a.History)
	}
	if !hasReason(b, pos.StateQueued, "not at the gateway") || b.Attempts != 2 {
		t.Fatalf("b: attempts %d, %+v", b.Attempts, b.History)
	}
	h.wantOneInvoice(a)
	h.wantOneInvoice(b)
}

func TestOneActivePerTerminalFIFO(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	var cs []pos.Checkout
	for i, key := range []string{"k1", "k2", "k3"} {
		cs = append(cs, h.create(checkoutReq(termA, key, pos.Money(1000+i))))
	}
	other := h.create(checkoutReq(termB, "other", 500))
	h.waitFor(other.ID, pos.StateSent) // the other terminal is not held up
	for i := range cs {
		sent := h.waitFor(cs[i].ID, pos.StateSent)
		// Nobody behind it has been sent.
		for _, later := range cs[i+1:] {
			if got, _ := h.eng.Get(context.Background(), later.ID); got.State != pos.StateQueued || h.invoices(later) != 0 {
				t.Fatalf("%s is %s while %s is active", later.ID, got.State, sent.ID)
			}
		}
		if err := h.sim.SetInvoiceStatus(sent.InvoiceID, hesabe.InvoicePaid); err != nil {
			t.Fatal(err)
		}
		h.waitFor(cs[i].ID, pos.StatePaid)
	}
	// FIFO: invoices were created in acceptance order.
	var last int64
	for _, c := range cs {
		inv := h.wantOneInvoice(c)
		if inv.ID <= last {
			t.Fatalf("invoice order: %d after %d", inv.ID, last)
		}
		last = inv.ID
	}
}

func TestIdempotency(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	ctx := context.Background()
	req := checkoutReq(termA, "same-key", 1500)
	c1 := h.create(req)
	c2, existing, err := h.eng.Create(ctx, req)
	if err != nil || !existing || c2.ID != c1.ID {
		t.Fatalf("retry: %v existing=%v id %s vs %s", err, existing, c2.ID, c1.ID)
	}
	for name, change := range map[string]func(r *pos.CheckoutRequest){
		"amount":   func(r *pos.CheckoutRequest) { r.Amount++ },
		"terminal": func(r *pos.CheckoutRequest) { r.TerminalID = termB },
		"customer": func(r *pos.CheckoutRequest) { r.Customer.Name = "Other" },
		"deadline": func(r *pos.CheckoutRequest) { r.Deadline = time.Minute },
	} {
		r := req
		change(&r)
		_, _, err := h.eng.Create(ctx, r)
		if pos.ErrorCode(err) != pos.EConflict {
			t.Errorf("%s changed: err %v, want conflict", name, err)
		}
	}
	// Validation.
	for name, r := range map[string]pos.CheckoutRequest{
		"terminal_id": checkoutReq("nope", "v1", 100),
		"amount":      checkoutReq(termA, "v2", 0),
		"deadline":    func() pos.CheckoutRequest { r := checkoutReq(termA, "v3", 100); r.Deadline = time.Hour; return r }(),
	} {
		_, _, err := h.eng.Create(ctx, r)
		var pe *pos.Error
		if !asPosError(err, &pe) || pe.Code != pos.EInvalid || pe.Field != name {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func asPosError(err error, pe **pos.Error) bool {
	e, ok := err.(*pos.Error)
	if ok {
		*pe = e
	}
	return ok
}

func TestDeadlineNeverSentLate(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	// The first checkout holds terminal A (never paid); the second waits
	// behind it with a short deadline.
	first := h.create(checkoutReq(termA, "first", 1000))
	first = h.waitFor(first.ID, pos.StateSent)
	r := checkoutReq(termA, "second", 2000)
	r.Deadline = 200 * time.Millisecond
	second := h.create(r)
	second = h.waitFor(second.ID, pos.StateExpired)
	if second.Result == nil || second.Result.Source != "bridge" || second.Attempts != 0 {
		t.Fatalf("expired %+v", second)
	}
	// Free the terminal: the expired one must never be sent.
	if err := h.sim.SetInvoiceStatus(first.InvoiceID, hesabe.InvoicePaid); err != nil {
		t.Fatal(err)
	}
	h.waitFor(first.ID, pos.StatePaid)
	third := h.create(checkoutReq(termA, "third", 3000))
	h.waitFor(third.ID, pos.StateSent)
	if n := h.invoices(second); n != 0 {
		t.Fatalf("expired checkout was sent: %d invoices", n)
	}
}

func TestSentPastDeadlineCancelGrace(t *testing.T) {
	opts := fastOptions()
	opts.CancelGrace = 150 * time.Millisecond
	h, link := newLinkedHarness(t, opts)
	h.open()
	r := checkoutReq(termA, "k1", 1500)
	r.Deadline = 300 * time.Millisecond
	c := h.create(r)
	c = h.waitFor(c.ID, pos.StateSent)
	// Nobody confirms the cancel: expired after the grace, with the reason.
	c = h.waitFor(c.ID, pos.StateExpired)
	if !strings.Contains(c.Result.Reason, "did not confirm") || link.cancelCount() == 0 || !c.CancelRequested {
		t.Fatalf("expired: %+v, cancels %d", c.Result, link.cancelCount())
	}
	// The customer paid after all: the till learns it (expired → paid).
	if err := h.sim.SetInvoiceStatus(c.InvoiceID, hesabe.InvoicePaid); err != nil {
		t.Fatal(err)
	}
	c = h.waitFor(c.ID, pos.StatePaid)
	if !strings.Contains(c.Result.Reason, "after the bridge had expired") {
		t.Fatalf("late paid: %+v", c.Result)
	}
	if st := h.eng.Status(); st.LatePaid != 1 {
		t.Fatalf("LatePaid %d", st.LatePaid)
	}
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	t.Run("queued", func(t *testing.T) {
		h := newHarness(t, fastOptions(), true)
		first := h.create(checkoutReq(termA, "first", 1000))
		h.waitFor(first.ID, pos.StateSent)
		q := h.create(checkoutReq(termA, "queued", 1000))
		got, err := h.eng.Cancel(ctx, q.ID)
		if err != nil || got.State != pos.StateCanceled || got.Result.Source != "till" {
			t.Fatalf("cancel queued: %v %+v", err, got)
		}
		again, err := h.eng.Cancel(ctx, q.ID)
		if err != nil || again.State != pos.StateCanceled {
			t.Fatalf("cancel again: %v %s", err, again.State)
		}
	})
	t.Run("sent/confirmed by gateway", func(t *testing.T) {
		h := newHarness(t, fastOptions(), true)
		c := h.create(checkoutReq(termA, "k", 1000))
		c = h.waitFor(c.ID, pos.StateSent)
		got, err := h.eng.Cancel(ctx, c.ID)
		if err != nil || got.State != pos.StateSent || !got.CancelRequested {
			t.Fatalf("cancel sent: %v %+v", err, got)
		}
		if err := h.sim.SetInvoiceStatus(c.InvoiceID, hesabe.InvoiceCanceled); err != nil {
			t.Fatal(err)
		}
		h.waitFor(c.ID, pos.StateCanceled)
	})
	t.Run("sent/confirmed by terminal", func(t *testing.T) {
		opts := fastOptions()
		opts.PollInterval = time.Hour
		h, link := newLinkedHarness(t, opts)
		link.onPush = func(c pos.Checkout) []pos.TerminalEvent {
			return []pos.TerminalEvent{{Kind: pos.TerminalAck, TerminalID: c.TerminalID, TransactionID: c.TransactionID}}
		}
		link.onCancel = func(c pos.Checkout) []pos.TerminalEvent {
			return []pos.TerminalEvent{{Kind: pos.TerminalResult, TerminalID: c.TerminalID, InvoiceNumber: c.InvoiceNumber,
				Outcome: pos.OutcomeCanceled, Reason: "canceled on the terminal"}}
		}
		h.open()
		c := h.create(checkoutReq(termA, "k", 1000))
		c = h.waitFor(c.ID, pos.StateOnTerminal)
		if _, err := h.eng.Cancel(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		c = h.waitFor(c.ID, pos.StateCanceled)
		if c.Result.Source != "terminal" {
			t.Fatalf("result %+v", c.Result)
		}
	})
	t.Run("paid", func(t *testing.T) {
		h := newHarness(t, fastOptions(), true)
		h.payAll(hesabe.InvoicePaid, 0)
		c := h.create(checkoutReq(termA, "k", 1000))
		h.waitFor(c.ID, pos.StatePaid)
		_, err := h.eng.Cancel(ctx, c.ID)
		if pos.ErrorCode(err) != pos.EConflict || !strings.Contains(err.Error(), "already paid") {
			t.Fatalf("cancel paid: %v", err)
		}
	})
	t.Run("submitting", func(t *testing.T) {
		h := newHarness(t, fastOptions(), true)
		// The create hangs long enough to cancel while submitting.
		h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Path: "smartpos-transaction", Count: 1, Latency: 300 * time.Millisecond})
		c := h.create(checkoutReq(termA, "k", 1000))
		c = h.waitFor(c.ID, pos.StateSubmitting)
		got, err := h.eng.Cancel(ctx, c.ID)
		if err != nil || !got.CancelRequested {
			t.Fatalf("cancel submitting: %v %+v", err, got)
		}
		c = h.waitFor(c.ID, pos.StateSent)
		if !c.CancelRequested {
			t.Fatal("cancel request lost")
		}
		_ = h.sim.SetInvoiceStatus(c.InvoiceID, hesabe.InvoiceCanceled)
		h.waitFor(c.ID, pos.StateCanceled)
	})
	t.Run("unknown", func(t *testing.T) {
		h := newHarness(t, fastOptions(), true)
		if _, err := h.eng.Cancel(ctx, "co_00000000_1"); pos.ErrorCode(err) != pos.ENotFound {
			t.Fatalf("err %v", err)
		}
	})
}

func TestWaitReturnsOnChangeOrContext(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	first := h.create(checkoutReq(termA, "first", 1000))
	first = h.waitFor(first.ID, pos.StateSent)
	// Nothing changes: Wait returns the current checkout when ctx ends.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	got, err := h.eng.Wait(ctx, first.ID, first.UpdatedAt)
	if err != nil || got.State != pos.StateSent {
		t.Fatalf("Wait at timeout: %v %s", err, got.State)
	}
	done := make(chan pos.Checkout, 1)
	go func() {
		c, _ := h.eng.Wait(context.Background(), first.ID, first.UpdatedAt)
		done <- c
	}()
	time.Sleep(20 * time.Millisecond)
	_ = h.sim.SetInvoiceStatus(first.InvoiceID, hesabe.InvoicePaid)
	select {
	case c := <-done:
		if !c.UpdatedAt.After(first.UpdatedAt) {
			t.Fatalf("Wait returned an unchanged checkout")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return on a change")
	}
}

func TestCloseRefusesAccepts(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.close()
	_, _, err := h.eng.Create(context.Background(), checkoutReq(termA, "k", 100))
	if pos.ErrorCode(err) != pos.EUnavailable {
		t.Fatalf("err %v", err)
	}
}
