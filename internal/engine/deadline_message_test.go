package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestDeadlineTooLongSaysSeconds: a till gives the deadline in seconds,
// so a deadline past the maximum is refused in seconds. It used to read
// "30m1s is longer than the maximum 30m0s".
func TestDeadlineTooLongSaysSeconds(t *testing.T) {
	h := newHarness(t, fastOptions(), false)
	req := checkoutReq(termA, "long-deadline", 1000)
	req.Deadline = 30*time.Minute + time.Second
	_, _, err := h.eng.Create(context.Background(), req)
	pe, ok := err.(*pos.Error)
	if !ok || pe.Field != "deadline" {
		t.Fatalf("err %v, want a field error on deadline", err)
	}
	if want := "must be at most 1800 seconds (the bridge's checkout.max_deadline); got 1801 seconds"; pe.Message != want {
		t.Fatalf("message %q, want %q", pe.Message, want)
	}
}
