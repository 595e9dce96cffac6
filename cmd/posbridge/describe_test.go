package main

import (
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestDescribeResultWithoutOutcome: a result without an outcome (an
// expired checkout, ended by the gateway's side) reads "by gateway", not
// " by gateway" (which `pay` printed as "( by gateway").
func TestDescribeResultWithoutOutcome(t *testing.T) {
	got := describe(pos.Checkout{State: pos.StateExpired, Result: &pos.Result{Source: "gateway", Reason: "deadline passed"}})
	if want := "by gateway: deadline passed"; got != want {
		t.Fatalf("describe = %q, want %q", got, want)
	}
}
