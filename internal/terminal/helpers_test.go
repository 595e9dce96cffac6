package terminal_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
	"github.com/posbridge/posbridge/internal/testutil"
)

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// recorder collects hub events. fail, when set, decides OnEvent's error.
type recorder struct {
	mu  sync.Mutex
	all []pos.TerminalEvent
	// backlog holds events a wait skipped.
	backlog []pos.TerminalEvent
	ch      chan pos.TerminalEvent
	fail    func(ev pos.TerminalEvent) error
}

func newRecorder() *recorder { return &recorder{ch: make(chan pos.TerminalEvent, 4096)} }

func (r *recorder) onEvent(_ context.Context, ev pos.TerminalEvent) error {
	r.mu.Lock()
	r.all = append(r.all, ev)
	fail := r.fail
	r.mu.Unlock()
	r.ch <- ev
	if fail != nil {
		return fail(ev)
	}
	return nil
}

// wait returns the oldest not yet waited-for event of kind for terminal
// id ("" for any). Events skipped while waiting stay for later waits.
func (r *recorder) wait(t testing.TB, kind pos.TerminalEventKind, id string) pos.TerminalEvent {
	t.Helper()
	match := func(ev pos.TerminalEvent) bool { return ev.Kind == kind && (id == "" || ev.TerminalID == id) }
	r.mu.Lock()
	for i, ev := range r.backlog {
		if match(ev) {
			r.backlog = append(r.backlog[:i:i], r.backlog[i+1:]...)
			r.mu.Unlock()
			return ev
		}
	}
	r.mu.Unlock()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-r.ch:
			if match(ev) {
				return ev
			}
			r.mu.Lock()
			r.backlog = append(r.backlog, ev)
			r.mu.Unlock()
		case <-timeout:
			t.Fatalf("no %s event for %s", kind, id)
		}
	}
}

func (r *recorder) count(kind pos.TerminalEventKind, tx string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.all {
		if ev.Kind == kind && (tx == "" || ev.TransactionID == tx) {
			n++
		}
	}
	return n
}

func openHub(t testing.TB, cfg terminal.Config) *terminal.Hub {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	h, err := terminal.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Close(ctx); err != nil {
			t.Errorf("hub close: %v", err)
		}
	})
	return h
}

// runSim runs a simulated terminal until the test ends.
func runSim(t testing.TB, cfg termsim.Config) (stop func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- termsim.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("termsim: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("termsim did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// ptyPair opens a pseudo-terminal: the hub opens the tty by path, the
// simulator uses the master.
func ptyPair(t testing.TB) (master *os.File, ttyPath string) { return testutil.PtyPair(t) }

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var txN struct {
	sync.Mutex
	n int
}

func newTx() string {
	txN.Lock()
	defer txN.Unlock()
	txN.n++
	return fmt.Sprintf("tx%d-%d", time.Now().UnixNano()%1e6, txN.n)
}

func invoice(tx string) terminal.InvoicePush {
	return terminal.InvoicePush{TransactionID: tx, InvoiceNumber: "PB-" + tx, Amount: 12500,
		Description: "test", CustomerName: "Sara", Deadline: time.Now().Add(time.Minute)}
}

func isErr(err, target error) bool { return errors.Is(err, target) }
