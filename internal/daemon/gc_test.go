package daemon_test

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/daemon"
)

// gogc reads the collector's target without changing it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

var sink []byte

// allocate allocates far above the busy rate until stop is closed.
func allocate(stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				sink = make([]byte, 64<<10)
			}
		}
	}()
	return done
}

func waitGOGC(t *testing.T, want int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); gogc() != want; {
		if time.Now().After(deadline) {
			t.Fatalf("the collector's target is %d, want %d", gogc(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTuneGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	daemon.SetGCTuning(t, 20*time.Millisecond, 5)

	t.Setenv("GOGC", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	debug.SetGCPercent(50)
	if pct, fromEnv := daemon.TuneGC(ctx); pct != daemon.GCQuietPercent || fromEnv {
		t.Fatalf("TuneGC() = %d, %v; want %d, false", pct, fromEnv, daemon.GCQuietPercent)
	}
	if got := gogc(); got != daemon.GCQuietPercent {
		t.Fatalf("quiet: the collector runs at %d, want %d", got, daemon.GCQuietPercent)
	}

	// A burst of allocation raises the target; a quiet spell lowers it.
	for range 2 {
		stop := make(chan struct{})
		done := allocate(stop)
		waitGOGC(t, daemon.GCPercent)
		close(stop)
		<-done
		waitGOGC(t, daemon.GCQuietPercent)
	}

	// Once ctx ends nothing changes the target any more.
	cancel()
	time.Sleep(3 * 20 * time.Millisecond) // the tuner sees ctx end within a tick
	stop := make(chan struct{})
	done := allocate(stop)
	time.Sleep(15 * 20 * time.Millisecond)
	close(stop)
	<-done
	if got := gogc(); got != daemon.GCQuietPercent {
		t.Fatalf("after ctx ended a burst set the target to %d", got)
	}

	// GOGC in the environment wins: the runtime read it at start; TuneGC
	// leaves the value alone and starts no tuner.
	t.Setenv("GOGC", "150")
	debug.SetGCPercent(150)
	if pct, fromEnv := daemon.TuneGC(context.Background()); pct != 150 || !fromEnv {
		t.Fatalf("with GOGC=150: TuneGC() = %d, %v", pct, fromEnv)
	}
	stop = make(chan struct{})
	done = allocate(stop)
	time.Sleep(15 * 20 * time.Millisecond)
	close(stop)
	<-done
	if got := gogc(); got != 150 {
		t.Fatalf("the collector runs at %d after TuneGC with GOGC set and a burst, want 150", got)
	}
}
