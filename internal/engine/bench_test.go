package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/benchutil"
	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// Run: go test -run XXX -bench . -benchtime 2s ./internal/engine/
// (BenchmarkDrain100k runs once whatever the benchtime: -benchtime 1x).

// BenchmarkRawFsync is the disk's floor, measured in the same run as the
// accept benchmarks: one 512-byte write plus fsync per operation.
func BenchmarkRawFsync(b *testing.B) { benchutil.RawFsync(b) }

// BenchmarkRawAppendFsync is the naive durable write: append, then fsync.
func BenchmarkRawAppendFsync(b *testing.B) { benchutil.RawAppendFsync(b) }

// BenchmarkAccept measures durable accepts through the engine (validation,
// idempotency look-up, request hash, group-committed store write) with 1,
// 16 and 64 concurrent callers. The engine's loops are not started, so
// the numbers are the accept path alone. gc=100 is Go's default garbage
// collector target; gc=400 is what the daemon runs with while busy
// (daemon.GCPercent).
func BenchmarkAccept(b *testing.B) {
	for _, gc := range []int{100, daemon.GCPercent} {
		b.Run(fmt.Sprintf("gc=%d", gc), func(b *testing.B) {
			defer debug.SetGCPercent(debug.SetGCPercent(gc))
			benchmarkAccept(b)
		})
	}
}

func benchmarkAccept(b *testing.B) {
	for _, callers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			store, err := queue.Open(filepath.Join(b.TempDir(), "queue.db"), queue.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			eng := engine.New(store, nil, engine.DefaultOptions())
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						req := pos.CheckoutRequest{IdempotencyKey: fmt.Sprintf("bench-%d-%d", b.N, i),
							TerminalID: fmt.Sprintf("T%02d", i%32), Amount: pos.Money(1000 + i%500),
							Customer: pos.Customer{Name: "Bench"}, TillRef: "lane1"}
						if _, _, err := eng.Create(ctx, req); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "accepts/s")
		})
	}
}

// instantLink is a terminal that pays every invoice the moment it is
// pushed, so a drain measures the bridge, not the customer.
type instantLink struct{ eng *engine.Engine }

func (l *instantLink) PushInvoice(ctx context.Context, c pos.Checkout) error {
	l.eng.OnTerminalEvent(pos.TerminalEvent{Kind: pos.TerminalResult, TerminalID: c.TerminalID,
		TransactionID: c.TransactionID, Outcome: pos.OutcomeApproved})
	return nil
}

func (l *instantLink) CancelInvoice(ctx context.Context, c pos.Checkout) error { return nil }

// BenchmarkDrain100k fills the store with 100,000 queued checkouts over 64
// terminals (not timed), then times the engine draining them against the
// in-process simulator over HTTP, rate limit off: each checkout is
// submitted (durable submitting, create invoice, durable sent) and paid
// through a terminal event (durable paid). ENGINE_DRAIN_N sets a smaller
// drain (for profiling), ENGINE_DRAIN_TERMINALS the terminals (64) and
// ENGINE_DRAIN_WORKERS the engine's Workers (32).
func BenchmarkDrain100k(b *testing.B) {
	n, terminals := 100_000, 64
	if v, err := strconv.Atoi(os.Getenv("ENGINE_DRAIN_TERMINALS")); err == nil && v > 0 {
		terminals = v
	}
	if v, err := strconv.Atoi(os.Getenv("ENGINE_DRAIN_N")); err == nil && v > 0 {
		n = v // a smaller drain for profiling
	}
	for range b.N {
		merchant, ids := withTerminals(terminals)
		simOpts := hesabesim.DefaultOptions()
		merchant(&simOpts)
		sim, err := hesabesim.Start("127.0.0.1:0", simOpts)
		if err != nil {
			b.Fatal(err)
		}
		client, err := hesabe.New(sim.ClientConfig(0))
		if err != nil {
			b.Fatal(err)
		}
		store, err := queue.Open(filepath.Join(b.TempDir(), "queue.db"), queue.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		fill(b, store, n, ids)
		opts := engine.DefaultOptions()
		opts.MaxDeadline = 24 * time.Hour
		opts.PollInterval = time.Minute // results come from the terminal link
		opts.Workers = 32
		if v, err := strconv.Atoi(os.Getenv("ENGINE_DRAIN_WORKERS")); err == nil && v > 0 {
			opts.Workers = v
		}
		link := &instantLink{}
		opts.Terminal = link
		eng := engine.New(store, client, opts)
		link.eng = eng
		runtime.GC()
		b.StartTimer()
		start := time.Now()
		if err := eng.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
		events, stop := eng.Subscribe()
		paid := 0
		for paid < n {
			select {
			case c := <-events:
				if c.State == pos.StatePaid {
					paid++
				}
			case <-time.After(time.Second):
				// Subscribers may drop under load: count from the store.
				if st := eng.Status(); st.Queued == 0 && st.Active == 0 {
					paid = n
				}
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		stop()
		st := eng.Status()
		if st.ByState[pos.StatePaid] != n {
			b.Fatalf("paid %d of %d: %+v", st.ByState[pos.StatePaid], n, st)
		}
		if got := sim.Stats().InvoiceCount; got != n {
			b.Fatalf("%d invoices for %d checkouts", got, n)
		}
		b.ReportMetric(elapsed.Seconds(), "s/drain")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "checkouts/s")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = eng.Close(ctx)
		cancel()
		_ = store.Close()
		_ = sim.Close(context.Background())
		b.StartTimer()
	}
}

// fill creates n queued checkouts spread over terminals, 64 at a time.
func fill(b *testing.B, store *queue.Store, n int, terminals []string) {
	ctx := context.Background()
	deadline := time.Now().Add(24 * time.Hour)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > n {
					return
				}
				c := pos.Checkout{IdempotencyKey: fmt.Sprintf("drain-%d", i), RequestHash: "h",
					TerminalID: terminals[i%len(terminals)], Amount: pos.Money(1000 + i%500),
					Customer: pos.Customer{Name: "Drain"}, Deadline: deadline}
				if _, _, err := store.Create(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
