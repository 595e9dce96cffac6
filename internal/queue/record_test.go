package queue

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
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

// TestRecordBinaryEveryField round-trips records with every field set,
// unset, and at the edges of what a time.Time holds, and checks that a
// damaged record is an error, never a panic or a wrong checkout.
func TestRecordBinaryEveryField(t *testing.T) {
	s := &Store{inst: "0a1b2c3d"}
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	full := pos.Checkout{
		IdempotencyKey: "ключ-🔑", RequestHash: "sha256:00ff", TillRef: "lane3/\x00/000123", TerminalID: "29708454",
		Amount: 1<<62 + 3, Customer: pos.Customer{Name: "سلمان", Email: "s@example.com", Phone: "+96550000000"},
		Description: "groceries", State: pos.StateOnTerminal, CreatedAt: at, UpdatedAt: at.Add(90 * time.Second),
		Deadline: at.Add(30 * time.Minute), Attempts: 300, NextAttemptAt: at.Add(-time.Hour), LastError: "503: try later",
		InvoiceID: -1 << 40, TransactionID: "8800000155016000000011763", CancelRequested: true,
		CancelRequestedAt: time.Date(2300, 1, 1, 0, 0, 0, 1, time.UTC), // past int64 nanoseconds from CreatedAt
		Result: &pos.Result{Outcome: pos.OutcomeDeclined, Reference: "RRN 1", Reason: "insufficient funds", Source: "terminal",
			At: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		History: []pos.Transition{
			{At: at, To: pos.StateQueued, Reason: "accepted"},
			{At: at.Add(time.Second), From: pos.StateQueued, To: pos.StateSubmitting},
			{At: at.Add(-time.Second), From: pos.StateSubmitting, To: pos.StateSent, Reason: "invoice created"},
			{At: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), From: pos.StateSent, To: pos.StateOnTerminal},
		},
	}
	minimal := pos.Checkout{State: pos.StateFailed, CreatedAt: at}
	for name, c := range map[string]pos.Checkout{"full": full, "minimal": minimal} {
		r := &record{Seq: 7, Checkout: c}
		v, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.decode(7, v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := c
		want.ID, want.InvoiceNumber = s.formatID(7), s.formatInvoice(7)
		if !reflect.DeepEqual(got.Checkout, want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", name, got.Checkout, want)
		}
		// Every truncation and a trailing byte are errors.
		for i := 1; i < len(v); i++ {
			if _, err := s.decode(7, v[:i]); err == nil {
				t.Fatalf("%s: truncated to %d of %d bytes: no error", name, i, len(v))
			}
		}
		if _, err := s.decode(7, append(slices.Clone(v), 0)); err == nil {
			t.Fatalf("%s: a trailing byte: no error", name)
		}
	}
	// An unknown state cannot be written.
	if _, err := encodeRecord(&record{Checkout: pos.Checkout{State: "lost", CreatedAt: at}}); err == nil {
		t.Fatal("unknown state encoded")
	}
	// Damaged bytes never panic.
	v, _ := encodeRecord(&record{Checkout: full})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		w := slices.Clone(v)
		for range 1 + rng.IntN(4) {
			w[1+rng.IntN(len(w)-1)] = byte(rng.Uint32())
		}
		_, _ = s.decode(7, w)
	}
}

// TestFormatIDs checks the id and invoice number formats against their
// definitions (docs/queue.md): co_<instance>_<seq>, PB<INSTANCE><seq in
// at least 10 digits>.
func TestFormatIDs(t *testing.T) {
	s := &Store{inst: "0a1b2c3d"}
	for _, seq := range []uint64{1, 42, 999_999_999, 1_000_000_000, 12_345_678_901, 1<<64 - 1} {
		if got, want := s.formatID(seq), fmt.Sprintf("co_0a1b2c3d_%d", seq); got != want {
			t.Errorf("formatID(%d) = %s, want %s", seq, got, want)
		}
		if got, want := s.formatInvoice(seq), fmt.Sprintf("PB0A1B2C3D%010d", seq); got != want {
			t.Errorf("formatInvoice(%d) = %s, want %s", seq, got, want)
		}
		if back, ok := s.parseInvoice(s.formatInvoice(seq)); !ok || back != seq {
			t.Errorf("parseInvoice(formatInvoice(%d)) = %d, %v", seq, back, ok)
		}
	}
}
