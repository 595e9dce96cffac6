package protocol_test

import (
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// "ts" is informational (docs/terminal-protocol.md §1): a sender's clock
// or its time format must not get a message refused. Refusing a result
// over it would end the result's resends (an error answers a reliable
// message) and the payment would never reach the till; a common case is
// a terminal app that writes its local time without a zone.
func TestMalformedTimestampIsIgnored(t *testing.T) {
	for _, ts := range []string{
		`"2026-11-22T01:00:00"`,  // no zone (Python's isoformat of a naive time)
		`"2026-11-22 01:00:00Z"`, // a space for the T
		`"22/11/2026 01:00"`,     // not RFC 3339 at all
		`1795311004`,             // Unix seconds
		`{"sec":1}`,              // anything else
		`null`,                   // absent
	} {
		t.Run(ts, func(t *testing.T) {
			b := []byte(`{"v":1,"kind":"result","id":"t1-4","terminal_id":"T-1","ts":` + ts +
				`,"result":{"transaction_id":"84712345678","outcome":"approved","amount":"12.500"}}`)
			m, err := protocol.Decode(b)
			if err != nil {
				t.Fatalf("Decode refused a result over its ts: %v", err)
			}
			if !m.Time.IsZero() {
				t.Errorf("ts %s read as %v, want absent", ts, m.Time)
			}
			if m.Result == nil || m.Result.TransactionID != "84712345678" || m.Result.Amount != 12500 {
				t.Errorf("result not read: %+v", m.Result)
			}
		})
	}
}

func TestValidTimestampIsRead(t *testing.T) {
	b := []byte(`{"v":1,"kind":"ping","id":"t1-5","terminal_id":"T-1","ts":"2025-03-01T13:01:31.123456789+03:00"}`)
	m, err := protocol.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 1, 10, 1, 31, 123456789, time.UTC)
	if !m.Time.Equal(want) {
		t.Errorf("ts read as %v, want %v", m.Time, want)
	}
}

// The rest of the envelope stays strict: only ts is informational.
func TestBadEnvelopeStillRefused(t *testing.T) {
	b := []byte(`{"v":"1","kind":"ping","id":"t1-6","terminal_id":"T-1","ts":"2026-11-22T01:00:00"}`)
	m, err := protocol.Decode(b)
	if err == nil {
		t.Fatal("a string v was accepted")
	}
	if m.ID != "t1-6" {
		t.Errorf("refusal would carry no ref: id %q", m.ID)
	}
}
