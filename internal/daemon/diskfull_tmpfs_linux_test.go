package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestDiskFullCreateIsUnavailable: on a full disk a create was a 500
// "internal error" and /v1/status said accepting: true, queued: 0. Now,
// with data_dir on a tiny tmpfs that is filled: once the accept log can
// no longer grow, a create is a 503 `unavailable` with Retry-After saying
// nothing was stored and to retry with the same key; /v1/status says
// accepting: false with the reason, /readyz fails, and a list is a 503
// too. Once space is freed the bridge recovers by itself: status and
// /readyz say accepting, and the refused key is accepted.
func TestDiskFullCreateIsUnavailable(t *testing.T) {
	disk := testutil.MountTinyDisk(t, "4m")
	s := startStack(t, func(o *demo.Options) { o.DataDir = filepath.Join(disk, "data") })
	type status struct {
		Accepting  bool      `json:"accepting"`
		Reason     string    `json:"reason"`
		Queued     int       `json:"queued"`
		CountsAsOf time.Time `json:"counts_as_of"`
	}
	getStatus := func() status {
		var st status
		if resp := call(t, s, http.MethodGet, "/v1/status", "", "", &st); resp.StatusCode != http.StatusOK {
			t.Fatalf("/v1/status: %d", resp.StatusCode)
		}
		return st
	}
	readyz := func() (int, string) {
		resp, err := http.Get(s.Daemon.DiagURL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(text)
	}

	// Checkouts on a terminal nobody has: they stay queued.
	body := `{"terminal_id":"29708454","amount":"1.250"}`
	if got := post(t, s, s.Token, "before", "", body); got.status != http.StatusAccepted {
		t.Fatalf("create: %+v", got)
	}
	// A till reads the status while the disk has room: its counts are
	// current (no counts_as_of). The checkout may already be on its way
	// to the terminal, so its count is not checked.
	if st := getStatus(); !st.Accepting || !st.CountsAsOf.IsZero() {
		t.Fatalf("/v1/status before the disk is full: %+v", st)
	}
	testutil.FillDisk(t, disk)

	// The accept log has room left in its file: creates go on until it
	// must grow.
	var refused answer
	var key string
	for i := range 2000 {
		key = fmt.Sprintf("full-%d", i)
		refused = post(t, s, s.Token, key, "", body)
		if refused.status != http.StatusAccepted {
			break
		}
	}
	if refused.status != http.StatusServiceUnavailable || refused.code != pos.EUnavailable ||
		!strings.Contains(refused.msg, "disk is full") || !strings.Contains(refused.msg, "nothing was stored") ||
		!strings.Contains(refused.msg, "Idempotency-Key") {
		t.Fatalf("create on a full disk: %+v, want 503 unavailable: disk full, nothing stored", refused)
	}
	// Retry-After comes with it.
	req, _ := http.NewRequest(http.MethodPost, s.Daemon.APIURL()+"/v1/checkouts", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Idempotency-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("again: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The queue's counts are the last ones read, with their time (they
	// read 0 before, as if current: the store cannot be read).
	if st := getStatus(); st.Accepting || !strings.Contains(st.Reason, "disk is full") || st.CountsAsOf.IsZero() {
		t.Errorf("/v1/status on a full disk: %+v", st)
	}
	if code, text := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(text, "FAIL accepting checkouts") ||
		!strings.Contains(text, "disk is full") {
		t.Errorf("readyz on a full disk: %d\n%s", code, text)
	}
	if resp := call(t, s, http.MethodGet, "/v1/checkouts?limit=1", "", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("list on a full disk: %d, want 503", resp.StatusCode)
	}

	// Space is freed: /readyz recovers without a till trying.
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, text := readyz()
		if !strings.Contains(text, "disk is full") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz 10s after space was freed: %d\n%s", code, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := getStatus(); !st.Accepting || st.Reason != "" || !st.CountsAsOf.IsZero() {
		t.Errorf("/v1/status after space was freed: %+v", st)
	}
	if got := post(t, s, s.Token, key, "", body); got.status != http.StatusAccepted {
		t.Errorf("the refused create again after space was freed: %+v", got)
	}
}
