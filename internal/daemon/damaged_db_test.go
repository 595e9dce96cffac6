package daemon_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue/queuetest"
)

// TestDamagedDatabaseRefusesAndSaysWhy: a database page bbolt cannot read
// (a write the disk lost) panicked the daemon as soon as anything read
// it, at every restart. Now the daemon stays up: the read is a 503 saying
// the database file is damaged, a create is refused with nothing stored,
// /v1/status says accepting: false with the reason, and /readyz fails
// naming it and the troubleshooting entry.
func TestDamagedDatabaseRefusesAndSaysWhy(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, daemon.DBFile)
	// Checkouts queued on the MQTT terminal, far more than the test's
	// time lets it take: the one damaged stays queued, unread.
	victim := queuetest.DamagedDB(t, path, "29708454", 3000, 2500)

	s := startStack(t, func(o *demo.Options) { o.DataDir = dataDir })
	var eb struct {
		Error struct {
			Code    pos.Code `json:"code"`
			Message string   `json:"message"`
		} `json:"error"`
	}
	resp := call(t, s, http.MethodGet, "/v1/checkouts/"+victim.ID, "", "", &eb)
	if resp.StatusCode != http.StatusServiceUnavailable || eb.Error.Code != pos.EUnavailable ||
		!strings.Contains(eb.Error.Message, "database file is damaged") {
		t.Fatalf("GET the damaged checkout: %d %+v", resp.StatusCode, eb.Error)
	}
	got := post(t, s, s.Token, "after-damage", "", `{"terminal_id":"29708454","amount":"1.250"}`)
	if got.status != http.StatusServiceUnavailable || !strings.Contains(got.msg, "damaged") ||
		!strings.Contains(got.msg, "nothing was stored") {
		t.Fatalf("create on a damaged database: %+v", got)
	}
	var status struct {
		Accepting bool   `json:"accepting"`
		Reason    string `json:"reason"`
	}
	if resp := call(t, s, http.MethodGet, "/v1/status", "", "", &status); resp.StatusCode != http.StatusOK ||
		status.Accepting || !strings.Contains(status.Reason, "database file is damaged") {
		t.Fatalf("/v1/status: %d %+v", resp.StatusCode, status)
	}
	r, err := http.Get(s.Daemon.DiagURL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(text), "FAIL accepting checkouts") ||
		!strings.Contains(string(text), "damaged") || !strings.Contains(string(text), "troubleshooting") {
		t.Fatalf("/readyz: %d\n%s", r.StatusCode, text)
	}
}
