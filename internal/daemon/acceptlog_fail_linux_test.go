package daemon_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/pos"
)

// breakAcceptLog points the running daemon's accept log file descriptor
// at /dev/full: its next write fails with "no space left on device", as
// on a full disk.
func breakAcceptLog(t *testing.T, dataDir string) {
	t.Helper()
	wal, err := filepath.EvalSymlinks(filepath.Join(dataDir, daemon.DBFile+".wal"))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer full.Close()
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == wal {
			var fd int
			for _, c := range e.Name() {
				fd = fd*10 + int(c-'0')
			}
			if err := syscall.Dup3(int(full.Fd()), fd, syscall.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("the accept log %s is not open", wal)
}

// TestAcceptLogFailedIsNotReady: once the accept log cannot be written
// (a full or failing disk), the bridge refuses every checkout until it is
// restarted. /readyz said ok all the same (the queue could still be
// read), and the till got "internal error". Now the till gets 503
// unavailable saying the bridge must be restarted, and /readyz fails
// saying so.
func TestAcceptLogFailedIsNotReady(t *testing.T) {
	s := startStack(t)
	body := `{"terminal_id":"29708454","amount":"1.250"}`
	if got := post(t, s, s.Token, "before", "", body); got.status != http.StatusAccepted {
		t.Fatalf("create: %+v", got)
	}
	accepting := func() bool {
		var st struct {
			Accepting *bool `json:"accepting"`
		}
		if resp := call(t, s, http.MethodGet, "/v1/status", "", "", &st); resp.StatusCode != http.StatusOK || st.Accepting == nil {
			t.Fatalf("/v1/status: %d, accepting %v", resp.StatusCode, st.Accepting)
		}
		return *st.Accepting
	}
	if !accepting() {
		t.Error("/v1/status says not accepting before the accept log failed")
	}
	breakAcceptLog(t, s.Config.DataDir)
	got := post(t, s, s.Token, "after", "", body)
	if got.status != http.StatusServiceUnavailable || got.code != pos.EUnavailable || !strings.Contains(got.msg, "restart") {
		t.Errorf("create after the accept log failed: %+v, want 503 unavailable saying to restart", got)
	}
	// A till that asks before offering card payments learns it too.
	if accepting() {
		t.Error("/v1/status says accepting after the accept log failed")
	}
	resp, err := http.Get(s.Daemon.DiagURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(text), "FAIL accepting checkouts") || !strings.Contains(string(text), "restart") {
		t.Errorf("readyz after the accept log failed: %d\n%s", resp.StatusCode, text)
	}
}
