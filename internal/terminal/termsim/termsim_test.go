package termsim_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

func TestParseScript(t *testing.T) {
	got, err := termsim.ParseScript(" approve, Decline,silent ,timeout")
	want := []termsim.Action{termsim.Approve, termsim.Decline, termsim.Silent, termsim.Timeout}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseScript = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "approve,refund"} {
		if _, err := termsim.ParseScript(bad); err == nil {
			t.Errorf("ParseScript(%q) accepted", bad)
		}
	}
}

func TestRunConfigErrors(t *testing.T) {
	for _, cfg := range []termsim.Config{
		{TerminalID: "T-1"}, // no transport
		{TerminalID: "T-1", SerialPath: "/dev/x", Mode: "refund"},
		{SerialPath: "/dev/x"},
	} {
		if err := termsim.Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) accepted", cfg)
		}
	}
}
