package daemon_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/diag"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
)

// diagStatus reads the diagnostics endpoint's status.json.
func diagStatus(t *testing.T, s *demo.Stack) diag.Status {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.Daemon.DiagURL()+"/status.json", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var st diag.Status
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status.json: %d %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("status.json: %v: %s", err, raw)
	}
	return st
}

// TestGateway5xxIsNotAnAnswer: a gateway that answers every call with a
// 5xx is offline to the engine (checkouts are stored), so the diagnostics
// must not call it "answered 0s ago". The Hesabe client counts any HTTP
// answer, 5xx included, as its last answer; the daemon took the later of
// that and the engine's, so /readyz stayed ok for as long as Hesabe kept
// failing with 503 and never reached its "no answer for 3m" failure.
func TestGateway5xxIsNotAnAnswer(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for diagStatus(t, s).Gateway.LastOK.IsZero() {
		select {
		case <-ctx.Done():
			t.Fatal("the gateway never answered")
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.Sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: http.StatusServiceUnavailable})
	gw := s.Daemon.Gateway()
	if _, err := gw.Terminals(ctx); err == nil {
		t.Fatal("a call got an answer through the 503 fault")
	}
	before := time.Now()
	if _, err := gw.Terminals(ctx); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("second call: %v, want the 503", err)
	}
	g := diagStatus(t, s).Gateway
	if g.LastOK.After(before) {
		t.Errorf("gateway last_ok = %v, after a 503 at %v: a 5xx counted as an answer", g.LastOK, before)
	}
	if !strings.Contains(g.LastError, "503") {
		t.Errorf("gateway last_error = %q, want the 503", g.LastError)
	}
}
