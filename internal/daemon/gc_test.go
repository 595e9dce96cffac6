package daemon_test

import (
	"runtime/debug"
	"testing"

	"github.com/posbridge/posbridge/internal/daemon"
)

func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)

	t.Setenv("GOGC", "")
	if pct, fromEnv := daemon.TuneGC(); pct != daemon.GCPercent || fromEnv {
		t.Fatalf("TuneGC() = %d, %v; want %d, false", pct, fromEnv, daemon.GCPercent)
	}
	if got := debug.SetGCPercent(100); got != daemon.GCPercent {
		t.Fatalf("the collector runs at %d, want %d", got, daemon.GCPercent)
	}

	// GOGC in the environment wins: the runtime read it at start; TuneGC
	// leaves the value alone.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if pct, fromEnv := daemon.TuneGC(); pct != 150 || !fromEnv {
		t.Fatalf("with GOGC=150: TuneGC() = %d, %v", pct, fromEnv)
	}
	if got := debug.SetGCPercent(150); got != 150 {
		t.Fatalf("the collector runs at %d after TuneGC with GOGC set, want 150", got)
	}
}
