package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// gatewayFaults are armed one at a time before a checkout, so now and
// then a checkout's invoice meets a 5xx, a lost answer or a refusal.
var gatewayFaults = []hesabesim.Fault{
	{Kind: hesabesim.Fault5xx, Count: 1, Path: hesabe.PathPOSTransaction},
	{Kind: hesabesim.Fault5xx, Status: 503, Count: 2, Path: hesabe.PathPOSTransaction},
	{Kind: hesabesim.FaultApplyThenDrop, Count: 1, Path: hesabe.PathPOSTransaction},
	{Kind: hesabesim.FaultResetAfterRead, Count: 1, Path: hesabe.PathPOSTransaction},
	{Kind: hesabesim.FaultPlainError, Count: 1, Path: hesabe.PathPOSTransaction},
}

// till pays until ctx ends: mostly plain payments on a terminal with a
// link, some canceled by the till, some for a terminal without a link
// that expire, some meeting a gateway fault. Each checkout is followed to
// its end beside the till's next ones (a canceled or expired one can take
// the bridge's cancel grace, 2 min), at most Options.InFlight at once.
func (r *runner) till(ctx context.Context, n int) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(time.Now().UnixNano())))
	terms := r.stack.Terminals()
	for i := 0; ctx.Err() == nil; i++ {
		pause := time.Duration(300+rng.IntN(900)) * time.Millisecond
		body := api.CreateBody{Amount: fmt.Sprintf("%d.%03d", 1+rng.IntN(20), rng.IntN(1000)),
			TillRef: fmt.Sprintf("SOAK-%d-%d", n, i), DeadlineSeconds: 60}
		cancelAfter := time.Duration(-1)
		switch p := rng.IntN(100); {
		case p < 12:
			cancelAfter = time.Duration(rng.IntN(1500)) * time.Millisecond
		case p < 22:
			body.TerminalID, body.DeadlineSeconds = "T0001", 2+int64(rng.IntN(3)) // no link: expires
		case p < 32:
			r.stack.Sim.Inject(gatewayFaults[rng.IntN(len(gatewayFaults))])
		}
		if body.TerminalID == "" {
			body.TerminalID = terms[rng.IntN(len(terms))]
		}
		// A terminal with a checkout of ours still under way is skipped:
		// one that waits for the bridge's cancel grace would otherwise
		// gather the whole load behind it.
		limit := 1
		if body.TerminalID == "T0001" {
			limit = 3
		}
		if !r.claim(body.TerminalID, limit) {
			sleep(ctx, pause)
			continue
		}
		select {
		case r.followers <- struct{}{}:
		case <-ctx.Done():
			r.release(body.TerminalID)
			return
		}
		key := fmt.Sprintf("soak-%d-%d-%d", n, time.Now().UnixNano(), i)
		r.background.Go(func() {
			defer func() { <-r.followers }()
			defer r.release(body.TerminalID)
			r.pay(ctx, key, body, cancelAfter)
		})
		sleep(ctx, pause)
	}
}

// claim counts a checkout of ours on terminal id, unless limit are under
// way there already.
func (r *runner) claim(id string, limit int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.onTerminal[id] >= limit {
		return false
	}
	r.onTerminal[id]++
	return true
}

func (r *runner) release(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onTerminal[id]--
}

// pay creates one checkout, cancels it after cancelAfter (if not
// negative) and follows it to its end.
func (r *runner) pay(ctx context.Context, key string, body api.CreateBody, cancelAfter time.Duration) {
	var co pos.Checkout
	var err error
	for attempt := 0; ; attempt++ { // the same key: a retry never makes a second checkout
		co, _, err = r.client.Create(ctx, key, body)
		if err == nil || ctx.Err() != nil || attempt == 5 {
			break
		}
		sleep(ctx, time.Second)
	}
	if err != nil {
		r.tillErr(ctx, err)
		return
	}
	if cancelAfter >= 0 {
		sleep(ctx, cancelAfter)
		if _, err := r.client.Cancel(ctx, co.ID); err != nil && !conflict(err) {
			r.tillErr(ctx, err) // a conflict: it ended first
		}
	}
	// The deadline, then the bridge's cancel grace (2 min), and a margin.
	fctx, cancel := context.WithTimeout(ctx, time.Duration(body.DeadlineSeconds)*time.Second+5*time.Minute)
	defer cancel()
	final, err := r.client.Follow(fctx, co.ID, func(pos.Checkout) {})
	if err != nil {
		r.tillErr(ctx, err)
		return
	}
	r.mu.Lock()
	r.rep.Outcomes[final.State]++
	r.mu.Unlock()
}

func (r *runner) tillErr(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the soak is stopping
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.TillErrors++
	if r.rep.FirstTillErr == "" {
		r.rep.FirstTillErr = err.Error()
	}
}

// events is a till listening to the event stream that hangs up and
// comes back every few seconds.
func (r *runner) events(ctx context.Context) {
	for ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		n := r.listen(sctx)
		cancel()
		r.mu.Lock()
		r.rep.Events += n
		r.mu.Unlock()
		sleep(ctx, 500*time.Millisecond)
	}
}

// technician keeps the diagnostics endpoint busy until ctx ends: the
// status and the metrics every 2 s, and the live frame trace, opened
// for 2 s at a time.
func (r *runner) technician(ctx context.Context) {
	base := r.stack.Daemon.DiagURL()
	for ctx.Err() == nil {
		for _, path := range []string{"/status.json", "/metrics"} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
			if err != nil {
				return
			}
			req.Header.Set("Authorization", "Bearer "+r.stack.Token)
			if resp, err := r.client.HTTP.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r.stream(sctx, base+"/trace")
		cancel()
	}
}

// listen reads the event stream until ctx ends and returns how many
// checkout events it received.
func (r *runner) listen(ctx context.Context) int {
	return r.stream(ctx, r.stack.Daemon.APIURL()+"/v1/events")
}

// stream reads a Server-Sent Events stream at url until ctx ends and
// returns how many events it received.
func (r *runner) stream(ctx context.Context, url string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+r.stack.Token)
	resp, err := r.client.HTTP.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			n++
		}
	}
	return n
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// conflict reports whether err is the till API's 409: a cancel of a
// checkout that ended first.
func conflict(err error) bool {
	var ae *api.APIError
	return errors.As(err, &ae) && ae.Status == http.StatusConflict
}
