package queue

import (
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestRecordRoundTrip checks the stored form keeps every field (the
// request hash too, which pos.Checkout's JSON leaves out) and logs its size.
func TestRecordRoundTrip(t *testing.T) {
	s := &Store{inst: "0a1b2c3d"}
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	r := &record{Seq: 42, Checkout: pos.Checkout{
		IdempotencyKey: "7f1c9a52-4a8e-4f0e-9a57-1f3b2c4d5e6f", RequestHash: "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f0",
		TillRef: "lane3/000123", TerminalID: "29708454", Amount: 12500,
		Customer:    pos.Customer{Name: "Salman", Phone: "+96550000000"},
		Description: "groceries", State: pos.StateQueued, CreatedAt: at, UpdatedAt: at,
		Deadline: at.Add(5 * time.Minute), NextAttemptAt: at,
		History: []pos.Transition{{At: at, To: pos.StateQueued, Reason: "accepted"}},
	}}
	r.ID, r.InvoiceNumber = s.formatID(42), s.formatInvoice(42)
	v, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new checkout: %d bytes", len(v))
	got, err := s.decode(42, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "co_0a1b2c3d_42" || got.InvoiceNumber != "PB0A1B2C3D0000000042" || got.RequestHash != r.Checkout.RequestHash ||
		!got.CreatedAt.Equal(at) || got.Amount != 12500 || len(got.History) != 1 {
		t.Fatalf("round trip: %+v", got)
	}
	r.History = append(r.History, pos.Transition{At: at, From: pos.StateQueued, To: pos.StateSubmitting, Reason: "sending"})
	w, _ := encodeRecord(r)
	t.Logf("per history entry: %d bytes", len(w)-len(v))
	if seq, ok := s.parseID(got.ID); !ok || seq != 42 {
		t.Fatal("parseID")
	}
	if seq, ok := s.parseInvoice(got.InvoiceNumber); !ok || seq != 42 {
		t.Fatal("parseInvoice")
	}
	for _, bad := range []string{"co_0a1b2c3d_042", "co_0a1b2c3d_0", "co_ffffffff_42", "co_0a1b2c3d_x"} {
		if _, ok := s.parseID(bad); ok {
			t.Errorf("parseID(%q) accepted", bad)
		}
	}
	if _, err := s.decode(1, []byte{9, '{', '}'}); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestStateSlots(t *testing.T) {
	if len(stateSlots) != numSlots || len(pos.States) != numSlots {
		t.Fatalf("%d slots, %d states, numSlots %d", len(stateSlots), len(pos.States), numSlots)
	}
	for _, s := range pos.States {
		if slot(s) < 0 {
			t.Errorf("state %s has no counter slot", s)
		}
	}
}
