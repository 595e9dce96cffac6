package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/benchutil"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// BenchmarkRawFsync is the disk's floor: one small write plus fsync per
// operation, on the same file system as the other benchmarks. Compare
// Create's creates/s with this fsyncs/s.
func BenchmarkRawFsync(b *testing.B) { benchutil.RawFsync(b) }

// BenchmarkRawAppendFsync is the naive durable write: append, then fsync.
func BenchmarkRawAppendFsync(b *testing.B) { benchutil.RawAppendFsync(b) }

// BenchmarkCreate measures durable accepts: each Create returns only after
// its group commit is fsynced. Callers are goroutines (tills) each with
// their own idempotency keys, spread over 32 terminals.
//
// log=on is the default (accepts appended to the accept log, applied to
// bbolt behind it); log=off commits each group straight to bbolt.
func BenchmarkCreate(b *testing.B) {
	for _, direct := range []bool{false, true} {
		for _, callers := range []int{1, 16, 64} {
			name := fmt.Sprintf("log=on/callers=%d", callers)
			if direct {
				name = fmt.Sprintf("log=off/callers=%d", callers)
			}
			b.Run(name, func(b *testing.B) { benchmarkCreate(b, callers, direct) })
		}
	}
}

func benchmarkCreate(b *testing.B, callers int, direct bool) {
	{
		{
			s := MustOpenPath(b, filepath.Join(b.TempDir(), "queue.db"), queue.Options{NoAcceptLog: direct})
			ctx := context.Background()
			deadline := time.Now().Add(time.Hour)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := range callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						key := fmt.Sprintf("till%d-%d", w, i)
						_, _, err := s.Create(ctx, pos.Checkout{
							IdempotencyKey: key, RequestHash: "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f0",
							TillRef: key, TerminalID: fmt.Sprintf("2970845%d", i%32), Amount: 12500,
							Customer: pos.Customer{Name: "Salman"}, Description: "groceries",
							Deadline: deadline,
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "creates/s")
			if groups, logged, stalled, flushing := queue.AcceptLogStats(s); groups > 0 {
				b.ReportMetric(float64(logged)/float64(groups), "calls/flush")
				b.ReportMetric(float64(flushing.Microseconds())/float64(groups), "µs/flush")
				b.ReportMetric(float64(groups)/el.Seconds(), "flushes/s")
				b.ReportMetric(stalled.Seconds()/el.Seconds(), "stalled/s")
			} else {
				b.ReportMetric(queue.CallsPerCommit(s), "calls/commit")
			}
			if fi, err := os.Stat(s.Path()); err == nil && b.N >= 1000 {
				b.ReportMetric(float64(fi.Size())/float64(b.N), "filebytes/rec")
			}
		}
	}
}

// BenchmarkTransition measures one engine step (a durable state change
// with its index updates) from one caller. It cycles over 1,000 checkouts
// on 1,000 terminals so histories stay short.
func BenchmarkTransition(b *testing.B) {
	s := MustOpenPath(b, filepath.Join(b.TempDir(), "queue.db"), queue.Options{})
	ctx := context.Background()
	const n = 1000
	var cs []pos.Checkout
	for i := range n {
		c, _, err := s.Create(ctx, req(fmt.Sprint("T", i), fmt.Sprint(i), 100))
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	to := []pos.State{pos.StateSubmitting, pos.StateQueued}
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if _, err := s.Transition(ctx, cs[i%n].ID, to[(i/n)%2], "", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "transitions/s")
}

// BenchmarkStats reads the counters (the offline-limit check on every
// accept) from a store holding 10,000 queued checkouts.
func BenchmarkStats(b *testing.B) {
	s := MustOpenPath(b, filepath.Join(b.TempDir(), "queue.db"), queue.Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if _, _, err := s.Create(ctx, req(fmt.Sprint("T", w%10), fmt.Sprint(w, "-", i), 100)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for b.Loop() {
		if _, err := s.Stats(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
