package terminal_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal"
)

// TestHubSerialNeverOpenedShowsPortAndError: a serial terminal whose port
// never opens still shows, in its status, the port it tries to open and
// why that fails, so the status and diagnostics pages can show them.
func TestHubSerialNeverOpenedShowsPortAndError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyACM-nosuch")
	h := serialHub(t, path, newRecorder(), nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, ok := h.Terminal("T-1")
		if !ok {
			t.Fatal("T-1 missing")
		}
		if s.Port == path && strings.Contains(s.LastError, "no such file") {
			if s.Connected || s.Link != terminal.LinkSerial {
				t.Errorf("status = %+v", s)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %+v, want port %s and the open error", s, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
