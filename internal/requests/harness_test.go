package requests_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/requests"
	"github.com/posbridge/posbridge/internal/testutil"
)

// harness is an engine with every request kind on a real bbolt file,
// against the real simulators over HTTP on loopback, logging at debug
// level into a buffer the test can search.
type harness struct {
	t        testing.TB
	hesabe   *hesabesim.Server
	hitpay   *hitpaySim
	payout   *payoutSim
	store    *queue.Store
	eng      *engine.Engine
	dbPath   string
	logs     *testutil.SyncBuffer
	handlers map[pos.RequestKind]engine.RequestHandler

	closeOnce sync.Once
}

// harnessOptions choose the customer gateway.
type harnessOptions struct {
	customers string // "hesabe" (default) or "hitpay"
	clock     *offsetClock
	closed    bool // do not open the engine (the test opens it)
}

// offsetClock is the engine's clock: real time plus an offset a test
// moves forward.
type offsetClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *offsetClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *offsetClock) add(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newHarnessClock(t testing.TB, c *offsetClock) *harness {
	return newHarness(t, harnessOptions{clock: c})
}

func newHarnessClosed(t testing.TB) *harness {
	return newHarness(t, harnessOptions{closed: true})
}

func newHarness(t testing.TB, ho harnessOptions) *harness {
	t.Helper()
	h := &harness{t: t, logs: &testutil.SyncBuffer{}}
	sim, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	h.hesabe = sim
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	hc, err := hesabe.New(sim.ClientConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	h.hitpay = startHitPay(t)
	h.payout = startPayout(t)

	h.dbPath = filepath.Join(t.TempDir(), "queue.db")
	h.store, err = queue.Open(h.dbPath, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := engine.DefaultOptions()
	opts.ProbeInterval = 30 * time.Millisecond
	opts.BackoffInitial = 20 * time.Millisecond
	opts.BackoffMax = 150 * time.Millisecond
	opts.CallTimeout = 5 * time.Second
	opts.Logger = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if ho.clock != nil {
		opts.Now = ho.clock.now
	}
	h.handlers = map[pos.RequestKind]engine.RequestHandler{
		pos.KindCustomer:     requests.HesabeCustomers{Client: hc},
		pos.KindInstallments: requests.HesabeInstallments{Client: hc},
		pos.KindPayee:        requests.Payees{Client: h.payout.client},
	}
	if ho.customers == "hitpay" {
		h.handlers[pos.KindCustomer] = requests.HitPayCustomers{Client: h.hitpay.client}
	}
	opts.Requests = h.handlers
	h.eng = engine.New(h.store, hc, opts)
	t.Cleanup(h.close)
	if !ho.closed {
		h.open()
	}
	return h
}

func (h *harness) open() {
	h.t.Helper()
	if err := h.eng.Open(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) close() {
	h.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.eng.Close(ctx); err != nil {
			h.t.Error(err)
		}
		if err := h.store.Close(); err != nil {
			h.t.Error(err)
		}
	})
}

// submit stores a request and fails the test on error.
func (h *harness) submit(kind pos.RequestKind, key string, body any) pos.Request {
	h.t.Helper()
	r, existing, err := h.eng.SubmitRequest(context.Background(), kind, key, mustJSON(h.t, body))
	if err != nil {
		h.t.Fatalf("submit %s %s: %v", kind, key, err)
	}
	if existing {
		h.t.Fatalf("submit %s %s: existing", kind, key)
	}
	return r
}

// wait polls a request until its state is final.
func (h *harness) wait(id string) pos.Request {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := h.eng.GetRequest(context.Background(), "", id)
		if err != nil {
			h.t.Fatal(err)
		}
		if r.State.Final() {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("request %s still %s; history %+v", id, r.State, r.History)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	if b, ok := v.(string); ok {
		return []byte(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// tomorrow is a valid installment expiry date.
func tomorrow() string { return time.Now().Add(48 * time.Hour).Format(time.DateOnly) }

func customerBody(name, mobile string) map[string]any {
	return map[string]any{"name": name, "email": "ahmed@example.com", "mobile_number": mobile}
}

func installmentBody(refs ...string) map[string]any {
	var invs []map[string]any
	for _, ref := range refs {
		invs = append(invs, map[string]any{
			"amount": "150.000", "expires_at": tomorrow(), "reference_number": ref,
			"invoice_type": "1", "invoice_sub_type": "0", "language": "ar", "description": "أريكة",
			"customer_name": "أحمد المنصوري", "mobile_number": "12345678", "payment_types": []int{1, 2},
			"items": []map[string]any{{"title": "Sofa", "rate": "75.000", "quantity": 2, "amount": "150.000"}},
		})
	}
	return map[string]any{"till_ref": "R-1", "invoices": invs}
}

func payeeBody(id string) map[string]any {
	return map[string]any{"merchant_customer_id": id, "name_en": "Mohammed Al-Otaibi", "name_ar": "محمد العتيبي",
		"identity": "1012345678", "stc_account": "0512345678"}
}
