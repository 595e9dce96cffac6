// Package diag is the field technician's endpoint, on its own loopback
// listener: /healthz (the process answers), /readyz (fails on stale data:
// the gateway has not answered recently, a configured terminal is down, or
// the queue is stuck), Prometheus /metrics, and an HTML status page with a
// live trace of terminal frames. Secrets never appear: every figure here
// comes from status snapshots that hold none.
//
// The request outbox (customers, installment batches, payees) is shown on
// the page and in the metrics but never fails /readyz: a customer gateway
// that does not answer must not make card payments look unready.
package diag

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/httpserve"
	"github.com/posbridge/posbridge/internal/logging"
	"github.com/posbridge/posbridge/internal/pos"
)

// GatewayHealth is the gateway as the bridge last saw it.
type GatewayHealth struct {
	URL    string `json:"url"`
	Online bool   `json:"online"`
	// LastOK is the last answer (refusals included), LastSuccess the last
	// call that succeeded.
	LastOK      time.Time `json:"last_ok,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the last failed call's error and LastErrorAt when it
	// failed; it is kept after a recovery (then LastSuccess is later).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Refused, when set, says which settings to check: the gateway refuses
	// posbridge's login, access code or keys, and no call succeeded since.
	// It fails /readyz although the gateway answers.
	Refused string `json:"refused,omitempty"`
}

// lastErrorText is the gateway's last error with its age, and whether
// calls have succeeded since ("3m0s ago (calls have succeeded since): …").
func (g GatewayHealth) lastErrorText(now time.Time) string {
	if g.LastError == "" {
		return ""
	}
	if g.LastErrorAt.IsZero() {
		return g.LastError
	}
	when := ago(now, g.LastErrorAt)
	if g.LastSuccess.After(g.LastErrorAt) {
		when += " (calls have succeeded since)"
	}
	return when + ": " + g.LastError
}

// QueueHealth is the checkout store's state.
type QueueHealth struct {
	ByState      map[pos.State]int `json:"by_state"`
	Queued       int               `json:"queued"`
	QueuedAmount pos.Money         `json:"queued_amount"`
	OldestQueued time.Time         `json:"oldest_queued,omitzero"`
	OldestID     string            `json:"oldest_id,omitempty"`
	DBPath       string            `json:"db_path,omitempty"`
	DBSize       int64             `json:"db_size_bytes,omitempty"`
}

// TerminalHealth is one terminal's link.
type TerminalHealth struct {
	ID          string    `json:"id"`
	Name        string    `json:"name,omitempty"`
	Model       string    `json:"model,omitempty"`
	Link        string    `json:"link"`
	Address     string    `json:"address,omitempty"` // port path or topic
	Connected   bool      `json:"connected"`
	Busy        bool      `json:"busy"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
	Reconnects  int64     `json:"reconnects"`
	FrameErrors int64     `json:"frame_errors"`
	// DroppedEvents counts the terminal's events the bridge could not
	// queue for the engine (results among them come again).
	DroppedEvents int64  `json:"dropped_events"`
	LastError     string `json:"last_error,omitempty"`
}

// PortInfo is a serial port present on the machine.
type PortInfo struct {
	Name    string `json:"name"`
	USB     bool   `json:"usb"`
	VID     string `json:"vid,omitempty"`
	PID     string `json:"pid,omitempty"`
	Serial  string `json:"serial,omitempty"`
	Product string `json:"product,omitempty"`
}

// RequestsHealth is the request outbox: customers, installment batches
// and payees waiting for their gateways, and each request gateway as the
// bridge last saw it.
type RequestsHealth struct {
	// Pending counts requests queued or being sent, all kinds.
	Pending int `json:"pending"`
	// NextDue is the earliest next attempt of a queued request (zero: none).
	NextDue time.Time `json:"next_due,omitzero"`
	// Gateways has one entry per request gateway, in any order (the
	// endpoint sorts them by name).
	Gateways []RequestGatewayHealth `json:"gateways"`
}

// RequestGatewayHealth is one request gateway ("hesabe", "hitpay",
// "payout").
type RequestGatewayHealth struct {
	Name string `json:"name"`
	// Down: its last delivery got no answer; its requests wait until
	// NextRetry, when one of them probes it.
	Down      bool      `json:"down"`
	DownSince time.Time `json:"down_since,omitzero"`
	NextRetry time.Time `json:"next_retry,omitzero"`
	// LastOK is when it last answered (zero: not since start).
	LastOK time.Time `json:"last_ok,omitzero"`
	// LastError is the last delivery error (already redacted by the
	// gateway client); it may outlive a recovery.
	LastError string `json:"last_error,omitempty"`
}

// Sources are where the endpoint reads its figures; nil ones are left out.
type Sources struct {
	Version   string
	Started   time.Time
	Gateway   func() GatewayHealth
	Queue     func(ctx context.Context) (QueueHealth, error)
	Terminals func() []TerminalHealth
	Ports     func() ([]PortInfo, error)
	Trace     *Trace
	Errors    *logging.Recent
	// Ping asks a terminal to answer over its link (for `posbridge doctor`,
	// which cannot open the links the running bridge holds).
	Ping func(ctx context.Context, terminalID string) error
	// Requests is the request outbox; nil when no request kind is
	// configured. It is shown, never part of readiness.
	Requests func(ctx context.Context) (RequestsHealth, error)
	// Accepting says why the bridge refuses every new checkout (its
	// store cannot write them), nil when it accepts them.
	Accepting func() error
	// Clock is what the bridge saw of the system clock since start.
	Clock func() ClockHealth
}

// ClockHealth counts the steps of the system clock since start (NTP
// setting a wrong clock right, someone changing it by hand): the bridge
// keeps deadlines and retries in real time across them, but a technician
// should know, since timestamps before and after do not compare.
type ClockHealth struct {
	Jumps int64 `json:"jumps"`
	// Last is the last step's size (negative: set back), LastAt the
	// clock's reading just after it.
	Last   time.Duration `json:"last_ns,omitempty"`
	LastAt time.Time     `json:"last_at,omitzero"`
}

// clockCheck is the readiness line for the clock: shown only after a
// step, and never failing (the bridge copes; the line is for the reader).
func clockCheck(c ClockHealth) (Check, bool) {
	if c.Jumps == 0 {
		return Check{}, false
	}
	dir := "forward"
	if c.Last < 0 {
		dir = "back"
	}
	d := c.Last.Abs().Round(time.Second)
	return Check{Name: "clock", OK: true, Detail: fmt.Sprintf("the system clock was set %s by %s at %s (%d step(s) since start); "+
		"deadlines and retries are kept in real time, but log times before and after it do not compare",
		dir, d, c.LastAt.Format(time.RFC3339), c.Jumps)}, true
}

// Options configures the endpoint.
type Options struct {
	// Addr to listen on; default 127.0.0.1:8471.
	Addr string
	// Token guards everything but /healthz and /readyz: send it as a
	// bearer token, or as the password of HTTP basic auth (a browser
	// prompts for it). Empty disables the check (tests, loopback demos).
	Token string
	// GatewayStale: /readyz fails when the gateway has not answered for
	// this long (default 3 min; the daemon probes it every 30 s when idle).
	GatewayStale time.Duration
	// QueueStuck: /readyz fails when, with the gateway online, the oldest
	// queued checkout is older than this (default 2 min).
	QueueStuck time.Duration
	Logger     *slog.Logger
	// Now is the clock, for tests.
	Now func() time.Time
}

// Server is the diagnostics endpoint.
type Server struct {
	*httpserve.Server
	src     Sources
	opts    Options
	log     *slog.Logger
	metrics *Metrics
}

// New returns the endpoint; call Open to listen.
func New(src Sources, m *Metrics, opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:8471"
	}
	if opts.GatewayStale <= 0 {
		opts.GatewayStale = 3 * time.Minute
	}
	if opts.QueueStuck <= 0 {
		opts.QueueStuck = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if src.Started.IsZero() {
		src.Started = opts.Now()
	}
	s := &Server{src: src, opts: opts, log: opts.Logger, metrics: m}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if m != nil {
		m.attach(s)
	}
	s.Server = httpserve.New("diagnostics endpoint", opts.Addr, s.Handler(), s.log)
	return s
}

// Handler returns the endpoint's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.auth(s.metricsHandler()))
	mux.Handle("GET /status.json", s.auth(http.HandlerFunc(s.handleStatusJSON)))
	mux.Handle("GET /trace", s.auth(http.HandlerFunc(s.handleTrace)))
	mux.Handle("POST /terminals/{id}/ping", s.auth(http.HandlerFunc(s.handlePing)))
	mux.Handle("GET /{$}", s.auth(http.HandlerFunc(s.handlePage)))
	return mux
}

// cookieName carries the login of a browser that opened /?token=… once.
const cookieName = "posbridge_diag"

// cookieValue is the login cookie's value for token: an HMAC of a fixed
// text under the token, never the token itself. Browsers keep cookies per
// host, not per port, so this one also goes to every other server on
// 127.0.0.1 the technician's browser visits; the token (by default the
// till API's, which takes payments) must not.
func cookieValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("posbridge diagnostics login cookie v1"))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) auth(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	want := []byte(s.opts.Token)
	valid := func(got string) bool { return subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	wantCookie := []byte(cookieValue(s.opts.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A link with ?token= logs a browser in: a cookie, then a redirect
		// that takes the token out of the address bar.
		if q := r.URL.Query(); q.Has("token") && r.Method == http.MethodGet {
			if !valid(q.Get("token")) {
				http.Error(w, "wrong diagnostics token", http.StatusUnauthorized)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: string(wantCookie), Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			q.Del("token")
			u := *r.URL
			u.RawQuery = q.Encode()
			http.Redirect(w, r, u.RequestURI(), http.StatusSeeOther)
			return
		}
		got, ok := httpserve.BearerToken(r)
		if !ok {
			_, got, ok = r.BasicAuth()
		}
		authorized := ok && valid(got)
		if !ok {
			if c, err := r.Cookie(cookieName); err == nil {
				authorized = subtle.ConstantTimeCompare([]byte(c.Value), wantCookie) == 1
			}
		}
		if !authorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="posbridge diagnostics (password: the diagnostics token)"`)
			http.Error(w, "diagnostics token required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// handlePing pings a terminal: 200 {"rtt_ms":N} or 502 {"error":"..."}.
func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if s.src.Ping == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, `{"error":"no terminal links"}`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.src.Ping(ctx, r.PathValue("id")); err != nil {
		w.WriteHeader(http.StatusBadGateway)
		js, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = w.Write(js)
		return
	}
	fmt.Fprintf(w, `{"rtt_ms":%.3f}`+"\n", float64(time.Since(start).Microseconds())/1000)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// Check is one readiness condition.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Ready evaluates the readiness checks.
func (s *Server) Ready(ctx context.Context) []Check {
	now := s.opts.Now()
	var checks []Check
	if s.src.Gateway != nil {
		g := s.src.Gateway()
		c := Check{Name: "gateway", OK: true, Detail: "answered " + ago(now, g.LastOK)}
		switch {
		case g.LastOK.IsZero():
			c.OK, c.Detail = false, "has not answered since start"
		case now.Sub(g.LastOK) > s.opts.GatewayStale:
			c.OK, c.Detail = false, fmt.Sprintf("no answer for %s (stale after %s)", now.Sub(g.LastOK).Round(time.Second), s.opts.GatewayStale)
		}
		if c.OK && g.Refused != "" {
			// It answers, only to refuse every call: checkouts fail at
			// once. Not offline (nothing is stored for later), not ready.
			c.OK, c.Detail = false, g.Refused+" (answered "+ago(now, g.LastOK)+")"
		}
		if c.OK && !g.Online {
			// Not stale yet, but the last call got no usable answer:
			// checkouts are being stored. Say so, or "ok" reads as
			// "all is well" while nothing reaches Hesabe.
			c.Detail += "; OFFLINE now, checkouts are stored until it answers"
		}
		if (!c.OK || !g.Online) && g.LastError != "" {
			if g.LastErrorAt.IsZero() {
				c.Detail += "; last error: " + g.LastError
			} else {
				c.Detail += "; last error " + g.lastErrorText(now)
			}
		}
		checks = append(checks, c)
	}
	if s.src.Terminals != nil {
		for _, t := range s.src.Terminals() {
			if t.Link == "none" {
				// Nothing to be up or down: never a readiness failure,
				// and not "connected" either.
				checks = append(checks, Check{Name: "terminal " + t.ID, OK: true, Detail: noLink})
				continue
			}
			c := Check{Name: "terminal " + t.ID, OK: t.Connected, Detail: t.Link + " connected, last seen " + ago(now, t.LastSeen)}
			if !t.Connected {
				c.Detail = t.Link + " down, last seen " + ago(now, t.LastSeen)
				if t.LastError != "" {
					c.Detail += "; " + t.LastError
				}
			}
			checks = append(checks, c)
		}
	}
	if s.src.Clock != nil {
		if c, ok := clockCheck(s.src.Clock()); ok {
			checks = append(checks, c)
		}
	}
	if s.src.Accepting != nil {
		c := Check{Name: "accepting checkouts", OK: true, Detail: "yes"}
		if err := s.src.Accepting(); err != nil {
			c.OK, c.Detail = false, "NO, "+err.Error() // the source says why and whether a restart is needed
		}
		checks = append(checks, c)
	}
	if s.src.Queue != nil {
		q, err := s.src.Queue(ctx)
		c := Check{Name: "queue", OK: err == nil, Detail: fmt.Sprintf("%d queued", q.Queued)}
		if err != nil {
			c.Detail = "cannot read the queue: " + err.Error()
		} else if !q.OldestQueued.IsZero() && now.Sub(q.OldestQueued) > s.opts.QueueStuck {
			online := s.src.Gateway == nil || s.src.Gateway().Online
			if online {
				// The ID is not always known (the store keeps only the
				// oldest time): never print an empty one.
				which := "oldest queued checkout"
				if q.OldestID != "" {
					which += " " + q.OldestID
				}
				c.OK = false
				c.Detail = fmt.Sprintf("stuck: %s waits %s while the gateway is online; "+
					"an earlier checkout on its terminal is probably still active (posbridge checkouts)", which, now.Sub(q.OldestQueued).Round(time.Second))
			}
		}
		checks = append(checks, c)
	}
	return checks
}

// noLink describes a terminal configured with link "none".
const noLink = "no local link (link: none): invoices reach it through Hesabe, results come from polling Hesabe"

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	checks := s.Ready(r.Context())
	status := http.StatusOK
	var b strings.Builder
	for _, c := range checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
			status = http.StatusServiceUnavailable
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Name, c.Detail)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, b.String())
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}
