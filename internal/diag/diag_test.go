package diag_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/diag"
	"github.com/posbridge/posbridge/internal/logging"
	"github.com/posbridge/posbridge/internal/pos"
)

type fixture struct {
	now       time.Time
	gw        diag.GatewayHealth
	queue     diag.QueueHealth
	terminals []diag.TerminalHealth
}

func start(t *testing.T, f *fixture, token string) (*diag.Server, *diag.Trace, *logging.Recent) {
	t.Helper()
	trace := diag.NewTrace(10)
	recent := logging.NewRecent(10)
	m := diag.NewMetrics()
	s := diag.New(diag.Sources{
		Version: "1.2.3", Started: f.now.Add(-time.Hour),
		Gateway:   func() diag.GatewayHealth { return f.gw },
		Queue:     func(context.Context) (diag.QueueHealth, error) { return f.queue, nil },
		Terminals: func() []diag.TerminalHealth { return f.terminals },
		Ports: func() ([]diag.PortInfo, error) {
			return []diag.PortInfo{{Name: "/dev/ttyACM0", USB: true, VID: "0483", PID: "5740", Serial: "A99-1"}}, nil
		},
		Trace: trace, Errors: recent,
	}, m, diag.Options{Addr: "127.0.0.1:0", Token: token, Now: func() time.Time { return f.now }})
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, trace, recent
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func healthy(now time.Time) *fixture {
	return &fixture{
		now:   now,
		gw:    diag.GatewayHealth{URL: "https://merchantapisandbox.hesabe.com/api", Online: true, LastOK: now.Add(-10 * time.Second)},
		queue: diag.QueueHealth{ByState: map[pos.State]int{pos.StatePaid: 3}, DBPath: "/var/lib/posbridge/posbridge.db"},
		terminals: []diag.TerminalHealth{{ID: "29708454", Name: "A99", Link: "mqtt", Connected: true, LastSeen: now.Add(-time.Second)},
			{ID: "48515", Link: "serial", Address: "/dev/ttyACM0", Connected: true, LastSeen: now}},
	}
}

func TestReadiness(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := healthy(now)
	s, _, _ := start(t, f, "")
	if code, body := get(t, s.URL()+"/readyz", ""); code != 200 || strings.Contains(body, "FAIL") {
		t.Fatalf("healthy: %d %s", code, body)
	}
	// Stale gateway: answered 10 minutes ago.
	f.gw.LastOK = now.Add(-10 * time.Minute)
	f.gw.LastError = "hesabe: list terminals: dial tcp: connection refused (retryable)"
	code, body := get(t, s.URL()+"/readyz", "")
	if code != 503 || !strings.Contains(body, "FAIL gateway: no answer for 10m0s") || !strings.Contains(body, "connection refused") {
		t.Fatalf("stale gateway: %d %s", code, body)
	}
	f.gw.LastOK = now
	// A terminal down.
	f.terminals[1].Connected = false
	f.terminals[1].LastError = "open /dev/ttyACM0: no such file or directory"
	if code, body = get(t, s.URL()+"/readyz", ""); code != 503 || !strings.Contains(body, "FAIL terminal 48515: serial down") {
		t.Fatalf("terminal down: %d %s", code, body)
	}
	f.terminals[1].Connected = true
	// A stuck queue: the gateway is online but a checkout waits 5 minutes.
	f.queue.Queued, f.queue.OldestQueued, f.queue.OldestID = 1, now.Add(-5*time.Minute), "co_7"
	if code, body = get(t, s.URL()+"/readyz", ""); code != 503 || !strings.Contains(body, "stuck: oldest queued checkout co_7") {
		t.Fatalf("stuck queue: %d %s", code, body)
	}
	// The same backlog while offline is store-and-forward, not stuck.
	f.gw.Online = false
	if code, body = get(t, s.URL()+"/readyz", ""); code != 200 {
		t.Fatalf("offline backlog: %d %s", code, body)
	}
	if code, _ := get(t, s.URL()+"/healthz", ""); code != 200 {
		t.Fatal("healthz")
	}
}

func TestTokenAndPages(t *testing.T) {
	now := time.Now()
	f := healthy(now)
	s, trace, recent := start(t, f, "diag-token-123")
	for _, p := range []string{"/", "/metrics", "/status.json"} {
		if code, _ := get(t, s.URL()+p, ""); code != 401 {
			t.Fatalf("%s without token: %d", p, code)
		}
		if code, _ := get(t, s.URL()+p, "wrong"); code != 401 {
			t.Fatalf("%s wrong token: %d", p, code)
		}
	}
	if code, _ := get(t, s.URL()+"/readyz", ""); code != 200 {
		t.Fatal("readyz must not need the token")
	}
	trace.Record(diag.Frame{Dir: "in", Terminal: "48515", Link: "serial", Kind: "result", Bytes: 88, Note: "resend"})
	logging.New(io.Discard, logging.Options{Recent: recent}).Warn("terminal 48515 reconnecting", "err", "EIO")
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/", nil)
	req.SetBasicAuth("tech", "diag-token-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"READY", "1.2.3", "29708454", "/dev/ttyACM0", "0483:5740", "terminal 48515 reconnecting", "result", "merchantapisandbox"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	code, metrics := get(t, s.URL()+"/metrics", "diag-token-123")
	for _, want := range []string{`posbridge_checkouts{state="paid"} 3`, `posbridge_terminal_connected{link="mqtt",terminal="29708454"} 1`,
		"posbridge_gateway_online 1", `posbridge_info{version="1.2.3"} 1`, "posbridge_queue_oldest_age_seconds 0", "go_goroutines"} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestMetricsGateway(t *testing.T) {
	m := diag.NewMetrics()
	m.ObserveGateway("create pos invoice", 120*time.Millisecond, nil)
	m.ObserveGateway("create pos invoice", time.Second, &pos.Error{Code: pos.EInternal})
	n, err := m.Registry().Gather()
	if err != nil || len(n) == 0 {
		t.Fatal(err)
	}
}
