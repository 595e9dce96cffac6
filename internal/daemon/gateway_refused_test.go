package daemon_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
)

// gatewayReadiness is /readyz's gateway line and its HTTP status.
func gatewayReadiness(t *testing.T, s *demo.Stack) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.Daemon.DiagURL()+"/readyz", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "gateway:") {
			return resp.StatusCode, line
		}
	}
	t.Fatalf("readyz has no gateway line: %s", raw)
	return 0, ""
}

// waitGateway polls /readyz until its gateway line satisfies ok.
func waitGateway(t *testing.T, s *demo.Stack, what string, ok func(status int, line string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, line := gatewayReadiness(t, s)
		if ok(status, line) {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: readyz %d %q", what, status, line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadinessGatewayRefusesAccessCode: Hesabe answering every call with
// 401 (what a wrong hesabe.access_code gets, even after a fresh login)
// made every checkout fail at once while /readyz said "ok gateway:
// answered 0s ago". Now /readyz fails naming hesabe.access_code, the
// gateway is not called offline, and once a call succeeds the check is ok
// again while the status keeps the 401 as a past error, with its time.
func TestReadinessGatewayRefusesAccessCode(t *testing.T) {
	s := startStack(t)
	waitGateway(t, s, "gateway answered", func(_ int, line string) bool {
		return strings.HasPrefix(line, "ok ") && strings.Contains(line, "gateway: answered")
	})

	s.Sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultUnauthorized})
	if got := post(t, s, s.Token, "refused-1", "", `{"terminal_id":"29708454","amount":"1.250"}`); got.status != 202 {
		t.Fatalf("create: %+v", got)
	}
	line := waitGateway(t, s, "readiness failing on the refusal", func(status int, line string) bool {
		return status == http.StatusServiceUnavailable && strings.HasPrefix(line, "FAIL gateway:")
	})
	if !strings.Contains(line, "hesabe.access_code") || !strings.Contains(line, "401") {
		t.Errorf("gateway line %q: want what to check and the 401", line)
	}
	if g := diagStatus(t, s).Gateway; !g.Online || g.Refused == "" {
		t.Errorf("while refused: online %v refused %q (a refusal is an answer, not offline)", g.Online, g.Refused)
	}

	s.Sim.ClearFaults()
	if got := post(t, s, s.Token, "accepted-2", "", `{"terminal_id":"29708454","amount":"1.250"}`); got.status != 202 {
		t.Fatalf("create: %+v", got)
	}
	waitGateway(t, s, "readiness ok after a success", func(_ int, line string) bool { return strings.HasPrefix(line, "ok ") })
	g := diagStatus(t, s).Gateway
	if g.Refused != "" || !strings.Contains(g.LastError, "401") || g.LastErrorAt.IsZero() || !g.LastSuccess.After(g.LastErrorAt) {
		t.Errorf("after the recovery: refused %q, last error %q at %v, last success %v", g.Refused, g.LastError, g.LastErrorAt, g.LastSuccess)
	}
}
