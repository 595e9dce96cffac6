package diag_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/diag"
)

// TestReadinessGatewayRefusesCredentials: the gateway answers (online,
// answered just now) but refuses posbridge's settings: /readyz fails with
// the reason naming what to check, where it said "ok gateway: answered 0s
// ago" while every checkout failed. Once a call succeeds the engine clears
// the refusal and the check is ok again.
func TestReadinessGatewayRefusesCredentials(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := healthy(now)
	f.gw.LastOK = now
	f.gw.LastError = "hesabe: login: HTTP 401, code 504: Invalid merchant login credentials (permanent)"
	f.gw.LastErrorAt = now.Add(-2 * time.Second)
	f.gw.Refused = "gateway refuses posbridge's merchant login: check hesabe.username/password"
	s, _, _ := start(t, f, "")
	code, body := get(t, s.URL()+"/readyz", "")
	if code != 503 || !strings.Contains(body, "FAIL gateway: gateway refuses posbridge's merchant login: check hesabe.username/password") ||
		!strings.Contains(body, "Invalid merchant login credentials") {
		t.Fatalf("refused credentials: %d %s", code, body)
	}
	if !strings.Contains(body, "last error 2s ago:") {
		t.Errorf("the last error has no age: %s", body)
	}
	f.gw.Refused, f.gw.LastSuccess = "", now
	if code, body = get(t, s.URL()+"/readyz", ""); code != 200 || strings.Contains(body, "FAIL") {
		t.Fatalf("after a success: %d %s", code, body)
	}
}

// TestPageGatewayLastErrorIsPast: the status page's gateway "Last error"
// says when it happened, and that calls have succeeded since; it used to
// show an error from before a recovery as if it were current.
func TestPageGatewayLastErrorIsPast(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := healthy(now)
	f.gw.LastError = "hesabe: find pos invoice: HTTP 503 (retryable)"
	f.gw.LastErrorAt = now.Add(-3 * time.Minute)
	f.gw.LastSuccess = now.Add(-10 * time.Second)
	s, _, _ := start(t, f, "")
	code, body := get(t, s.URL()+"/", "")
	if code != 200 {
		t.Fatalf("page: %d", code)
	}
	i := strings.Index(body, `id="gw-lasterr"`)
	if i < 0 {
		t.Fatalf("no gateway last error cell: %s", body)
	}
	cell := body[i:]
	cell = cell[:strings.Index(cell, "</td>")]
	if !strings.Contains(cell, "3m0s ago") || !strings.Contains(cell, "HTTP 503") || !strings.Contains(cell, "succeeded since") {
		t.Errorf("last error cell %q: want its age, the error, and that calls succeeded since", cell)
	}
	// A current error (no success since) is not called past.
	f.gw.LastSuccess = now.Add(-5 * time.Minute)
	_, body = get(t, s.URL()+"/", "")
	cell = body[strings.Index(body, `id="gw-lasterr"`):]
	cell = cell[:strings.Index(cell, "</td>")]
	if !strings.Contains(cell, "3m0s ago") || strings.Contains(cell, "succeeded since") {
		t.Errorf("current error cell %q", cell)
	}
	code, body = get(t, s.URL()+"/status.json", "")
	var st diag.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.Gateway == nil ||
		!st.Gateway.LastErrorAt.Equal(f.gw.LastErrorAt) || !st.Gateway.LastSuccess.Equal(f.gw.LastSuccess) {
		t.Errorf("status.json gateway without last_error_at / last_success: %d %v %s", code, err, body)
	}
}
