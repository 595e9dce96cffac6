package termsim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// discardTransport takes every message and sends nothing.
type discardTransport struct{}

func (discardTransport) send(context.Context, []byte) error { return nil }

// TestSimMemoryBounded: a simulated terminal that runs for days remembers
// a bounded number of past payments. It kept every transaction that ended
// (and every invoice a silent step swallowed) for as long as it ran.
func TestSimMemoryBounded(t *testing.T) {
	const payments, bound = 10000, 4096
	ctx := context.Background()
	cfg := Config{TerminalID: "T-1", Script: []Action{Approve, Silent}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.setDefaults()
	s := newSim(cfg)
	s.tr = discardTransport{}
	bridge := protocol.NewIDGen("b")
	for i := range payments {
		m := bridge.New(protocol.KindInvoice, "T-1")
		m.Invoice = &protocol.Invoice{TransactionID: fmt.Sprintf("tx-%05d", i), Amount: 1000}
		s.invoice(ctx, m)
		if s.current != nil {
			s.current.timer.Stop()
			s.decide(ctx)
		}
		s.outbox = nil // the bridge acknowledged the result
	}
	if n := len(s.completed) + len(s.ignored); n > bound {
		t.Fatalf("after %d payments the simulator remembers %d transactions (%d ended, %d ignored); want at most %d",
			payments, n, len(s.completed), len(s.ignored), bound)
	}
	// The latest are still known: a resent invoice is acknowledged, not
	// shown again.
	last := fmt.Sprintf("tx-%05d", payments-2) // approved
	if !s.completed[last] {
		t.Fatalf("the last approved payment %s is forgotten", last)
	}
}
