package diag

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/posbridge/posbridge/internal/pos"
)

// Metrics is posbridge's Prometheus registry: gauges read from the sources
// at scrape time, plus the gateway latency histogram and error counters fed
// by ObserveGateway.
type Metrics struct {
	reg        *prometheus.Registry
	gwDuration *prometheus.HistogramVec
	gwErrors   *prometheus.CounterVec
	frameErrs  *prometheus.CounterVec
	server     *Server
}

// NewMetrics builds the registry (with Go and process collectors).
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.gwDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "posbridge_gateway_request_duration_seconds", Help: "Hesabe call latency by operation and outcome.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20},
	}, []string{"op", "outcome"})
	m.gwErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "posbridge_gateway_errors_total", Help: "Failed Hesabe calls by operation and class (retryable, permanent, ambiguous).",
	}, []string{"op", "class"})
	m.frameErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "posbridge_trace_frame_notes_total", Help: "Terminal frames traced with a note (crc error, resend, ...), by terminal and note.",
	}, []string{"terminal", "note"})
	m.reg.MustRegister(m.gwDuration, m.gwErrors, m.frameErrs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &sourceCollector{m: m})
	return m
}

// ObserveGateway records one Hesabe call (hesabe.Config.OnCall).
func (m *Metrics) ObserveGateway(op string, elapsed time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		m.gwErrors.WithLabelValues(op, pos.ClassOf(err).String()).Inc()
	}
	m.gwDuration.WithLabelValues(op, outcome).Observe(elapsed.Seconds())
}

// ObserveFrame counts traced frames that carry a note.
func (m *Metrics) ObserveFrame(f Frame) {
	if f.Note != "" {
		m.frameErrs.WithLabelValues(f.Terminal, f.Note).Inc()
	}
}

// Registry exposes the registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) attach(s *Server) { m.server = s }

func (s *Server) metricsHandler() http.Handler {
	if s.metrics == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}

var (
	descInfo        = prometheus.NewDesc("posbridge_info", "Build information.", []string{"version"}, nil)
	descUptime      = prometheus.NewDesc("posbridge_uptime_seconds", "Seconds since start.", nil, nil)
	descCheckouts   = prometheus.NewDesc("posbridge_checkouts", "Checkouts in the store by state.", []string{"state"}, nil)
	descQueueDepth  = prometheus.NewDesc("posbridge_queue_depth", "Checkouts accepted but not yet sent to the gateway.", nil, nil)
	descQueueAmount = prometheus.NewDesc("posbridge_queue_amount_fils", "Total amount of queued checkouts, in fils.", nil, nil)
	descQueueOldest = prometheus.NewDesc("posbridge_queue_oldest_age_seconds", "Age of the oldest queued checkout (0 when none).", nil, nil)
	descGwUp        = prometheus.NewDesc("posbridge_gateway_online", "1 when the gateway is reachable.", nil, nil)
	descGwLastOK    = prometheus.NewDesc("posbridge_gateway_last_ok_timestamp_seconds", "When the gateway last answered.", nil, nil)
	descTermUp      = prometheus.NewDesc("posbridge_terminal_connected", "1 when the terminal's link is up.", []string{"terminal", "link"}, nil)
	descTermBusy    = prometheus.NewDesc("posbridge_terminal_busy", "1 when the terminal reports busy.", []string{"terminal"}, nil)
	descTermReconn  = prometheus.NewDesc("posbridge_terminal_reconnects_total", "Link reconnects since start.", []string{"terminal"}, nil)
	descTermFrames  = prometheus.NewDesc("posbridge_terminal_frame_errors_total", "Corrupt, partial or rejected frames since start.", []string{"terminal"}, nil)
	descTermDropped = prometheus.NewDesc("posbridge_terminal_dropped_events_total", "Terminal events not handed to the engine because the terminal's event queue was full (results among them are resent by the terminal).", []string{"terminal"}, nil)
	descReqPending  = prometheus.NewDesc("posbridge_requests_pending", "Customers, installment batches and payees accepted but not yet delivered (queued or being sent).", nil, nil)
	descReqGwUp     = prometheus.NewDesc("posbridge_request_gateway_up", "0 while a request gateway does not answer (its requests wait for the next try), else 1.", []string{"gateway"}, nil)
)

// sourceCollector reads the sources at scrape time.
type sourceCollector struct{ m *Metrics }

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descUptime, descCheckouts, descQueueDepth, descQueueAmount,
		descQueueOldest, descGwUp, descGwLastOK, descTermUp, descTermBusy, descTermReconn, descTermFrames, descTermDropped,
		descReqPending, descReqGwUp} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.server
	if s == nil {
		return
	}
	now := s.opts.Now()
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, s.src.Version)
	ch <- prometheus.MustNewConstMetric(descUptime, prometheus.GaugeValue, now.Sub(s.src.Started).Seconds())
	if s.src.Queue != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		q, err := s.src.Queue(ctx)
		cancel()
		if err == nil {
			for _, st := range pos.States {
				ch <- prometheus.MustNewConstMetric(descCheckouts, prometheus.GaugeValue, float64(q.ByState[st]), string(st))
			}
			ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(q.Queued))
			ch <- prometheus.MustNewConstMetric(descQueueAmount, prometheus.GaugeValue, float64(q.QueuedAmount.Fils()))
			age := 0.0
			if !q.OldestQueued.IsZero() {
				age = now.Sub(q.OldestQueued).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(descQueueOldest, prometheus.GaugeValue, age)
		}
	}
	if s.src.Gateway != nil {
		g := s.src.Gateway()
		ch <- prometheus.MustNewConstMetric(descGwUp, prometheus.GaugeValue, b2f(g.Online))
		if !g.LastOK.IsZero() {
			ch <- prometheus.MustNewConstMetric(descGwLastOK, prometheus.GaugeValue, float64(g.LastOK.UnixNano())/1e9)
		}
	}
	if s.src.Terminals != nil {
		for _, t := range s.src.Terminals() {
			ch <- prometheus.MustNewConstMetric(descTermUp, prometheus.GaugeValue, b2f(t.Connected), t.ID, t.Link)
			ch <- prometheus.MustNewConstMetric(descTermBusy, prometheus.GaugeValue, b2f(t.Busy), t.ID)
			ch <- prometheus.MustNewConstMetric(descTermReconn, prometheus.CounterValue, float64(t.Reconnects), t.ID)
			ch <- prometheus.MustNewConstMetric(descTermFrames, prometheus.CounterValue, float64(t.FrameErrors), t.ID)
			ch <- prometheus.MustNewConstMetric(descTermDropped, prometheus.CounterValue, float64(t.DroppedEvents), t.ID)
		}
	}
	if s.src.Requests != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err := s.readRequests(ctx)
		cancel()
		if err == nil {
			ch <- prometheus.MustNewConstMetric(descReqPending, prometheus.GaugeValue, float64(h.Pending))
			for _, g := range h.Gateways {
				ch <- prometheus.MustNewConstMetric(descReqGwUp, prometheus.GaugeValue, b2f(!g.Down), g.Name)
			}
		}
	}
}
