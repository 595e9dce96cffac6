package terminal_test

import (
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// TestCheckoutCancelReason: the cancel a checkout's terminal gets says
// why. The engine asks for a cancel when the till cancels and when the
// checkout's deadline passes; after the deadline the payment ends
// canceled with reason "timeout" (docs/terminal-protocol.md §2.2), so the
// deadline's cancel must say "timeout", not that the till canceled: a
// terminal shows the reason and passes it on in its result, which the
// till reads.
func TestCheckoutCancelReason(t *testing.T) {
	master, tty := ptyPair(t)
	h := serialHub(t, tty, newRecorder(), nil)
	term := newRawSerialTerminal(t, master)
	term.greet(t, "T-1")
	link := terminal.CheckoutLink{Hub: h}
	now := time.Now()
	for _, tc := range []struct {
		name                  string
		requestedAt, deadline time.Time
		want                  string
	}{
		{"till", now, now.Add(time.Minute), "canceled by the till"},
		{"deadline", now, now.Add(-time.Millisecond), "timeout"},
		{"at the deadline", now, now, "timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pos.Checkout{ID: "co-" + tc.name, TerminalID: "T-1", TransactionID: newTx(),
				Deadline: tc.deadline, CancelRequested: true, CancelRequestedAt: tc.requestedAt}
			done := make(chan error, 1)
			go func() { done <- link.CancelInvoice(ctxT(t, 10*time.Second), c) }()
			m := term.expect(t, protocol.KindCancel)
			if m.Cancel.TransactionID != c.TransactionID {
				t.Fatalf("cancel for %s, want %s", m.Cancel.TransactionID, c.TransactionID)
			}
			if m.Cancel.Reason != tc.want {
				t.Errorf("cancel reason %q, want %q", m.Cancel.Reason, tc.want)
			}
			term.send(t, term.ids.Reply(protocol.KindAck, m))
			if err := <-done; err != nil {
				t.Fatalf("CancelInvoice: %v", err)
			}
		})
	}
}
