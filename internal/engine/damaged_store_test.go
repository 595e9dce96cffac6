package engine_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/queue/queuetest"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestDamagedStoreStopsTheLoops: once the database file is found damaged
// (queue.ErrDamaged: every write is refused), the engine kept polling
// Hesabe and retrying every PollInterval, an ERROR line each time, for
// outcomes it could not record. Now its loops rest while the file is
// damaged: no gateway call is made, and the log says it once.
func TestDamagedStoreStopsTheLoops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	victim := queuetest.DamagedDB(t, path, termA, 3000, 1501)

	sim, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	var calls atomic.Int64
	cfg := sim.ClientConfig(0)
	cfg.OnCall = func(string, time.Duration, error) { calls.Add(1) }
	client, err := hesabe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	store, err := queue.Open(path, queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	opts := fastOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	eng := engine.New(store, client, opts)
	if err := eng.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Close(ctx)
	})
	// The head goes to the gateway and stays sent (no terminal pays it):
	// it is polled every PollInterval.
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := eng.Get(context.Background(), victim.ID); !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("Get of the damaged checkout: %v, want ErrDamaged", err)
	}
	time.Sleep(100 * time.Millisecond) // what was under way ends
	before := calls.Load()
	time.Sleep(20 * opts.PollInterval)
	if n := calls.Load() - before; n > 0 {
		t.Errorf("%d gateway calls in %d poll intervals after the file was found damaged, want none", n, 20)
	}
	if n := strings.Count(logs.String(), "the database file is damaged"); n != 1 {
		t.Errorf("the engine said the file is damaged %d times, want once:\n%s", n, logs.String())
	}
}
