package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// The sandbox merchant's terminals.
const (
	termA = "29708454"
	termB = "48515"
)

// harness is an engine on a real bbolt file against the real simulator
// over HTTP on loopback.
type harness struct {
	t      testing.TB
	sim    *hesabesim.Server
	client *hesabe.Client
	store  *queue.Store
	eng    *engine.Engine
	dbPath string
	opts   engine.Options

	mu     sync.Mutex
	onInv  func(hesabe.POSInvoice)    // set by tests: the terminal's behaviour
	onCall func(op string, err error) // set by tests: each call's answer, as the client sees it
	closed bool
}

// fastOptions are engine options with short intervals for tests.
func fastOptions() engine.Options {
	o := engine.DefaultOptions()
	o.PollInterval = 30 * time.Millisecond
	o.ProbeInterval = 30 * time.Millisecond
	o.BackoffInitial = 20 * time.Millisecond
	o.BackoffMax = 200 * time.Millisecond
	o.CallTimeout = 5 * time.Second
	o.Terminals = []string{termA, termB}
	if testing.Verbose() && os.Getenv("ENGINE_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

// newHarness starts a simulator, opens a store and an engine (not yet
// opened unless open is true). Everything is stopped when the test ends.
// simOpt changes the simulator's options (withTerminals).
func newHarness(t testing.TB, opts engine.Options, open bool, simOpt ...func(*hesabesim.Options)) *harness {
	t.Helper()
	h := &harness{t: t, opts: opts}
	simOpts := hesabesim.DefaultOptions()
	for _, f := range simOpt {
		f(&simOpts)
	}
	simOpts.OnInvoice = func(inv hesabe.POSInvoice) {
		h.mu.Lock()
		f := h.onInv
		h.mu.Unlock()
		if f != nil {
			f(inv)
		}
	}
	sim, err := hesabesim.Start("127.0.0.1:0", simOpts)
	if err != nil {
		t.Fatal(err)
	}
	h.sim = sim
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	cfg := sim.ClientConfig(0)
	cfg.OnCall = func(op string, _ time.Duration, err error) {
		h.mu.Lock()
		f := h.onCall
		h.mu.Unlock()
		if f != nil {
			f(op, err)
		}
	}
	h.client, err = hesabe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.dbPath = filepath.Join(t.TempDir(), "queue.db")
	h.store, err = queue.Open(h.dbPath, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.store.Close() })
	h.eng = engine.New(h.store, h.client, opts)
	t.Cleanup(h.close)
	if open {
		h.open()
	}
	return h
}

// withTerminals gives the sandbox merchant n terminals of its own instead
// of termA and termB; it returns the simulator option and their ids (set
// them as the engine's Options.Terminals).
func withTerminals(n int) (func(*hesabesim.Options), []string) {
	m := hesabesim.SandboxMerchant()
	m.Terminals = nil
	var ids []string
	for i := range n {
		id := fmt.Sprintf("6600%04d", i)
		ids = append(ids, id)
		m.Terminals = append(m.Terminals, hesabe.Terminal{ID: int64(500 + i), TerminalID: id, TerminalName: "A99",
			PosType: 1, MerchantID: m.ID, MerchantCode: m.Code})
	}
	return func(o *hesabesim.Options) { o.Merchants = []hesabesim.Merchant{m} }, ids
}

func (h *harness) open() {
	h.t.Helper()
	if err := h.eng.Open(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.eng.Close(ctx); err != nil {
		h.t.Error(err)
	}
}

// terminal sets what "the terminal" does when Hesabe pushes an invoice.
func (h *harness) terminal(f func(hesabe.POSInvoice)) {
	h.mu.Lock()
	h.onInv = f
	h.mu.Unlock()
}

// calls sets what runs when a call of the engine's client returns (before
// the engine sees its answer).
func (h *harness) calls(f func(op string, err error)) {
	h.mu.Lock()
	h.onCall = f
	h.mu.Unlock()
}

// payAll makes every pushed invoice end with status st after delay.
func (h *harness) payAll(st hesabe.InvoiceStatus, delay time.Duration) {
	h.terminal(func(inv hesabe.POSInvoice) {
		if delay == 0 {
			_ = h.sim.SetInvoiceStatus(inv.ID, st)
			return
		}
		time.AfterFunc(delay, func() { _ = h.sim.SetInvoiceStatus(inv.ID, st) })
	})
}

func checkoutReq(terminal, key string, fils pos.Money) pos.CheckoutRequest {
	return pos.CheckoutRequest{
		IdempotencyKey: key, TillRef: "lane1/" + key, TerminalID: terminal, Amount: fils,
		Customer: pos.Customer{Name: "Salman", Phone: "+96550000000"}, Description: "groceries",
	}
}

func (h *harness) create(req pos.CheckoutRequest) pos.Checkout {
	h.t.Helper()
	c, existing, err := h.eng.Create(context.Background(), req)
	if err != nil {
		h.t.Fatalf("Create(%s): %v", req.IdempotencyKey, err)
	}
	if existing {
		h.t.Fatalf("Create(%s): existing", req.IdempotencyKey)
	}
	return c
}

// waitFor waits (on the engine's notifications) until checkout id is in
// one of states, failing the test after a generous timeout.
func (h *harness) waitFor(id string, states ...pos.State) pos.Checkout {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var since time.Time
	for {
		c, err := h.eng.Wait(ctx, id, since)
		if err != nil {
			h.t.Fatalf("Wait(%s): %v", id, err)
		}
		if slices.Contains(states, c.State) {
			return c
		}
		if ctx.Err() != nil {
			h.t.Fatalf("checkout %s is %s after 20s, want %v (last error %q, history %+v)", id, c.State, states, c.LastError, c.History)
		}
		since = c.UpdatedAt
	}
}

// eventually polls cond (for facts outside the engine, like the
// simulator's invoices) until it holds or the timeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) invoices(c pos.Checkout) int { return len(h.sim.InvoicesByNumber(c.InvoiceNumber)) }

func (h *harness) wantOneInvoice(c pos.Checkout) hesabe.POSInvoice {
	h.t.Helper()
	got := h.sim.InvoicesByNumber(c.InvoiceNumber)
	if len(got) != 1 {
		h.t.Fatalf("checkout %s: %d invoices with number %s, want exactly 1", c.ID, len(got), c.InvoiceNumber)
	}
	return got[0]
}

func hasReason(c pos.Checkout, to pos.State, substr string) bool {
	for _, tr := range c.History {
		if (to == "" || tr.To == to) && (substr == "" || strings.Contains(tr.Reason, substr)) {
			return true
		}
	}
	return false
}

// fakeLink is a terminal link that reports through the engine, the way a
// terminal would (asynchronously).
type fakeLink struct {
	eng      func() *engine.Engine
	onPush   func(c pos.Checkout) []pos.TerminalEvent
	onCancel func(c pos.Checkout) []pos.TerminalEvent
	// hold, if set, runs in CancelInvoice before onCancel: a terminal
	// slow to answer a cancel, or one that never does (until ctx ends).
	hold func(ctx context.Context, c pos.Checkout) error
	// holdPush, if set, runs in PushInvoice before onPush, the same way:
	// a terminal slow to show an invoice, or one that never answers.
	holdPush func(ctx context.Context, c pos.Checkout) error
	mu       sync.Mutex
	pushes   []string
	cancels  []string
}

func (l *fakeLink) PushInvoice(ctx context.Context, c pos.Checkout) error {
	l.mu.Lock()
	l.pushes = append(l.pushes, c.ID)
	l.mu.Unlock()
	if l.holdPush != nil {
		if err := l.holdPush(ctx, c); err != nil {
			return err
		}
	}
	if l.onPush != nil {
		for _, ev := range l.onPush(c) {
			l.eng().OnTerminalEvent(ev)
		}
	}
	return nil
}

func (l *fakeLink) CancelInvoice(ctx context.Context, c pos.Checkout) error {
	l.mu.Lock()
	l.cancels = append(l.cancels, c.ID)
	l.mu.Unlock()
	if l.hold != nil {
		if err := l.hold(ctx, c); err != nil {
			return err
		}
	}
	if l.onCancel != nil {
		for _, ev := range l.onCancel(c) {
			l.eng().OnTerminalEvent(ev)
		}
	}
	return nil
}

func (l *fakeLink) pushCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pushes)
}

func (l *fakeLink) cancelCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cancels)
}

// newLinkedHarness is newHarness (not opened) with a fakeLink as the
// engine's terminal link, already wired back to the engine.
func newLinkedHarness(t *testing.T, opts engine.Options) (*harness, *fakeLink) {
	t.Helper()
	link := &fakeLink{}
	opts.Terminal = link
	h := newHarness(t, opts, false)
	link.eng = func() *engine.Engine { return h.eng }
	return h, link
}
