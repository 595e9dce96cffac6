package diag_test

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestAcceptingSaysItsOwnReason: /readyz's "accepting checkouts" line
// gives the source's reason as it is. It used to prefix every reason with
// "every checkout is refused until posbridge restarts", also a full disk,
// from which the bridge recovers by itself once space is freed.
func TestAcceptingSaysItsOwnReason(t *testing.T) {
	f := healthy(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	f.accepting = errors.New("the bridge's disk is full: it cannot store checkouts until space is freed; it recovers by itself")
	s, _, _ := start(t, f, "")
	code, body := get(t, s.URL()+"/readyz", "")
	if code != 503 || !strings.Contains(body, "FAIL accepting checkouts: NO, the bridge's disk is full") {
		t.Fatalf("readyz %d:\n%s", code, body)
	}
	if strings.Contains(body, "restart") {
		t.Errorf("a full disk reads as needing a restart:\n%s", body)
	}
}
