package diag

import (
	"strings"
	"testing"
	"time"
)

// TestClockCheck: a step of the system clock (the engine counts them) is
// a readiness line the technician reads, which never fails readiness;
// none is shown while the clock never stepped.
func TestClockCheck(t *testing.T) {
	if _, ok := clockCheck(ClockHealth{}); ok {
		t.Fatal("a clock line without a step")
	}
	at := time.Date(2026, 11, 22, 10, 42, 5, 0, time.UTC)
	c, ok := clockCheck(ClockHealth{Jumps: 2, Last: -time.Hour - 300*time.Millisecond, LastAt: at})
	if !ok || !c.OK || c.Name != "clock" {
		t.Fatalf("after a step back: %+v %v", c, ok)
	}
	for _, want := range []string{"set back by 1h0m0s", "2026-11-22T10:42:05Z", "2 step(s)"} {
		if !strings.Contains(c.Detail, want) {
			t.Errorf("detail %q lacks %q", c.Detail, want)
		}
	}
	c, _ = clockCheck(ClockHealth{Jumps: 1, Last: 365 * 24 * time.Hour, LastAt: at})
	if !strings.Contains(c.Detail, "set forward by 8760h0m0s") {
		t.Errorf("after a step forward: %q", c.Detail)
	}
}
