package diag

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"time"

	"github.com/posbridge/posbridge/internal/httpserve"
	"github.com/posbridge/posbridge/internal/logging"
)

// Status is everything the page shows; /status.json serves it.
type Status struct {
	Version      string           `json:"version"`
	Started      time.Time        `json:"started"`
	Uptime       string           `json:"uptime"`
	Now          time.Time        `json:"now"`
	Ready        bool             `json:"ready"`
	Checks       []Check          `json:"checks"`
	Gateway      *GatewayHealth   `json:"gateway,omitempty"`
	Queue        *QueueHealth     `json:"queue,omitempty"`
	QueueError   string           `json:"queue_error,omitempty"`
	Terminals    []TerminalHealth `json:"terminals"`
	Ports        []PortInfo       `json:"ports"`
	PortsError   string           `json:"ports_error,omitempty"`
	RecentErrors []logging.Entry  `json:"recent_errors"`
	Trace        []Frame          `json:"trace"`

	// Requests is the request outbox (nil when not configured or not
	// readable); RequestsSummary says it in one line.
	Requests        *RequestsHealth `json:"requests,omitempty"`
	RequestsSummary string          `json:"requests_summary,omitempty"`
	RequestsError   string          `json:"requests_error,omitempty"`
}

// Snapshot gathers the status now.
func (s *Server) Snapshot(r *http.Request) Status {
	now := s.opts.Now()
	st := Status{Version: s.src.Version, Started: s.src.Started, Now: now,
		Uptime: now.Sub(s.src.Started).Round(time.Second).String(), Terminals: []TerminalHealth{},
		Ports: []PortInfo{}, RecentErrors: []logging.Entry{}, Trace: []Frame{}}
	st.Checks = s.Ready(r.Context())
	st.Ready = true
	for _, c := range st.Checks {
		st.Ready = st.Ready && c.OK
	}
	if s.src.Gateway != nil {
		g := s.src.Gateway()
		st.Gateway = &g
	}
	if s.src.Queue != nil {
		if q, err := s.src.Queue(r.Context()); err != nil {
			st.QueueError = err.Error()
		} else {
			st.Queue = &q
		}
	}
	if s.src.Terminals != nil {
		st.Terminals = append(st.Terminals, s.src.Terminals()...)
	}
	if s.src.Requests != nil {
		if h, err := s.readRequests(r.Context()); err != nil {
			st.RequestsError = err.Error()
		} else {
			st.Requests = &h
			st.RequestsSummary = requestsSummary(now, h)
		}
	}
	if s.src.Ports != nil {
		if ps, err := s.src.Ports(); err != nil {
			st.PortsError = err.Error()
		} else {
			st.Ports = append(st.Ports, ps...)
		}
	}
	if s.src.Errors != nil {
		st.RecentErrors = append(st.RecentErrors, s.src.Errors.Entries()...)
	}
	if s.src.Trace != nil {
		st.Trace = append(st.Trace, s.src.Trace.Last(100)...)
	}
	return st
}

func (s *Server) handleStatusJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.Snapshot(r))
}

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ago":         func(now, t time.Time) string { return ago(now, t) },
	"ts":          func(t time.Time) string { return t.Format("15:04:05.000") },
	"clock":       clock,
	"nextIn":      nextIn,
	"gwLastError": func(now time.Time, g GatewayHealth) string { return g.lastErrorText(now) },
}).Parse(pageHTML))

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	if err := pageTmpl.Execute(w, s.Snapshot(r)); err != nil {
		s.log.Warn("status page render failed", "err", err)
	}
}

// handleTrace streams new frames as Server-Sent Events.
func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request) {
	if s.src.Trace == nil {
		http.Error(w, "no trace", http.StatusNotFound)
		return
	}
	frames, cancel := s.src.Trace.Subscribe()
	defer cancel()
	err := httpserve.Stream(w, r, frames, func(w io.Writer, f Frame) error {
		js, _ := json.Marshal(f)
		_, err := fmt.Fprintf(w, "event: frame\ndata: %s\n\n", js)
		return err
	}, httpserve.StreamOptions{Comment: "frame trace", Stop: s.Stopping()})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
