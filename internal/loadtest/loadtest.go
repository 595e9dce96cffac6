// Package loadtest drives the till API with many concurrent tills against
// the simulated store (internal/demo) and reports throughput and latency
// percentiles, beside direct calls to the Hesabe simulator made in the same
// run. `posbridge bench` prints its report; numbers are recorded in
// docs/performance.md, never asserted in tests.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
)

// Options configures a run.
type Options struct {
	Tills     int           // concurrent tills (default 64)
	Duration  time.Duration // of the accept phase (default 10 s)
	Direct    time.Duration // of the direct-to-simulator phase (default Duration/2)
	Terminals int           // terminals to spread checkouts over (default 64)
	DataDir   string        // "" = a temporary directory
}

// Stats summarizes one phase.
type Stats struct {
	Count         int
	Errors        int
	PerSecond     float64
	P50, P90, P99 time.Duration
	Max           time.Duration
	FirstErr      string
}

// Report is a run's result.
type Report struct {
	Options Options
	// Direct: the hesabe client creating POS invoices at the simulator.
	Direct Stats
	// Accept: tills creating checkouts through the till API (durable
	// accept, 202).
	Accept Stats
	// ToGateway: for checkouts the bridge sent during the run, the time
	// from acceptance to the invoice existing at the gateway.
	ToGateway Stats
}

func summarize(lat []time.Duration, errs int, elapsed time.Duration, firstErr string) Stats {
	slices.Sort(lat)
	s := Stats{Count: len(lat), Errors: errs, FirstErr: firstErr}
	if elapsed > 0 {
		s.PerSecond = float64(len(lat)) / elapsed.Seconds()
	}
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	s.P50, s.P90, s.P99 = pct(.50), pct(.90), pct(.99)
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	return s
}

// phase runs fn from n goroutines for d and collects latencies.
func phase(ctx context.Context, n int, d time.Duration, fn func(ctx context.Context, worker, i int) error) Stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	var firstErr atomic.Pointer[string]
	start := time.Now()
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			var mine []time.Duration
			for i := 0; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if err := fn(ctx, w, i); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						msg := err.Error()
						firstErr.CompareAndSwap(nil, &msg)
					}
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	fe := ""
	if p := firstErr.Load(); p != nil {
		fe = *p
	}
	return summarize(all, int(errs.Load()), time.Since(start), fe)
}

// Run starts the simulated store, measures, and stops it.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.Tills <= 0 {
		o.Tills = 64
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Direct <= 0 {
		o.Direct = o.Duration / 2
	}
	if o.Terminals <= 0 {
		o.Terminals = 64
	}
	rep := Report{Options: o}
	s, err := demo.Start(ctx, demo.Options{DataDir: o.DataDir, APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0",
		NoSerial: true, ExtraTerminals: o.Terminals, Log: io.Discard})
	if err != nil {
		return rep, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Close(cctx)
	}()

	// Direct: what a till calling Hesabe itself would see, same machine.
	gw, err := hesabe.New(s.Sim.ClientConfig(0))
	if err != nil {
		return rep, err
	}
	if _, err := gw.Terminals(ctx); err != nil { // log in once
		return rep, err
	}
	rep.Direct = phase(ctx, o.Tills, o.Direct, func(ctx context.Context, w, i int) error {
		_, err := gw.CreatePOSInvoice(ctx, hesabe.POSInvoiceRequest{CustomerName: "Load", Amount: 1250,
			TerminalID: fmt.Sprintf("T%04d", w%o.Terminals+1), InvoiceNumber: fmt.Sprintf("DIRECT-%d-%d", w, i)})
		return err
	})

	// Through the bridge: each till has its own keep-alive connection.
	tr := &http.Transport{MaxIdleConnsPerHost: o.Tills, MaxConnsPerHost: o.Tills}
	defer tr.CloseIdleConnections()
	c := &api.Client{URL: s.Daemon.APIURL(), Token: s.Token, HTTP: &http.Client{Transport: tr}}
	rep.Accept = phase(ctx, o.Tills, o.Duration, func(ctx context.Context, w, i int) error {
		_, _, err := c.Create(ctx, fmt.Sprintf("load-%d-%d", w, i), api.CreateBody{
			TerminalID: fmt.Sprintf("T%04d", (w*7919+i)%o.Terminals+1), Amount: "1.250"})
		return err
	})

	// Acceptance to invoice-at-gateway, for what was sent: every page of
	// the list (the sent ones are the oldest, behind everything accepted
	// after them).
	var lat []time.Duration
	cursor := ""
	for {
		list, next, err := c.Recent(ctx, 500, cursor)
		if err != nil || len(list) == 0 {
			break
		}
		for _, co := range list {
			for _, h := range co.History {
				if h.To == pos.StateSent {
					lat = append(lat, h.At.Sub(co.CreatedAt))
				}
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	rep.ToGateway = summarize(lat, 0, 0, "")
	return rep, nil
}

// Print writes the report as a table.
func (r Report) Print(w io.Writer) {
	fmt.Fprintf(w, "%d tills, %d terminals\n\n", r.Options.Tills, r.Options.Terminals)
	fmt.Fprintf(w, "%-44s %9s %10s %9s %9s %9s %9s %7s\n", "phase", "count", "per sec", "p50", "p90", "p99", "max", "errors")
	row := func(name string, s Stats) {
		fmt.Fprintf(w, "%-44s %9d %10.0f %9s %9s %9s %9s %7d\n", name, s.Count, s.PerSecond,
			round(s.P50), round(s.P90), round(s.P99), round(s.Max), s.Errors)
	}
	row("direct: create POS invoice at the simulator", r.Direct)
	row("bridge: durable accept through the till API", r.Accept)
	row("bridge: accept → invoice at the gateway", r.ToGateway)
	fmt.Fprintf(w, "\nbridge accept p99 minus direct call p99: %s\n", round(r.Accept.P99-r.Direct.P99))
	for _, s := range []Stats{r.Direct, r.Accept} {
		if s.FirstErr != "" {
			fmt.Fprintf(w, "first error: %s\n", s.FirstErr)
		}
	}
}

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
