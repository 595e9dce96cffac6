package termsim_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/serial"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
	"github.com/posbridge/posbridge/internal/testutil"
)

// handBridge is a bridge driven by the test on the tty side of a pty
// whose master a simulator serves: every message the simulator sends
// arrives on in (buffered), send sends one (failing the test if the
// simulator does not take it within 10 s), ids makes the bridge's ids.
func handBridge(t *testing.T, ttyPath string, buffered int) (in <-chan protocol.Message, send func(protocol.Message), ids *protocol.IDGen) {
	t.Helper()
	msgs := make(chan protocol.Message, buffered)
	port, err := serial.OpenPort(ttyPath, 115200)
	if err != nil {
		t.Fatal(err)
	}
	bridge := serial.NewConn(port, serial.ConnConfig{OnData: func(p []byte) {
		if m, err := protocol.Decode(p); err == nil {
			msgs <- m
		}
	}})
	t.Cleanup(func() { bridge.Close() })
	send = func(m protocol.Message) {
		t.Helper()
		b, err := protocol.Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := bridge.Send(sctx, b); err != nil {
			t.Fatal(err)
		}
	}
	return msgs, send, protocol.NewIDGen("b")
}

// startSim runs a simulator with cfg on the master of a new pty until the
// test ends, its log discarded, and returns the pty's tty side.
func startSim(t *testing.T, cfg termsim.Config) (ttyPath string) {
	t.Helper()
	master, ttyPath := testutil.PtyPair(t)
	cfg.Port = master
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- termsim.Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	return ttyPath
}
