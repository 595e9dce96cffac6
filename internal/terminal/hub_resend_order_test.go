package terminal_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestHubResendsInFirstSentOrder: a payment is on the terminal's screen
// when its cable is pulled. While it is out the till cancels that payment
// and the next checkout's invoice is pushed to the same terminal (older
// checkouts' cancels still wait too). When the cable is back the terminal
// must get them in the order they were made: the next invoice before the
// cancel of the payment on screen is refused as busy, and nothing pushes
// it again. (The 20 older cancels make a wrong order show in every run,
// not one in two: in 30 runs of 30 before the fix.)
func TestHubResendsInFirstSentOrder(t *testing.T) {
	dir := t.TempDir()
	stable := dir + "/ttyPOS"
	m1, tty1, pull := testutil.PtyPairCloser(t)
	if err := symlink(tty1, stable); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	h := serialHub(t, stable, rec, nil)
	term := newRawSerialTerminal(t, m1)
	term.greet(t, "T-1")
	rec.wait(t, pos.TerminalConnected, "T-1")

	onScreen := newTx()
	pushed := make(chan error, 1)
	go func() { pushed <- h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(onScreen)) }()
	term.send(t, term.ids.Reply(protocol.KindAck, term.expect(t, protocol.KindInvoice)))
	if err := <-pushed; err != nil {
		t.Fatal(err)
	}

	pull()
	rec.wait(t, pos.TerminalDisconnected, "T-1")
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	var want []string
	for range 20 {
		tx := newTx()
		if err := h.CancelInvoice(short(), "T-1", tx); !errors.Is(err, terminal.ErrNotAcknowledged) {
			t.Fatalf("cancel while the cable is out: %v", err)
		}
		want = append(want, "cancel "+tx)
	}
	if err := h.CancelInvoice(short(), "T-1", onScreen); !errors.Is(err, terminal.ErrNotAcknowledged) {
		t.Fatalf("cancel while the cable is out: %v", err)
	}
	want = append(want, "cancel "+onScreen)
	next := newTx()
	if err := h.PushInvoice(short(), "T-1", invoice(next)); !errors.Is(err, terminal.ErrNotAcknowledged) {
		t.Fatalf("push while the cable is out: %v", err)
	}
	want = append(want, "invoice "+next)

	m2, tty2 := ptyPair(t)
	if err := symlink(tty2, stable); err != nil {
		t.Fatal(err)
	}
	term = newRawSerialTerminal(t, m2)
	// The terminal acts on each message as it arrives.
	screen := onScreen
	var got []string
	seen := map[string]bool{}
	for len(got) < len(want) {
		m := term.expect(t, "")
		if seen[m.ID] || (m.Kind != protocol.KindCancel && m.Kind != protocol.KindInvoice) {
			continue
		}
		seen[m.ID] = true
		switch m.Kind {
		case protocol.KindCancel:
			got = append(got, "cancel "+m.Cancel.TransactionID)
			if m.Cancel.TransactionID == screen {
				screen = ""
				term.send(t, term.ids.Reply(protocol.KindAck, m))
				continue
			}
			term.send(t, term.ids.Refusal(m, "T-1", &protocol.RefusalError{Code: protocol.ErrCodeUnknownTransaction}))
		case protocol.KindInvoice:
			got = append(got, "invoice "+m.Invoice.TransactionID)
			if screen != "" {
				term.send(t, term.ids.Refusal(m, "T-1", &protocol.RefusalError{Code: protocol.ErrCodeBusy}))
				continue
			}
			screen = m.Invoice.TransactionID
			term.send(t, term.ids.Reply(protocol.KindAck, m))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the reconnect the terminal got\n  %v\nmade in the order\n  %v", got, want)
	}
	for rec.wait(t, pos.TerminalAck, "T-1").TransactionID != next {
	}
}
