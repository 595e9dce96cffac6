package hesabesim_test

import (
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want hesabesim.Fault
	}{
		{"5xx", hesabesim.Fault{Kind: hesabesim.Fault5xx}},
		{"5xx=503:2@smartpos", hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 503, Count: 2, Path: "smartpos"}},
		{"latency=1500ms", hesabesim.Fault{Kind: hesabesim.FaultLatency, Latency: 1500 * time.Millisecond}},
		{"apply-then-drop%0.25@smartpos-transaction", hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Probability: 0.25, Path: "smartpos-transaction"}},
	} {
		got, err := hesabesim.ParseFault(tc.in)
		if err != nil {
			t.Fatalf("ParseFault(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("ParseFault(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{"", "boom", "5xx=200", "latency=fast", "429:x", "reset-before-read=1", "5xx%2"} {
		if _, err := hesabesim.ParseFault(in); err == nil {
			t.Errorf("ParseFault(%q) accepted", in)
		}
	}
}
