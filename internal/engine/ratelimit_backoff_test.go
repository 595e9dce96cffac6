package engine_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// pauseLog is a log handler that reports each pause the engine logs for
// a 429 (its "for" attribute).
type pauseLog struct{ pauses chan time.Duration }

func (l pauseLog) Enabled(context.Context, slog.Level) bool { return true }
func (l pauseLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l pauseLog) WithGroup(string) slog.Handler            { return l }
func (l pauseLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "gateway rate limit: pausing every call to Hesabe" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "for" {
			select {
			case l.pauses <- a.Value.Duration():
			default: // never hold up the engine
			}
			return false
		}
		return true
	})
	return nil
}

// TestRepeated429BacksOff: Hesabe answers 429s without a Retry-After (a
// proxy in front of the simulator drops the header). The first pauses
// every call for 1 s; each further 429 in a row pauses about twice as
// long as the one before (jittered to ¾–1× of 1 s, 2 s, 4 s …), and a
// call that succeeds starts the run again at 1 s. A fixed 1 s pause let
// a gateway that keeps refusing be asked again every second.
func TestRepeated429BacksOff(t *testing.T) {
	opts := fastOptions()
	log := pauseLog{pauses: make(chan time.Duration, 16)}
	opts.Logger = slog.New(log)
	h := newHarness(t, opts, false)
	target, err := url.Parse(h.sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		r.Header.Del("Retry-After")
		return nil
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	cfg := h.sim.ClientConfig(0)
	cfg.MerchantURL, cfg.PaymentURL = front.URL+"/api", front.URL+"/api"
	polled := make(chan error, 64) // each status poll's answer
	cfg.OnCall = func(op string, _ time.Duration, err error) {
		if op == "get pos invoice" {
			select {
			case polled <- err:
			default:
			}
		}
	}
	h.client, err = hesabe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = engine.New(h.store, h.client, opts)
	// Y, sent, polled every 30 ms: its polls get the 429s.
	y := h.create(checkoutReq(termB, "y", 2000))
	yinv := h.leftSent(y)
	h.open()
	polls := fmt.Sprintf("smartpos-invoices/%d", yinv.ID)
	// successfulPoll waits for a status poll that succeeds after it is
	// called (what is queued from before is dropped).
	successfulPoll := func() {
		t.Helper()
		for len(polled) > 0 {
			<-polled
		}
		for {
			select {
			case err := <-polled:
				if err == nil {
					return
				}
			case <-time.After(20 * time.Second):
				t.Fatal("no successful status poll")
			}
		}
	}
	nextPause := func() time.Duration {
		t.Helper()
		select {
		case d := <-log.pauses:
			return d
		case <-time.After(20 * time.Second):
			t.Fatal("no pause")
			return 0
		}
	}
	successfulPoll()
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: polls, Count: 1})
	if d := nextPause(); d != time.Second {
		t.Fatalf("first 429 without Retry-After: paused %s, want 1s", d)
	}
	successfulPoll() // the run is over
	// Three in a row: each poll after a pause gets the next one.
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: polls, Count: 3})
	want := []struct{ lo, hi time.Duration }{
		{time.Second, time.Second}, // the run started again
		{1500 * time.Millisecond, 2 * time.Second},
		{3 * time.Second, 4 * time.Second},
	}
	for i, w := range want {
		if d := nextPause(); d < w.lo || d > w.hi {
			t.Fatalf("429 %d in a row after a success: paused %s, want %s–%s", i+1, d, w.lo, w.hi)
		}
	}
	if st := h.eng.Status(); st.PausedUntil.IsZero() {
		t.Error("status shows no pause")
	}
	if c, err := h.eng.Get(context.Background(), y.ID); err != nil || c.State != pos.StateSent {
		t.Fatalf("Y %s %v, want still sent", c.State, err)
	}
}
