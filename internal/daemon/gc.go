package daemon

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector's target the bridge runs with: the
// heap may grow to five times what is live before a collection (Go's
// default is 100, twice). The bridge's live heap is small (a few MB: the
// queue lives in bbolt's file mapping, not on the heap), so at Go's
// default a burst of accepts collects every few hundred checkouts and
// the collector takes a fifth of the CPU; at 400 durable accepts run
// 25–30% faster (docs/engine.md, BenchmarkAccept/gc=400). Idle memory
// does not change (nothing is allocated while idle), and the peak under
// load stays within tens of MB.
const GCPercent = 400

// TuneGC sets GCPercent for this process unless the GOGC environment
// variable is set (it then wins, as it does for any Go program). It
// returns the percentage in effect ("off" is -1) and whether GOGC set it.
// The commands that run the bridge (run, demo, bench) call it first.
func TuneGC() (percent int, fromEnv bool) {
	if os.Getenv("GOGC") != "" {
		p := debug.SetGCPercent(100) // read the value GOGC gave...
		debug.SetGCPercent(p)        // ...and keep it
		return p, true
	}
	debug.SetGCPercent(GCPercent)
	return GCPercent, false
}
