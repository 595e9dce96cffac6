package soak

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestShortSoakComesBack runs the bridge for 20 s under payments with
// every link disturbed every 4 s, and checks that goroutines and open
// files neither grow under the load nor stay up once it stops, and that
// the soak itself leaves nothing running. Counts, never timings: the
// deadlines only bound the waits.
func TestShortSoakComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s soak")
	}
	beforeG, beforeFD := runtime.NumGoroutine(), countFDs()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{Duration: 20 * time.Second, Churn: 4 * time.Second, Sample: time.Second, Settle: time.Minute})
	var out strings.Builder
	rep.Print(&out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Check(); err != nil {
		t.Fatal(err)
	}
	if rep.Churns == 0 || len(rep.Outcomes) == 0 {
		t.Fatalf("nothing happened: %d churn rounds, outcomes %v", rep.Churns, rep.Outcomes)
	}
	if len(rep.ChurnErrors) > 0 {
		t.Errorf("disturbances that failed: %v", rep.ChurnErrors)
	}

	// Everything the soak started has stopped.
	deadline := time.Now().Add(30 * time.Second)
	for {
		g, fd := runtime.NumGoroutine(), countFDs()
		if g <= beforeG+2 && fd <= beforeFD+2 {
			break
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after the soak: %d goroutines (%d before), %d open files (%d before)\n%s",
				g, beforeG, fd, beforeFD, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
