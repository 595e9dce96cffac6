package diag_test

import (
	"context"
	"encoding/json"
	"errors"
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
	// requests, when set (or requestsErr), is the request outbox source.
	requests    *diag.RequestsHealth
	requestsErr error
	// accepting, when set, is why the bridge refuses checkouts.
	accepting error
}

func start(t *testing.T, f *fixture, token string) (*diag.Server, *diag.Trace, *logging.Recent) {
	t.Helper()
	trace := diag.NewTrace(10)
	recent := logging.NewRecent(10)
	m := diag.NewMetrics()
	src := diag.Sources{
		Version: "1.2.3", Started: f.now.Add(-time.Hour),
		Gateway:   func() diag.GatewayHealth { return f.gw },
		Queue:     func(context.Context) (diag.QueueHealth, error) { return f.queue, nil },
		Terminals: func() []diag.TerminalHealth { return f.terminals },
		Ports: func() ([]diag.PortInfo, error) {
			return []diag.PortInfo{{Name: "/dev/ttyACM0", USB: true, VID: "0483", PID: "5740", Serial: "A99-1"}}, nil
		},
		Trace: trace, Errors: recent,
	}
	if f.accepting != nil {
		src.Accepting = func() error { return f.accepting }
	}
	if f.requests != nil || f.requestsErr != nil {
		src.Requests = func(context.Context) (diag.RequestsHealth, error) {
			if f.requestsErr != nil {
				return diag.RequestsHealth{}, f.requestsErr
			}
			return *f.requests, nil
		}
	}
	s := diag.New(src, m, diag.Options{Addr: "127.0.0.1:0", Token: token, Now: func() time.Time { return f.now }})
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
			{ID: "48515", Link: "serial", Address: "/dev/ttyACM0", Connected: true, LastSeen: now, DroppedEvents: 7}},
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

// TestReadinessGatewayOffline: while the gateway's last answer is not yet
// stale but its last call failed (the engine is offline, storing
// checkouts), the gateway check stays ok and says it is offline, with the
// last error; it used to read "answered 20s ago" and nothing else.
func TestReadinessGatewayOffline(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := healthy(now)
	f.gw.Online, f.gw.LastOK = false, now.Add(-20*time.Second)
	f.gw.LastError = "hesabe: find pos invoice: HTTP 503 (retryable)"
	s, _, _ := start(t, f, "")
	code, body := get(t, s.URL()+"/readyz", "")
	if code != 200 || !strings.Contains(body, "ok   gateway: answered 20s ago; OFFLINE now") || !strings.Contains(body, "last error: hesabe: find pos invoice: HTTP 503") {
		t.Fatalf("offline gateway, answered 20s ago: %d %s", code, body)
	}
	f.gw.LastOK = now.Add(-10 * time.Minute)
	if code, body = get(t, s.URL()+"/readyz", ""); code != 503 || !strings.Contains(body, "FAIL gateway: no answer for 10m0s") || !strings.Contains(body, "HTTP 503") {
		t.Fatalf("offline gateway, stale: %d %s", code, body)
	}
}

// TestTerminalWithoutLink: a terminal configured with link "none" has no
// local link to be up or down. The daemon reports it connected so that it
// never fails readiness, and the endpoint used to repeat that: "ok
// terminal T0001: none connected, last seen never" and a green
// "connected" badge on the page, for a terminal nothing is connected to.
func TestTerminalWithoutLink(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := healthy(now)
	f.terminals = []diag.TerminalHealth{{ID: "T0001", Link: "none", Connected: true}}
	s, _, _ := start(t, f, "")
	code, body := get(t, s.URL()+"/readyz", "")
	if code != 200 || !strings.Contains(body, "ok   terminal T0001: no local link") || strings.Contains(body, "connected") {
		t.Errorf("readyz: %d %s", code, body)
	}
	_, page := get(t, s.URL()+"/", "")
	i := strings.Index(page, `<section id="terminals-section">`)
	j := strings.Index(page, `<section id="ports-section">`)
	if i < 0 || j < i {
		t.Fatalf("no terminals section:\n%s", page)
	}
	if row := page[i:j]; !strings.Contains(row, "no local link") || strings.Contains(row, ">connected<") {
		t.Errorf("terminals section:\n%s", row)
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
	for _, want := range []string{"READY", "1.2.3", "29708454", "/dev/ttyACM0", "0483:5740", "terminal 48515 reconnecting", "result", "merchantapisandbox",
		"Events dropped", `<span class="badge warn">7</span>`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	code, metrics := get(t, s.URL()+"/metrics", "diag-token-123")
	for _, want := range []string{`posbridge_checkouts{state="paid"} 3`, `posbridge_terminal_connected{link="mqtt",terminal="29708454"} 1`,
		"posbridge_gateway_online 1", `posbridge_info{version="1.2.3"} 1`, "posbridge_queue_oldest_age_seconds 0", "go_goroutines",
		`posbridge_terminal_dropped_events_total{terminal="48515"} 7`, `posbridge_terminal_dropped_events_total{terminal="29708454"} 0`} {
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

// TestRequests: the request outbox has its own section on the page, in
// status.json and in the metrics, and a request gateway that is down is
// said so there but never makes the bridge unready.
func TestRequests(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 3, 40, 0, time.UTC)
	outbox := func() *diag.RequestsHealth {
		return &diag.RequestsHealth{Pending: 3, NextDue: now.Add(20 * time.Second), Gateways: []diag.RequestGatewayHealth{
			{Name: "payout", Down: true, DownSince: time.Date(2026, 11, 20, 23, 50, 0, 0, time.UTC),
				LastError: `payout: create payee: <script>alert(1)</script> & co`},
			{Name: "hitpay", Down: true, DownSince: time.Date(2026, 11, 21, 12, 3, 10, 0, time.UTC),
				NextRetry: time.Date(2026, 11, 21, 12, 4, 0, 0, time.UTC), LastOK: now.Add(-time.Hour),
				LastError: "hitpay: create customer: dial tcp 10.0.0.9:443: connect: connection refused (retryable)"},
			{Name: "hesabe", LastOK: now.Add(-5 * time.Second)},
		}}
	}
	const token = "diag-token-123"

	t.Run("OK", func(t *testing.T) {
		f := healthy(now)
		f.requests = outbox()
		s, _, _ := start(t, f, token)
		// A request gateway down is not a readiness failure.
		if code, body := get(t, s.URL()+"/readyz", ""); code != 200 || strings.Contains(body, "FAIL") || strings.Contains(body, "hitpay") {
			t.Fatalf("readyz with hitpay down: %d %s", code, body)
		}
		code, page := get(t, s.URL()+"/", token)
		if code != 200 {
			t.Fatalf("page: %d", code)
		}
		summary := "3 waiting; hitpay DOWN since 12:03:10 (hitpay: create customer: dial tcp 10.0.0.9:443: connect: connection refused (retryable)), next try 12:04:00; " +
			"payout DOWN since 2026-11-20 23:50:00 (payout: create payee: &lt;script&gt;alert(1)&lt;/script&gt; &amp; co), next try now; hesabe OK"
		for _, want := range []string{`id="overall" class="badge ok">READY`, `id="requests-section"`, "Customers, installments and payees",
			`<p id="rq-summary">` + summary + `</p>`, `<td id="rq-pending">3</td>`, "12:04:00 (in 20s)", // next due
			`<span class="badge warn">DOWN</span> since 12:03:10`, "does not make the bridge NOT READY"} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(page, "<script>alert") {
			t.Error("a gateway error reached the page unescaped")
		}
		if i, j := strings.Index(page, "<td>hesabe</td>"), strings.Index(page, "<td>hitpay</td>"); i < 0 || j < 0 || i > j {
			t.Error("request gateways are not listed by name")
		}

		_, js := get(t, s.URL()+"/status.json", token)
		var st diag.Status
		if err := json.Unmarshal([]byte(js), &st); err != nil {
			t.Fatal(err)
		}
		if st.Requests == nil || st.Requests.Pending != 3 || len(st.Requests.Gateways) != 3 {
			t.Fatalf("status.json requests: %+v", st.Requests)
		}
		if got, want := st.Requests.Gateways[1], outbox().Gateways[1]; got.Name != "hitpay" || !got.Down || !got.NextRetry.Equal(want.NextRetry) || !got.DownSince.Equal(want.DownSince) || got.LastError != want.LastError {
			t.Errorf("status.json hitpay: %+v", got)
		}
		if !st.Ready {
			t.Error("status.json: not ready with a request gateway down")
		}
		if want := strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(summary); st.RequestsSummary != want {
			t.Errorf("status.json summary:\n got %q\nwant %q", st.RequestsSummary, want)
		}

		_, metrics := get(t, s.URL()+"/metrics", token)
		for _, want := range []string{"posbridge_requests_pending 3", `posbridge_request_gateway_up{gateway="hitpay"} 0`,
			`posbridge_request_gateway_up{gateway="payout"} 0`, `posbridge_request_gateway_up{gateway="hesabe"} 1`,
			"# TYPE posbridge_request_gateway_up gauge", "# TYPE posbridge_requests_pending gauge"} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})

	t.Run("Recovered", func(t *testing.T) {
		f := healthy(now)
		f.requests = &diag.RequestsHealth{Gateways: []diag.RequestGatewayHealth{
			{Name: "hitpay", LastOK: now, LastError: "an old error, before it recovered"},
			{Name: "hesabe"},
		}}
		s, _, _ := start(t, f, token)
		_, page := get(t, s.URL()+"/", token)
		for _, want := range []string{`<p id="rq-summary">nothing waiting; hesabe not used since start; hitpay OK</p>`,
			`<td id="rq-nextdue"><span class="muted">none</span></td>`, "an old error, before it recovered"} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		_, metrics := get(t, s.URL()+"/metrics", token)
		for _, want := range []string{"posbridge_requests_pending 0", `posbridge_request_gateway_up{gateway="hitpay"} 1`,
			`posbridge_request_gateway_up{gateway="hesabe"} 1`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q", want)
			}
		}
	})

	t.Run("ErrRead", func(t *testing.T) {
		f := healthy(now)
		f.requestsErr = errors.New("database not open")
		s, _, _ := start(t, f, token)
		if code, _ := get(t, s.URL()+"/readyz", ""); code != 200 {
			t.Fatalf("readyz: %d", code)
		}
		if _, page := get(t, s.URL()+"/", token); !strings.Contains(page, "cannot read the request outbox: database not open") {
			t.Error("page does not say the outbox cannot be read")
		}
		_, js := get(t, s.URL()+"/status.json", token)
		if !strings.Contains(js, `"requests_error": "database not open"`) {
			t.Errorf("status.json lacks the error: %s", js)
		}
		if code, metrics := get(t, s.URL()+"/metrics", token); code != 200 || strings.Contains(metrics, "posbridge_requests_pending") {
			t.Errorf("metrics: %d, pending shown although unreadable", code)
		}
	})

	t.Run("NotConfigured", func(t *testing.T) {
		s, _, _ := start(t, healthy(now), token)
		_, page := get(t, s.URL()+"/", token)
		_, js := get(t, s.URL()+"/status.json", token)
		_, metrics := get(t, s.URL()+"/metrics", token)
		if strings.Contains(page, "requests-section") || strings.Contains(js, `"requests`) || strings.Contains(metrics, "posbridge_request") {
			t.Error("the request outbox is shown although no request kind is configured")
		}
	})
}

// TestLoginCookieIsNotTheToken: opening the page with ?token= logs the
// browser in with a cookie. Cookies are kept per host, not per port, so
// the browser sends it to every other server on 127.0.0.1 it visits
// (and the diagnostics token defaults to the till API's, which takes
// payments). The cookie used to be the token itself; it is now a value
// derived from it, which only this endpoint accepts.
func TestLoginCookieIsNotTheToken(t *testing.T) {
	const token = "diag-token-0123456789abcdef"
	s, _, _ := start(t, healthy(time.Now()), token)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(s.URL() + "/?token=" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cookies) != 1 || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: %d, cookies %v, location %q", resp.StatusCode, cookies, resp.Header.Get("Location"))
	}
	if c := cookies[0]; strings.Contains(c.Value, token) || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie %+v: carries the token, or is not HttpOnly and SameSite=Strict", c)
	}
	get := func(c *http.Cookie) int {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/status.json", nil)
		req.AddCookie(c)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(cookies[0]); code != http.StatusOK {
		t.Errorf("with the login cookie: %d", code)
	}
	forged := *cookies[0]
	forged.Value = cookies[0].Value[:len(cookies[0].Value)-1] + "0"
	if forged.Value == cookies[0].Value {
		forged.Value = cookies[0].Value[:len(cookies[0].Value)-1] + "1"
	}
	if code := get(&forged); code != http.StatusUnauthorized {
		t.Errorf("with a wrong cookie: %d", code)
	}
}
