package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/requests"
)

// waitUntil waits (on the engine's notifications) until cond holds for
// checkout id, failing the test after a generous timeout.
func (h *harness) waitUntil(id, what string, cond func(pos.Checkout) bool) pos.Checkout {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var since time.Time
	for {
		c, err := h.eng.Wait(ctx, id, since)
		if err != nil {
			h.t.Fatalf("Wait(%s): %v", id, err)
		}
		if cond(c) {
			return c
		}
		if ctx.Err() != nil {
			h.t.Fatalf("checkout %s: no %s after 20s (state %s, attempts %d, history %+v)", id, what, c.State, c.Attempts, c.History)
		}
		since = c.UpdatedAt
	}
}

// TestCancelDuringLookupNotSent: a checkout whose first attempt failed is
// looked up before it is sent again; the till cancels it while that
// look-up is under way (submitting, cancel_requested). The look-up says
// "not at the gateway", so nothing was sent: it must end canceled without
// an invoice, not be sent to the terminal after the till canceled it.
func TestCancelDuringLookupNotSent(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	// The first create fails with a 503 (not applied); every look-up is
	// slow, so the till's cancel lands while the second attempt looks the
	// invoice up.
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Path: "smartpos-transaction", Count: 1, Status: 503})
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Path: "smartpos-invoices", Latency: 1500 * time.Millisecond})
	c := h.create(checkoutReq(termA, "k1", 1500))
	h.waitUntil(c.ID, "second attempt", func(c pos.Checkout) bool {
		return c.State == pos.StateSubmitting && c.Attempts == 2
	})
	got, err := h.eng.Cancel(context.Background(), c.ID)
	if err != nil || got.State != pos.StateSubmitting || !got.CancelRequested {
		t.Fatalf("cancel while looking up: %v %+v", err, got)
	}
	c = h.waitFor(c.ID, pos.StateCanceled, pos.StateSent, pos.StateOnTerminal, pos.StateExpired, pos.StateFailed)
	if n := h.invoices(c); c.State != pos.StateCanceled || n != 0 {
		t.Fatalf("canceled during the look-up: state %s, %d invoices (sent after the till canceled); history %+v", c.State, n, c.History)
	}
	if c.Result == nil || c.Result.Source != "till" {
		t.Fatalf("result %+v", c.Result)
	}
}

// TestLateWatchReloadedPastManyFinished: the late-payment watch list is
// rebuilt at Open from the checkouts finished within LateWindow. With more
// than 10,000 of them (a busy hour's paid ones), an expired checkout
// whose invoice reached the gateway must still be watched, so its late
// payment reaches the till.
func TestLateWatchReloadedPastManyFinished(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 10,000 checkouts")
	}
	h := newHarness(t, fastOptions(), false)
	ctx := context.Background()
	// 10,000 checkouts finished first (canceled before they were sent).
	const n = 10_000
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				c, _, err := h.store.Create(ctx, pos.Checkout{TerminalID: fmt.Sprintf("bulk%02d", w), Amount: 100,
					Deadline: time.Now().Add(time.Hour)})
				if err == nil {
					_, err = h.store.Transition(ctx, c.ID, pos.StateCanceled, "canceled by the till", nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Then one that expired at the terminal after its invoice was sent.
	c := h.create(checkoutReq(termA, "late", 1500))
	inv := h.leftSent(c)
	if _, err := h.store.Transition(ctx, c.ID, pos.StateExpired, "not paid by its deadline", func(c *pos.Checkout) error {
		c.Result = &pos.Result{Reason: "not paid by its deadline; watched for a late payment", Source: "bridge", At: time.Now()}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.open()
	// The customer pays after all.
	if err := h.sim.SetInvoiceStatus(inv.ID, hesabe.InvoicePaid); err != nil {
		t.Fatal(err)
	}
	c = h.waitFor(c.ID, pos.StatePaid)
	if !strings.Contains(c.Result.Reason, "after the bridge had expired") {
		t.Fatalf("late paid: %+v", c.Result)
	}
}

// TestOpenAsksCancelOfCancelRequested: the bridge stopped after it stored a
// cancel request for a sent checkout but before the terminal link heard of
// it (Cancel and the deadline commit cancel_requested first, then ask the
// link). At the next Open the terminal must be asked again, or the invoice
// stays on its screen, payable, until the grace period expires it.
func TestOpenAsksCancelOfCancelRequested(t *testing.T) {
	opts := fastOptions()
	opts.CancelGrace = 3 * time.Second
	h, link := newLinkedHarness(t, opts)
	link.onCancel = canceledOnTerminal
	ctx := context.Background()
	// Left by the last run: sent, the till's cancel stored, the link never
	// asked.
	c := h.create(checkoutReq(termA, "k1", 1500))
	h.leftSent(c)
	if _, err := h.store.Transition(ctx, c.ID, pos.StateSent, "", func(c *pos.Checkout) error {
		c.CancelRequested, c.CancelRequestedAt = true, time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.open()
	c = h.waitFor(c.ID, pos.StateCanceled, pos.StateExpired)
	if c.State != pos.StateCanceled || c.Result.Source != "terminal" || link.cancelCount() == 0 {
		t.Fatalf("after restart: %s (%+v), terminal asked to cancel %d times", c.State, c.Result, link.cancelCount())
	}
}

// TestAdoptedPastDeadlineNotPushed: a checkout whose earlier attempt may
// have reached Hesabe is looked up after its deadline passed, and found
// (pending). It is adopted, but its invoice must not be pushed to the
// terminal any more: it is past its deadline, so it is taken off the
// terminal instead (cancel asked at once).
func TestAdoptedPastDeadlineNotPushed(t *testing.T) {
	opts := fastOptions()
	h, link := newLinkedHarness(t, opts)
	link.onCancel = canceledOnTerminal
	r := checkoutReq(termA, "k1", 1500)
	r.Deadline = 50 * time.Millisecond
	c := h.create(r)
	// The last run's attempt failed in a way that may have created the
	// invoice, and it was created.
	h.leftUnknown(c)
	eventually(t, "deadline passed", func() bool { return !time.Now().Before(c.Deadline) })
	h.open()
	c = h.waitFor(c.ID, pos.StateCanceled, pos.StateExpired, pos.StatePaid)
	link.mu.Lock()
	pushes := len(link.pushes)
	link.mu.Unlock()
	if pushes != 0 || c.State != pos.StateCanceled || !hasReason(c, pos.StateSent, "adopted") {
		t.Fatalf("adopted after its deadline: %d pushes to the terminal, state %s, history %+v", pushes, c.State, c.History)
	}
	h.wantOneInvoice(c)
}

// answerAtClose delivers through a real handler, then holds the gateway's
// answer until the engine stops: the answer arrives just as Close begins.
type answerAtClose struct {
	engine.RequestHandler
	delivered chan struct{}
	once      sync.Once
}

func (a *answerAtClose) Deliver(ctx context.Context, r pos.Request) (json.RawMessage, error) {
	res, err := a.RequestHandler.Deliver(ctx, r)
	a.once.Do(func() { close(a.delivered) })
	<-ctx.Done()
	return res, err
}

// TestRequestAnsweredAtCloseRecorded: an installment batch Hesabe answered
// (accepted, or refused) while the engine was closing must be recorded as
// such, not left submitting, which the next start can only call uncertain
// (a person then checks the dashboard for a batch whose fate is known).
func TestRequestAnsweredAtCloseRecorded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   *hesabesim.Fault
		want    pos.RequestState
		batches int
	}{
		{"accepted", nil, pos.RequestSucceeded, 1},
		{"refused", &hesabesim.Fault{Kind: hesabesim.FaultPlainError, Path: "invoice/emi", Count: 1}, pos.RequestFailed, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := fastOptions()
			h := newHarness(t, opts, false)
			if tc.fault != nil {
				h.sim.Inject(*tc.fault)
			}
			handler := &answerAtClose{RequestHandler: requests.HesabeInstallments{Client: h.client}, delivered: make(chan struct{})}
			h.eng = engine.New(h.store, h.client, withRequests(opts, handler))
			h.open()
			r, _, err := h.eng.SubmitRequest(context.Background(), pos.KindInstallments, "batch-1", installmentBatch())
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-handler.delivered:
			case <-time.After(20 * time.Second):
				t.Fatal("the batch was not delivered")
			}
			h.close()
			// The next start.
			eng := engine.New(h.store, h.client, withRequests(opts, requests.HesabeInstallments{Client: h.client}))
			if err := eng.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer eng.Close(context.Background())
			r, err = eng.GetRequest(context.Background(), pos.KindInstallments, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.State != tc.want || h.sim.EMIBatchCount() != tc.batches {
				t.Fatalf("batch answered by Hesabe as the engine closed: %s (%+v), %d batches at Hesabe", r.State, r.Error, h.sim.EMIBatchCount())
			}
		})
	}
}

func withRequests(opts engine.Options, h engine.RequestHandler) engine.Options {
	opts.Requests = map[pos.RequestKind]engine.RequestHandler{pos.KindInstallments: h}
	return opts
}

// installmentBatch is a till's request for one HeStallMent invoice.
func installmentBatch() []byte {
	return []byte(fmt.Sprintf(`{"till_ref":"R-1","invoices":[{"amount":"150.000","expires_at":%q,"reference_number":"REF-1",
		"invoice_type":"1","invoice_sub_type":"0","language":"ar","description":"sofa","customer_name":"Ahmed",
		"mobile_number":"12345678","payment_types":[1,2],
		"items":[{"title":"Sofa","rate":"75.000","quantity":2,"amount":"150.000"}]}]}`,
		time.Now().Add(48*time.Hour).Format(time.DateOnly)))
}

// TestAdoptedCancelRequestedNotPushed: the till canceled a checkout whose
// earlier attempt may have reached Hesabe; the look-up finds the invoice,
// so it is adopted and canceled as sent. Its invoice must not be pushed
// to the terminal first: the till canceled the sale.
func TestAdoptedCancelRequestedNotPushed(t *testing.T) {
	opts := fastOptions()
	h, link := newLinkedHarness(t, opts)
	link.onCancel = canceledOnTerminal
	ctx := context.Background()
	c := h.create(checkoutReq(termA, "k1", 1500))
	h.leftUnknown(c)
	got, err := h.eng.Cancel(ctx, c.ID)
	if err != nil || got.State != pos.StateQueued || !got.CancelRequested {
		t.Fatalf("cancel: %v %+v", err, got)
	}
	h.open()
	c = h.waitFor(c.ID, pos.StateCanceled, pos.StateExpired, pos.StatePaid)
	link.mu.Lock()
	pushes := len(link.pushes)
	link.mu.Unlock()
	if pushes != 0 || c.State != pos.StateCanceled || !hasReason(c, pos.StateSent, "adopted") {
		t.Fatalf("adopted after the till canceled: %d pushes to the terminal, state %s, history %+v", pushes, c.State, c.History)
	}
	h.wantOneInvoice(c)
}

// TestCancelGraceFromAdoption: the till canceled a checkout long ago, while
// it waited (queued, with an earlier attempt that may have reached
// Hesabe). When the look-up finally finds its invoice, the terminal is
// asked to cancel it: it must get CancelGrace to confirm from then, not
// be expired at the first poll because the till asked long ago.
func TestCancelGraceFromAdoption(t *testing.T) {
	opts := fastOptions()
	opts.PollInterval = 5 * time.Millisecond
	opts.CancelGrace = 10 * time.Second
	h, link := newLinkedHarness(t, opts)
	link.onCancel = func(c pos.Checkout) []pos.TerminalEvent {
		// The terminal confirms a little later.
		time.AfterFunc(300*time.Millisecond, func() {
			h.eng.OnTerminalEvent(pos.TerminalEvent{Kind: pos.TerminalResult, TerminalID: c.TerminalID,
				TransactionID: c.TransactionID, Outcome: pos.OutcomeCanceled, Reason: "canceled on the terminal"})
		})
		return nil
	}
	ctx := context.Background()
	c := h.create(checkoutReq(termA, "k1", 1500))
	h.leftUnknown(c)
	// The till's cancel, stored a grace period ago.
	if _, err := h.store.Transition(ctx, c.ID, pos.StateQueued, "", func(c *pos.Checkout) error {
		c.CancelRequested, c.CancelRequestedAt = true, time.Now().Add(-time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.open()
	c = h.waitFor(c.ID, pos.StateCanceled, pos.StateExpired, pos.StatePaid)
	if c.State != pos.StateCanceled || c.Result.Source != "terminal" {
		t.Fatalf("canceled before it was found at the gateway: %s (%+v), history %+v", c.State, c.Result, c.History)
	}
}

// TestLookupRefusedIsNotAbsent: after an ambiguous create (the invoice was
// applied), Hesabe turns the look-ups away with a 401 (no Hesabe code).
// That says nothing about the invoice: the checkout must not be sent again
// (a second invoice) until a look-up answers, and then be adopted.
func TestLookupRefusedIsNotAbsent(t *testing.T) {
	h := newHarness(t, fastOptions(), true)
	h.payAll(hesabe.InvoicePaid, 0)
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Path: "smartpos-transaction", Count: 1})
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultUnauthorized, Path: "smartpos-invoices"})
	c := h.create(checkoutReq(termA, "k1", 1500))
	// Several attempts, each turned away at its look-up.
	h.waitUntil(c.ID, "three attempts", func(c pos.Checkout) bool {
		return c.Attempts >= 3 || c.State != pos.StateQueued && c.State != pos.StateSubmitting
	})
	if n := h.invoices(c); n != 1 {
		t.Fatalf("%d invoices while the look-ups were refused, want 1", n)
	}
	h.sim.ClearFaults()
	c = h.waitFor(c.ID, pos.StatePaid)
	if !hasReason(c, pos.StateSent, "adopted") {
		t.Fatalf("not adopted: %+v", c.History)
	}
	h.wantOneInvoice(c)
}

// TestCreateNotSentPastDeadline: the create's call ends at the checkout's
// deadline. The client's login takes longer than the checkout has left, so
// the create would have gone out after the deadline (and put the invoice
// on the terminal's screen late). It must not reach the gateway, and the checkout expires.
func TestCreateNotSentPastDeadline(t *testing.T) {
	// The login is slowed before the engine opens: the start-up probe and
	// the submitter share it (one login at a time), whichever asks first.
	// Injected after the open, the probe could log in first, fast.
	h := newHarness(t, fastOptions(), false)
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Latency: 1500 * time.Millisecond, Path: "login", Count: 1})
	req := checkoutReq(termA, "late-login", 1500)
	req.Deadline = time.Second
	c := h.create(req)
	h.open()
	c = h.waitFor(c.ID, pos.StateExpired, pos.StateSent, pos.StateOnTerminal, pos.StatePaid, pos.StateCanceled)
	if c.State != pos.StateExpired {
		t.Fatalf("checkout %s, want expired: %+v", c.State, c.History)
	}
	if n := h.invoices(c); n != 0 {
		t.Fatalf("%d invoices at the gateway, created after the deadline", n)
	}
}

// leftSent stores queued checkout c as a run that stopped after creating
// its invoice leaves it: sent, with the invoice's ids.
func (h *harness) leftSent(c pos.Checkout) *hesabe.POSInvoice {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.store.Transition(ctx, c.ID, pos.StateSubmitting, "submitting", nil); err != nil {
		h.t.Fatal(err)
	}
	inv := h.invoiceAt(c)
	if _, err := h.store.Transition(ctx, c.ID, pos.StateSent, "invoice created", func(c *pos.Checkout) error {
		c.InvoiceID, c.TransactionID = inv.ID, inv.TransactionID
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return inv
}

// leftUnknown stores queued checkout c as a run leaves it after an
// attempt whose outcome it could not learn (queued again, Attempts 1),
// and creates its invoice at the gateway: the attempt had reached it.
func (h *harness) leftUnknown(c pos.Checkout) {
	h.t.Helper()
	ctx := context.Background()
	if _, err := h.store.Transition(ctx, c.ID, pos.StateSubmitting, "submitting", nil); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.store.Transition(ctx, c.ID, pos.StateQueued, "outcome unknown, look-up failed", nil); err != nil {
		h.t.Fatal(err)
	}
	h.invoiceAt(c)
}

// invoiceAt creates c's invoice at the gateway, as the bridge would.
func (h *harness) invoiceAt(c pos.Checkout) *hesabe.POSInvoice {
	h.t.Helper()
	inv, err := h.client.CreatePOSInvoice(context.Background(), hesabe.POSInvoiceRequest{CustomerName: c.Customer.Name,
		Amount: c.Amount, TerminalID: c.TerminalID, InvoiceNumber: c.InvoiceNumber})
	if err != nil {
		h.t.Fatal(err)
	}
	return inv
}

// canceledOnTerminal is a fakeLink's onCancel for a terminal that takes
// the invoice off its screen at once and says so.
func canceledOnTerminal(c pos.Checkout) []pos.TerminalEvent {
	return []pos.TerminalEvent{{Kind: pos.TerminalResult, TerminalID: c.TerminalID, TransactionID: c.TransactionID,
		Outcome: pos.OutcomeCanceled, Reason: "canceled on the terminal"}}
}
