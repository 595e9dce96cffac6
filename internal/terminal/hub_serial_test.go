package terminal_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/serial"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

func serialHub(t *testing.T, path string, rec *recorder, mod func(*terminal.Config)) *terminal.Hub {
	cfg := terminal.Config{
		Terminals:      []terminal.TerminalConfig{{ID: "T-1", Serial: &serial.PortSpec{Path: path}}},
		OnEvent:        rec.onEvent,
		ResendInterval: 200 * time.Millisecond,
		Serial:         terminal.SerialOptions{ReopenDelay: 50 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	return openHub(t, cfg)
}

func TestHubSerialPayment(t *testing.T) {
	m, tty := ptyPair(t)
	rec := newRecorder()
	var traces []terminal.Trace
	traceCh := make(chan terminal.Trace, 1024)
	h := serialHub(t, tty, rec, func(c *terminal.Config) {
		c.Trace = func(tr terminal.Trace) {
			select {
			case traceCh <- tr:
			default:
			}
		}
	})
	paid := make(chan pos.Outcome, 1)
	runSim(t, termsim.Config{TerminalID: "T-1", Port: m, Mode: termsim.Approve,
		OnPayment: func(_ context.Context, inv terminal.InvoicePush, o pos.Outcome) error {
			if inv.Amount != 12500 {
				t.Errorf("amount %s", inv.Amount)
			}
			paid <- o
			return nil
		}})
	rec.wait(t, pos.TerminalConnected, "T-1")
	tx := newTx()
	if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx)); err != nil {
		t.Fatalf("PushInvoice: %v", err)
	}
	if ev := rec.wait(t, pos.TerminalAck, "T-1"); ev.TransactionID != tx || ev.InvoiceNumber != "PB-"+tx {
		t.Fatalf("ack event %+v", ev)
	}
	ev := rec.wait(t, pos.TerminalResult, "T-1")
	if ev.TransactionID != tx || ev.Outcome != pos.OutcomeApproved || ev.Reference == "" {
		t.Fatalf("result %+v", ev)
	}
	if o := <-paid; o != pos.OutcomeApproved {
		t.Fatalf("OnPayment outcome %s", o)
	}
	if err := h.Ping(ctxT(t, 10*time.Second), "T-1"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	st, ok := h.Terminal("T-1")
	if !ok || !st.Connected || st.Link != terminal.LinkSerial || st.Model == "" || st.Port != tty || st.LastSeen.IsZero() {
		t.Fatalf("status %+v", st)
	}
drain:
	for {
		select {
		case tr := <-traceCh:
			traces = append(traces, tr)
		default:
			break drain
		}
	}
	kinds := map[string]bool{}
	for _, tr := range traces {
		kinds[string(tr.Dir)+":"+tr.Kind] = true
	}
	for _, k := range []string{"out:invoice", "in:ack", "in:result", "out:ack", "in:hello", "in:frame-ack"} {
		if !kinds[k] {
			t.Errorf("no trace of %s in %v", k, kinds)
		}
	}
}

// TestHubSerialSimModes runs a scripted terminal: decline, time out, then
// hang; and a busy refusal and a cancel.
func TestHubSerialSimModes(t *testing.T) {
	m, tty := ptyPair(t)
	rec := newRecorder()
	h := serialHub(t, tty, rec, nil)
	script, err := termsim.ParseScript("decline, timeout, approve, silent")
	if err != nil {
		t.Fatal(err)
	}
	// The delay is the customer's time to tap; the busy refusal and the
	// cancel below must land within it, so it is generous.
	runSim(t, termsim.Config{TerminalID: "T-1", Port: m, Script: script, Delay: 1500 * time.Millisecond})
	rec.wait(t, pos.TerminalConnected, "T-1")
	ctx := ctxT(t, 30*time.Second)

	tx1 := newTx()
	if err := h.PushInvoice(ctx, "T-1", invoice(tx1)); err != nil {
		t.Fatal(err)
	}
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.Outcome != pos.OutcomeDeclined || ev.TransactionID != tx1 {
		t.Fatalf("want declined, got %+v", ev)
	}
	tx2 := newTx()
	if err := h.PushInvoice(ctx, "T-1", invoice(tx2)); err != nil {
		t.Fatal(err)
	}
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.Outcome != pos.OutcomeCanceled || ev.Reason != "timeout" {
		t.Fatalf("want canceled/timeout, got %+v", ev)
	}
	// The third invoice would be approved after the delay; meanwhile a
	// second invoice is refused as busy (using no script step), and the
	// third is canceled before the customer taps.
	tx3 := newTx()
	if err := h.PushInvoice(ctx, "T-1", invoice(tx3)); err != nil {
		t.Fatal(err)
	}
	if err := h.PushInvoice(ctx, "T-1", invoice(newTx())); !errors.Is(err, terminal.ErrBusy) {
		t.Fatalf("second invoice: %v, want ErrBusy", err)
	}
	if err := h.CancelInvoice(ctx, "T-1", tx3); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.Outcome != pos.OutcomeCanceled || ev.TransactionID != tx3 {
		t.Fatalf("want canceled, got %+v", ev)
	}
	if err := h.CancelInvoice(ctx, "T-1", tx3); !errors.Is(err, terminal.ErrAlreadyCompleted) {
		t.Fatalf("second cancel: %v", err)
	}
	// Silent: never acknowledged; the hub keeps trying until withdrawn.
	tx4 := newTx()
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = h.PushInvoice(short, "T-1", invoice(tx4))
	cancel()
	if !errors.Is(err, terminal.ErrNotAcknowledged) {
		t.Fatalf("silent terminal: %v, want ErrNotAcknowledged", err)
	}
	if st, _ := h.Terminal("T-1"); st.Pending != 1 {
		t.Fatalf("pending = %d, want the invoice still in the outbox", st.Pending)
	}
	if err := h.CancelInvoice(ctx, "T-1", tx4); !errors.Is(err, terminal.ErrUnknownTransaction) {
		t.Fatalf("cancel of an invoice the terminal ignored: %v", err)
	}
	if st, _ := h.Terminal("T-1"); st.Pending != 0 {
		t.Fatalf("pending = %d after withdrawal", st.Pending)
	}
}

// TestHubResultAtLeastOnce: the subscriber fails to take a result; the
// terminal is not acknowledged, resends, and the result is delivered again.
// Once taken, further copies are suppressed.
func TestHubResultAtLeastOnce(t *testing.T) {
	m, tty := ptyPair(t)
	rec := newRecorder()
	failures := 1
	rec.fail = func(ev pos.TerminalEvent) error {
		if ev.Kind == pos.TerminalResult && failures > 0 {
			failures--
			return errors.New("disk full")
		}
		return nil
	}
	h := serialHub(t, tty, rec, nil)
	runSim(t, termsim.Config{TerminalID: "T-1", Port: m, Mode: termsim.Approve, ResendInterval: 200 * time.Millisecond})
	rec.wait(t, pos.TerminalConnected, "T-1")
	tx := newTx()
	if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx)); err != nil {
		t.Fatal(err)
	}
	first := rec.wait(t, pos.TerminalResult, "T-1")
	second := rec.wait(t, pos.TerminalResult, "T-1")
	if first.TransactionID != tx || second.TransactionID != tx {
		t.Fatalf("results %+v %+v", first, second)
	}
	time.Sleep(time.Second) // several resend intervals: nothing more may arrive
	if n := rec.count(pos.TerminalResult, tx); n != 2 {
		t.Fatalf("%d result deliveries, want 2 (one refused, one taken)", n)
	}
}

func TestHubSerialReconnect(t *testing.T) {
	// The hub's port goes away and comes back (another pty behind the same
	// stable name); the terminal reconnects and payments work again.
	dir := t.TempDir()
	stable := dir + "/ttyPOS"
	m1, tty1 := ptyPair(t)
	if err := symlink(tty1, stable); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	h := serialHub(t, stable, rec, nil)
	stop1 := runSim(t, termsim.Config{TerminalID: "T-1", Port: m1})
	rec.wait(t, pos.TerminalConnected, "T-1")
	stop1()
	m1.Close()
	rec.wait(t, pos.TerminalDisconnected, "T-1")
	m2, tty2 := ptyPair(t)
	if err := symlink(tty2, stable); err != nil {
		t.Fatal(err)
	}
	runSim(t, termsim.Config{TerminalID: "T-1", Port: m2})
	rec.wait(t, pos.TerminalConnected, "T-1")
	tx := newTx()
	if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx)); err != nil {
		t.Fatal(err)
	}
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != tx {
		t.Fatalf("%+v", ev)
	}
	if st, _ := h.Terminal("T-1"); st.Reconnects < 1 {
		t.Errorf("reconnects = %d", st.Reconnects)
	}
}
