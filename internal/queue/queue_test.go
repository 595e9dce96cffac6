package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// clock is a settable time source for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// MustOpen opens a store in a fresh temporary directory with a fake clock
// and closes it when the test ends.
func MustOpen(tb testing.TB) (*queue.Store, *clock) {
	tb.Helper()
	clk := newClock()
	s := MustOpenPath(tb, filepath.Join(tb.TempDir(), "queue.db"), queue.Options{Now: clk.Now})
	return s, clk
}

// MustOpenPath opens the store at path and closes it when the test ends.
func MustOpenPath(tb testing.TB, path string, opt queue.Options) *queue.Store {
	tb.Helper()
	s, err := queue.Open(path, opt)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// MustCheck fails the test when an index disagrees with the records.
func MustCheck(tb testing.TB, s *queue.Store) {
	tb.Helper()
	if err := s.Check(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

func req(terminal, key string, fils pos.Money) pos.Checkout {
	return pos.Checkout{
		IdempotencyKey: key,
		RequestHash:    "h-" + key,
		TillRef:        "lane1/" + key,
		TerminalID:     terminal,
		Amount:         fils,
		Customer:       pos.Customer{Name: "Salman", Phone: "+96550000000"},
		Description:    "groceries",
		Deadline:       time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC),
	}
}

func mustCreate(tb testing.TB, s *queue.Store, c pos.Checkout) pos.Checkout {
	tb.Helper()
	out, existing, err := s.Create(context.Background(), c)
	if err != nil {
		tb.Fatalf("Create(%s): %v", c.IdempotencyKey, err)
	}
	if existing {
		tb.Fatalf("Create(%s): existing", c.IdempotencyKey)
	}
	return out
}

func mustMove(tb testing.TB, s *queue.Store, id string, to pos.State) pos.Checkout {
	tb.Helper()
	out, err := s.Transition(context.Background(), id, to, "test", nil)
	if err != nil {
		tb.Fatalf("Transition(%s → %s): %v", id, to, err)
	}
	return out
}

func wantCode(tb testing.TB, err error, code pos.Code) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error, want %s", code)
	}
	if got := pos.ErrorCode(err); got != code {
		tb.Fatalf("error %v: code %s, want %s", err, got, code)
	}
}

func ids(cs []pos.Checkout) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestOpenLockedInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	MustOpenPath(t, path, queue.Options{})
	_, err := queue.Open(path, queue.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, queue.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if got, want := err.Error(), fmt.Sprintf("queue: database %s is locked by another process (is posbridge already running?)", path); got != want {
		t.Fatalf("error text:\n got %s\nwant %s", got, want)
	}
}

func TestClose(t *testing.T) {
	s, _ := MustOpen(t)
	c := mustCreate(t, s, req("T1", "k1", 100))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if _, _, err := s.Create(ctx, req("T1", "k2", 100)); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Create after Close: %v", err)
	}
	if _, err := s.Get(ctx, c.ID); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestContextDone(t *testing.T) {
	s, _ := MustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Create(ctx, req("T1", "k1", 100)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.Stats(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stats: %v", err)
	}
}
