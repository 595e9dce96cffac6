package queue

import (
	"reflect"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// FuzzDecodeRecord decodes any bytes as a stored checkout (a database
// page damaged on a store PC's disk): decode refuses them with an error
// or returns a record that encodes back to bytes decoding to the same
// record. It never panics. It found that a first-schema (JSON) record
// without a state was taken, which the binary decoder refuses. The seeds are real records: a new checkout,
// one paid with a result and a history, and one canceled, in both stored
// formats.
func FuzzDecodeRecord(f *testing.F) {
	s := &Store{inst: "0a1b2c3d"}
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	base := pos.Checkout{
		IdempotencyKey: "7f1c9a52-4a8e-4f0e-9a57-1f3b2c4d5e6f", RequestHash: "sha256:0f1e2d3c",
		TillRef: "lane3/000123", TerminalID: "29708454", Amount: 12500,
		Customer:    pos.Customer{Name: "سلمان", Phone: "+96550000000", Email: "s@example.com"},
		Description: "groceries", State: pos.StateQueued, CreatedAt: at, UpdatedAt: at,
		Deadline: at.Add(5 * time.Minute), NextAttemptAt: at,
		History: []pos.Transition{{At: at, To: pos.StateQueued, Reason: "accepted"}},
	}
	paid := base
	paid.State, paid.InvoiceID, paid.TransactionID, paid.Attempts = pos.StatePaid, 991, "297084548422172681795314558361", 2
	paid.Result = &pos.Result{Outcome: "paid", Reference: "SIM-AUTH-1", Source: "terminal", At: at.Add(40 * time.Second)}
	paid.History = append(paid.History, pos.Transition{At: at.Add(time.Second), From: pos.StateQueued, To: pos.StatePaid, Reason: "approved"})
	canceled := base
	canceled.State, canceled.CancelRequested, canceled.CancelRequestedAt = pos.StateCanceled, true, at.Add(3*time.Second)
	canceled.LastError = "terminal 29708454 is busy"
	for i, c := range []pos.Checkout{base, paid, canceled} {
		v, err := encodeRecord(&record{Seq: uint64(i + 1), Checkout: c})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
		f.Add(v[:len(v)/2])
	}
	f.Add([]byte{formatJSON, '{', '"', 'S', 't', 'a', 't', 'e', '"', ':', '"', 'q', 'u', 'e', 'u', 'e', 'd', '"', '}'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := s.decode(7, v)
		if err != nil {
			return
		}
		if r.ID != "co_0a1b2c3d_7" {
			t.Fatalf("id %q", r.ID)
		}
		w, err := encodeRecord(r)
		if err != nil {
			t.Fatalf("a decoded record does not encode: %v", err)
		}
		again, err := s.decode(7, w)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(again.Checkout), normalize(r.Checkout)) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r.Checkout, again.Checkout)
		}
	})
}

// normalize drops what the binary form does not keep as such: time zones
// (times are stored as UTC instants) and empty slices against nil.
func normalize(c pos.Checkout) pos.Checkout {
	utc := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Time{}
		}
		return t.UTC()
	}
	c.CreatedAt, c.UpdatedAt, c.Deadline = utc(c.CreatedAt), utc(c.UpdatedAt), utc(c.Deadline)
	c.NextAttemptAt, c.CancelRequestedAt = utc(c.NextAttemptAt), utc(c.CancelRequestedAt)
	if c.Result != nil {
		r := *c.Result
		r.At = utc(r.At)
		c.Result = &r
	}
	h := make([]pos.Transition, 0, len(c.History))
	for _, x := range c.History {
		x.At = utc(x.At)
		h = append(h, x)
	}
	c.History = h
	return c
}
