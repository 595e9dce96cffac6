package engine_test

import (
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/pos"
)

// TestRequestHashStable pins RequestHash: stored checkouts keep the hash
// of their request, so a change would turn every retry into a conflict.
func TestRequestHashStable(t *testing.T) {
	for want, r := range map[string]pos.CheckoutRequest{
		"f4dac79398bf64f3b1a33cf2f3d7f55a": {},
		"71b25d6eb560e0c80b59c674a9f27bfa": {IdempotencyKey: "k", TillRef: "lane1/42", TerminalID: "29708454", Amount: 12500,
			Customer: pos.Customer{Name: "Salman", Email: "s@example.com", Phone: "+96550000000"}, Description: "groceries", Deadline: 90 * time.Second},
		"955de5a28eef8547a7742e975504cfab": {TerminalID: "ت", Amount: -1, Description: string(make([]byte, 300)), Deadline: -1},
	} {
		if got := engine.RequestHash(r); got != want {
			t.Errorf("RequestHash(%+v) = %s, want %s", r, got, want)
		}
	}
}
