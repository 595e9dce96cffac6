package terminal_test

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/testutil"
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

// TestHubSerialOpenFailureInItsLog: the link's open failures go to the
// hub's logger (the daemon's, whose warnings the diagnostics page lists),
// naming the terminal; before, they went to slog's default logger
// without it.
func TestHubSerialOpenFailureInItsLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyACM-nosuch")
	logs := &testutil.SyncBuffer{}
	serialHub(t, path, newRecorder(), func(c *terminal.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := logs.String()
		if strings.Contains(out, "level=WARN") && strings.Contains(out, "terminal=T-1") && strings.Contains(out, path) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning naming T-1 and %s in the hub's log:\n%s", path, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
