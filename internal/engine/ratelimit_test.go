package engine_test

import (
	"context"
	"errors"
	"net/http"
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

// TestAny429PausesHesabeCalls: a 429 from any call to Hesabe (the start-up
// probe, a status poll, the look-up after an unknown outcome, an
// installment batch), not only from a create, pauses every call to Hesabe
// for its Retry-After (the simulator's is 1 s): no submission starts and
// no poll goes out until it ends. Otherwise an outage's backlog, or the
// polling of many terminals, keeps hammering a gateway that asked us to
// slow down.
func TestAny429PausesHesabeCalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		// trigger makes Hesabe answer one call with a 429; the engine is
		// open when it returns, with a checkout on termA if the case
		// needs one.
		trigger func(t *testing.T, h *harness)
	}{
		{"probe at start-up", func(t *testing.T, h *harness) {
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: "smartpos-invoices", Count: 1})
			h.open()
		}},
		{"status poll", func(t *testing.T, h *harness) {
			h.open()
			x := h.create(checkoutReq(termA, "x", 1000))
			h.waitFor(x.ID, pos.StateSent)
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: "smartpos-invoices/", Count: 1})
		}},
		{"look-up after an unknown outcome", func(t *testing.T, h *harness) {
			h.open()
			eventually(t, "the start-up probe", func() bool {
				return h.sim.Stats().Requests["/api"+hesabe.PathPOSInvoices] > 0
			})
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Path: "smartpos-transaction", Count: 1})
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: "smartpos-invoices", Count: 1})
			h.create(checkoutReq(termA, "x", 1000))
		}},
		{"installment batch", func(t *testing.T, h *harness) {
			h.eng = engine.New(h.store, h.client, withRequests(h.opts, requests.HesabeInstallments{Client: h.client}))
			h.open()
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: "invoice/emi", Count: 1})
			if _, _, err := h.eng.SubmitRequest(context.Background(), pos.KindInstallments, "batch-1", installmentBatch()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, fastOptions(), false)
			// When each create reached Hesabe, by invoice number.
			var mu sync.Mutex
			arrived := map[string]time.Time{}
			h.terminal(func(inv hesabe.POSInvoice) {
				mu.Lock()
				arrived[inv.InvoiceNumber] = time.Now()
				mu.Unlock()
			})
			// When the 429 reached the client: the engine learns of it
			// after that, so its pause ends 1 s later at the earliest.
			limited := make(chan time.Time, 1)
			h.calls(func(op string, err error) {
				var herr *hesabe.Error
				if errors.As(err, &herr) && herr.HTTPStatus == http.StatusTooManyRequests {
					select {
					case limited <- time.Now():
					default:
					}
				}
			})
			tc.trigger(t, h)
			var at429 time.Time
			select {
			case at429 = <-limited:
			case <-time.After(20 * time.Second):
				t.Fatal("no 429")
			}
			calls := func() (n int) {
				for _, c := range h.sim.Stats().Requests {
					n += c
				}
				return n
			}
			before := calls()
			// A checkout for the other terminal, due at once.
			y := h.create(checkoutReq(termB, "y", 2000))
			if wait := time.Until(at429.Add(800 * time.Millisecond)); wait > 0 {
				time.Sleep(wait)
				// A call already on its way may land; the polls (every
				// 30 ms here) and the new checkout's create must not.
				if n := calls() - before; n > 2 {
					t.Errorf("%d calls reached Hesabe in the 800 ms after a 429 with Retry-After: 1", n)
				}
			}
			h.waitFor(y.ID, pos.StateSent)
			mu.Lock()
			at := arrived[y.InvoiceNumber]
			mu.Unlock()
			if gap := at.Sub(at429); gap < time.Second {
				t.Fatalf("a create reached Hesabe %s after a 429 with Retry-After: 1", gap.Round(time.Millisecond))
			}
			if st := h.eng.Status(); !strings.Contains(st.LastGatewayError, "429") {
				t.Errorf("status: last gateway error %q, want the 429", st.LastGatewayError)
			}
		})
	}
}

// TestHesabeRequestSentAfterPause: a customer request (it has no expiry)
// stored while a 429 (here a create's) pauses the calls to Hesabe is
// delivered once the pause ends, not when the request loop next looks on
// its own, up to a minute later.
func TestHesabeRequestSentAfterPause(t *testing.T) {
	opts := fastOptions()
	opts.Requests = map[pos.RequestKind]engine.RequestHandler{pos.KindCustomer: requests.HesabeCustomers{}}
	h := newHarness(t, opts, false)
	opts.Requests[pos.KindCustomer] = requests.HesabeCustomers{Client: h.client}
	h.eng = engine.New(h.store, h.client, opts)
	limited := make(chan struct{})
	var once sync.Once
	h.calls(func(op string, err error) {
		var herr *hesabe.Error
		if errors.As(err, &herr) && herr.HTTPStatus == http.StatusTooManyRequests {
			once.Do(func() { close(limited) })
		}
	})
	h.open()
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: "smartpos-transaction", Count: 1})
	h.create(checkoutReq(termA, "x", 1000))
	select {
	case <-limited:
	case <-time.After(20 * time.Second):
		t.Fatal("no 429")
	}
	ctx := context.Background()
	r, _, err := h.eng.SubmitRequest(ctx, pos.KindCustomer, "cust-1", []byte(`{"name":"Ahmed","email":"ahmed@example.com","mobile_number":"12345678"}`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the customer delivered after the pause", func() bool {
		r, err = h.eng.GetRequest(ctx, pos.KindCustomer, r.ID)
		return err == nil && r.State == pos.RequestSucceeded
	})
	if n := len(h.sim.Customers()); n != 1 {
		t.Fatalf("%d customers at Hesabe, want 1", n)
	}
}
