package terminal_test

import (
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// TestResultEndsUnackedInvoice: the terminal's ack for an invoice is lost,
// and the payment ends: its result for that transaction proves the
// invoice got there. The hub must stop offering the invoice then (a
// terminal app restarted after the payment would show it again and the
// customer pay twice), and PushInvoice returns as acknowledged.
func TestResultEndsUnackedInvoice(t *testing.T) {
	m, tty := ptyPair(t)
	rec := newRecorder()
	h := serialHub(t, tty, rec, nil)
	term := newRawSerialTerminal(t, m)
	term.greet(t, "T-1")
	rec.wait(t, pos.TerminalConnected, "T-1")

	tx := newTx()
	pushed := make(chan error, 1)
	go func() { pushed <- h.PushInvoice(ctxT(t, 30*time.Second), "T-1", invoice(tx)) }()
	inv := term.expect(t, protocol.KindInvoice) // shown; its ack never arrives
	if inv.Invoice.TransactionID != tx {
		t.Fatalf("invoice %+v", inv.Invoice)
	}
	res := term.ids.New(protocol.KindResult, "T-1")
	res.Result = &protocol.Result{TransactionID: tx, InvoiceNumber: inv.Invoice.InvoiceNumber,
		Outcome: pos.OutcomeApproved, Reference: "AUTH-1", Amount: inv.Invoice.Amount}
	term.send(t, res)
	if a := term.expect(t, protocol.KindAck); a.Ref != res.ID {
		t.Fatalf("ack for %s, want the result %s", a.Ref, res.ID)
	}
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != tx {
		t.Fatalf("result event %+v", ev)
	}
	if st, _ := h.Terminal("T-1"); st.Pending != 0 {
		t.Fatalf("%d messages still waiting for the terminal after its result: the paid invoice would be offered again", st.Pending)
	}
	if err := <-pushed; err != nil {
		t.Fatalf("PushInvoice: %v, want nil (the result shows the invoice got there)", err)
	}
	if ev := rec.wait(t, pos.TerminalAck, "T-1"); ev.TransactionID != tx {
		t.Fatalf("ack event %+v", ev)
	}
}

// TestResultWithNullAmount: a terminal app whose JSON library writes
// absent optional fields as null ("amount":null, like "reference":null)
// reports a payment. A refusal would end the result's resends for good
// (an error answers a reliable message), losing the payment: the result
// is taken and acknowledged.
func TestResultWithNullAmount(t *testing.T) {
	m, tty := ptyPair(t)
	rec := newRecorder()
	serialHub(t, tty, rec, nil)
	term := newRawSerialTerminal(t, m)
	term.greet(t, "T-1")

	tx := newTx()
	res := `{"v":1,"kind":"result","id":"r-null-1","terminal_id":"T-1","ref":null,"ts":null,"result":` +
		`{"transaction_id":"` + tx + `","invoice_number":null,"outcome":"approved","reference":"AUTH-9","reason":null,"amount":null}}`
	if err := term.conn.Send(ctxT(t, 10*time.Second), []byte(res)); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case a := <-term.in:
			if a.Kind == protocol.KindError {
				t.Fatalf("result refused: %+v", a.Error)
			}
			if a.Kind != protocol.KindAck {
				continue
			}
			if a.Ref != "r-null-1" {
				t.Fatalf("ack for %s", a.Ref)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("no answer to the result")
		}
		break
	}
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != tx || ev.Outcome != pos.OutcomeApproved || ev.Reference != "AUTH-9" {
		t.Fatalf("result event %+v", ev)
	}
}
