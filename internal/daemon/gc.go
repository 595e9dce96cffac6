package daemon

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The garbage collector's target follows the load (docs/operations.md,
// "Memory and the garbage collector").
//
// The bridge's live heap is small: a few MB, since the queue lives in
// bbolt's file mapping, not on the heap. At Go's default target (100) a
// burst of accepts collects every few hundred checkouts and the collector
// takes a fifth of the CPU; at GCPercent durable accepts run 25–30% faster
// (docs/engine.md, BenchmarkAccept/gc=400). But a target of 400 also
// raises the heap's floor from 4 to 16 MB, and an idle bridge is still
// asked for its diagnostics: each /metrics scrape allocates a few hundred
// KB (the bridge itself, unscraped, allocates next to nothing). Scraped
// every 20 s, an idle bridge at 400 grew by ~3 MB a minute until its first
// collection at 16 MB of heap, past the 25 MB it is meant to hold. So the
// bridge runs at Go's default and switches to GCPercent while it allocates
// fast (a busy till API, a backlog draining), and back after a quiet
// spell, handing what the burst left back to the operating system.
const (
	// GCPercent is the target while the bridge is busy: the heap may grow
	// to five times what is live before a collection.
	GCPercent = 400
	// GCQuietPercent is the target otherwise (Go's default).
	GCQuietPercent = 100
	// gcBusyRate is the allocation rate, in bytes per second, from which
	// the bridge counts as busy: ~2,000 accepts/s through the till API.
	gcBusyRate = 32 << 20
)

// How often the tuner looks at the allocation rate, and after how many
// quiet looks in a row it returns to GCQuietPercent (tests shorten them).
var (
	gcTick       = 500 * time.Millisecond
	gcQuietTicks = 20
)

// TuneGC makes the garbage collector's target follow the load until ctx
// ends, unless the GOGC environment variable is set (it then wins, as it
// does for any Go program, and nothing changes it). It returns the target
// in effect now ("off" is -1) and whether GOGC set it. The commands that
// run the bridge (run, demo, bench) call it first.
func TuneGC(ctx context.Context) (percent int, fromEnv bool) {
	if os.Getenv("GOGC") != "" {
		p := debug.SetGCPercent(100) // read the value GOGC gave...
		debug.SetGCPercent(p)        // ...and keep it
		return p, true
	}
	debug.SetGCPercent(GCQuietPercent)
	go tuneGC(ctx, gcTick, gcQuietTicks)
	return GCQuietPercent, false
}

// tuneGC raises the target to GCPercent as soon as one tick allocated at
// gcBusyRate or more, and lowers it after quietTicks ticks below it.
func tuneGC(ctx context.Context, tick time.Duration, quietTicks int) {
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(allocs)
	last, lastAt := allocs[0].Value.Uint64(), time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
	busy, quiet := false, 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			metrics.Read(allocs)
			n := allocs[0].Value.Uint64()
			rate := float64(n-last) / now.Sub(lastAt).Seconds()
			last, lastAt = n, now
			switch {
			case rate >= gcBusyRate:
				quiet = 0
				if !busy {
					busy = true
					debug.SetGCPercent(GCPercent)
				}
			case busy:
				quiet++
				if quiet >= quietTicks {
					busy = false
					debug.SetGCPercent(GCQuietPercent)
					debug.FreeOSMemory() // what the burst's heap left behind
				}
			}
		}
	}
}
