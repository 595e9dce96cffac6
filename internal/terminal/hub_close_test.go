package terminal_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/serial"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestHubCloseTerminalNotReading: the terminal's app hangs and stops
// reading its port while the hub writes to it. Close still stops the hub
// (it used to wait for that write forever), and once the far end is gone
// nothing of the hub is left running.
func TestHubCloseTerminalNotReading(t *testing.T) {
	before := runtime.NumGoroutine()
	m, tty := ptyPair(t)
	h, err := terminal.New(terminal.Config{
		Terminals:      []terminal.TerminalConfig{{ID: "T-1", Serial: &serial.PortSpec{Path: tty}}},
		ResendInterval: 100 * time.Millisecond, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	for st, _ := h.Terminal("T-1"); st.Port != tty; st, _ = h.Terminal("T-1") {
		time.Sleep(10 * time.Millisecond) // until the port is open
	}
	testutil.FillTTY(t, tty)
	// The hub asks who is there again and again; one of those writes
	// is soon stuck for good.
	buf := make([]byte, 1<<20)
	for start := time.Now(); !strings.Contains(string(buf[:runtime.Stack(buf, true)]), "serial.(*Conn).writeFrame"); {
		if time.Since(start) > 15*time.Second {
			t.Fatal("the hub wrote nothing to the port")
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		m.Close() // frees the write, so the test can end
		t.Fatalf("Close: %v", err)
	}
	m.Close() // the far end goes away: the stuck write fails
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left (was %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
