package demo_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
)

// waitGoroutines polls until at most want goroutines run, and returns how
// many ran last: counts, not timings (the deadline is only a bound).
func waitGoroutines(want int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for {
		n := runtime.NumGoroutine()
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplugSerialLeavesNoGoroutines: unplugging the serial terminal's
// pty and plugging in a new one, 20 times, leaves the goroutine count
// where it was and the terminal paying. The pty master was in blocking
// mode (pty.Open takes its Fd), so closing it did not end the simulated
// terminal's read while the daemon still held the tty: the first replug
// left the terminal stuck closing the old pty (its reader and writer
// goroutines with it), and the second never got through.
func TestReplugSerialLeavesNoGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	s, err := demo.Start(ctx, demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0", ReplugSerial: true, Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		if err := s.Close(cctx); err != nil {
			t.Error(err)
		}
	}()
	if s.SerialPort == "" {
		t.Skip("no pseudo-terminals here")
	}
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	for i := range 20 {
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.ReplugSerial(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("replug %d: %v", i, err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
		err = s.WaitTerminals(wctx)
		wcancel()
		if err != nil {
			t.Fatalf("after replug %d: %v", i, err)
		}
	}
	if n := waitGoroutines(base+5, 20*time.Second); n > base+5 {
		t.Fatalf("%d goroutines after 20 replugs, %d before", n, base)
	}
	c := s.Client()
	co, _, err := c.Create(ctx, "replug-pay", api.CreateBody{TerminalID: demo.SerialTerminal, Amount: "1.000"})
	if err != nil {
		t.Fatal(err)
	}
	final, err := c.Follow(ctx, co.ID, func(pos.Checkout) {})
	if err != nil {
		t.Fatal(err)
	}
	if final.State != pos.StatePaid {
		t.Fatalf("checkout on the replugged serial terminal ended %s", final.State)
	}
}
