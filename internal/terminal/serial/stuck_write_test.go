package serial_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/serial"
	"github.com/posbridge/posbridge/internal/testutil"
)

// waitStuckWrite waits until a Conn's writer is inside the port's Write.
// With the tty full, it cannot come out again.
func waitStuckWrite(t testing.TB) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(string(buf[:runtime.Stack(buf, true)]), "serial.(*Conn).writeFrame") {
			return
		}
	}
	t.Fatal("no write to the port started")
}

func returnsWithin(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s hangs while a write to the port cannot finish", what)
	}
}

// TestConnFarEndStopsReading: the far end stops reading while the Conn
// writes. Send still ends with its context, and Close returns (it cannot
// wait for a write the far end never takes).
func TestConnFarEndStopsReading(t *testing.T) {
	_, path, _ := ptyPair(t) // the master stays open and is never read
	p, err := serial.OpenPort(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	testutil.FillTTY(t, path) // after the open, which sets raw mode
	c := serial.NewConn(p, serial.ConnConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- c.Send(ctx, []byte(`{"kind":"invoice"}`)) }()
	waitStuckWrite(t)
	cancel()
	var err2 error
	returnsWithin(t, "Send after its context ended", func() { err2 = <-sent })
	if !errors.Is(err2, context.Canceled) {
		t.Errorf("Send = %v, want context.Canceled", err2)
	}
	returnsWithin(t, "Close", func() { c.Close() })
}

// TestLinkResetFarEndStopsReading: the registry resets a link whose
// terminal stopped answering (it also stopped reading). The link must
// close that connection and open the port again, not hang on the write.
func TestLinkResetFarEndStopsReading(t *testing.T) {
	_, path, unplug := ptyPair(t)
	h := startLink(t, serial.LinkConfig{Port: serial.PortSpec{Path: path}})
	t.Cleanup(unplug) // before the link stops: frees a stuck write if the test fails
	h.waitUp(t)
	testutil.FillTTY(t, path)
	go h.link.Send(context.Background(), []byte(`{"kind":"ping"}`))
	waitStuckWrite(t)
	h.link.Reset()
	h.waitDown(t)
	h.waitUp(t)
	returnsWithin(t, "stopping the link", h.stop)
}
