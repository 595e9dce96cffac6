package soak

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

const header = "       t  goroutines   fds  gw conns  heap MB   rss MB     db KB  active  queued  invoices  finished"

func (s Sample) line() string {
	return fmt.Sprintf("%8s  %10d  %4d  %8d  %7.1f  %7.1f  %8d  %6d  %6d  %8d  %8d",
		s.At.Round(time.Second), s.Goroutines, s.FDs, s.GatewayConns, mb(s.HeapInuse), mb(s.RSS), s.DBSize/1024, s.Active, s.Queued, s.Invoices, s.Finished)
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// Growth compares the median of the last third of the samples with the
// median of the first third, field by field: a median, so that a sample
// taken while the broker was down (every MQTT client's goroutines gone)
// does not move it.
type Growth struct {
	Goroutines, FDs    float64
	HeapInuse, RSS, DB float64 // bytes
	// OwnGoroutines and OwnFDs leave out the gateway connections'
	// share (per sample); GatewayConns is theirs.
	OwnGoroutines, OwnFDs, GatewayConns float64
	First, Last                         Sample // the medians, as samples
	FirstN, LastN, Thin                 int    // samples in each third; Thin: too few to judge
}

// Growth of the samples (zero with fewer than three).
func (r Report) Growth() Growth {
	n := len(r.Samples) / 3
	if n == 0 {
		return Growth{Thin: len(r.Samples)}
	}
	fs, ls := r.Samples[:n], r.Samples[len(r.Samples)-n:]
	first, last := median(fs), median(ls)
	ownG := func(s Sample) int { g, _ := s.own(); return g }
	ownF := func(s Sample) int { _, f := s.own(); return f }
	return Growth{
		Goroutines: float64(last.Goroutines - first.Goroutines), FDs: float64(last.FDs - first.FDs),
		OwnGoroutines: float64(medianOf(ls, ownG) - medianOf(fs, ownG)), OwnFDs: float64(medianOf(ls, ownF) - medianOf(fs, ownF)),
		GatewayConns: float64(last.GatewayConns - first.GatewayConns),
		HeapInuse:    float64(last.HeapInuse) - float64(first.HeapInuse), RSS: float64(last.RSS) - float64(first.RSS),
		DB: float64(last.DBSize - first.DBSize), First: first, Last: last, FirstN: n, LastN: n,
	}
}

// medianOf is the median of f over ss (the upper one of an even count).
func medianOf(ss []Sample, f func(Sample) int) int {
	v := make([]int, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// median is the field-by-field median of ss.
func median(ss []Sample) Sample {
	return Sample{
		At:           ss[len(ss)-1].At,
		Goroutines:   medianOf(ss, func(s Sample) int { return s.Goroutines }),
		FDs:          medianOf(ss, func(s Sample) int { return s.FDs }),
		GatewayConns: medianOf(ss, func(s Sample) int { return s.GatewayConns }),
		HeapInuse:    uint64(medianOf(ss, func(s Sample) int { return int(s.HeapInuse) })),
		RSS:          uint64(medianOf(ss, func(s Sample) int { return int(s.RSS) })),
		DBSize:       int64(medianOf(ss, func(s Sample) int { return int(s.DBSize) })),
		Active:       medianOf(ss, func(s Sample) int { return s.Active }),
		Queued:       medianOf(ss, func(s Sample) int { return s.Queued }),
	}
}

// Check reports what grew beyond the bounds: goroutines, descriptors (less
// the gateway connections' share) or gateway connections in the last
// third of the samples against the first, or once settled against the
// baseline.
func (r Report) Check() error {
	o := r.Options
	var errs []error
	g := r.Growth()
	if g.FirstN > 0 {
		if g.OwnGoroutines > float64(o.GoroutineSlack) {
			errs = append(errs, fmt.Errorf("goroutines grew by %.0f under the same load, not counting the gateway connections (in all %d in the first third, %d in the last; bound %d)",
				g.OwnGoroutines, g.First.Goroutines, g.Last.Goroutines, o.GoroutineSlack))
		}
		if g.OwnFDs > float64(o.FDSlack) {
			errs = append(errs, fmt.Errorf("open files grew by %.0f under the same load, not counting the gateway connections (in all %d in the first third, %d in the last; bound %d)",
				g.OwnFDs, g.First.FDs, g.Last.FDs, o.FDSlack))
		}
		if g.GatewayConns > float64(o.GatewayConnSlack) {
			errs = append(errs, fmt.Errorf("gateway connections grew by %.0f under the same load (%d in the first third, %d in the last; bound %d)",
				g.GatewayConns, g.First.GatewayConns, g.Last.GatewayConns, o.GatewayConnSlack))
		}
	}
	return errors.Join(append(errs, r.settledErr())...)
}

// settledErr reports what did not come back near the baseline once the
// load and churn stopped.
func (r Report) settledErr() error {
	o := r.Options
	var errs []error
	bg, bf := r.Baseline.own()
	sg, sf := r.Settled.own()
	if sg-bg > o.GoroutineSlack {
		errs = append(errs, fmt.Errorf("goroutines did not come back after the churn: %d settled, %d at the baseline, not counting the gateway connections (bound +%d)",
			sg, bg, o.GoroutineSlack))
	}
	if sf-bf > o.FDSlack {
		errs = append(errs, fmt.Errorf("open files did not come back after the churn: %d settled, %d at the baseline, not counting the gateway connections (bound +%d)",
			sf, bf, o.FDSlack))
	}
	if d := r.Settled.GatewayConns - r.Baseline.GatewayConns; d > o.GatewayConnSlack {
		errs = append(errs, fmt.Errorf("gateway connections did not come back after the churn: %d settled, %d at the baseline (bound +%d)",
			r.Settled.GatewayConns, r.Baseline.GatewayConns, o.GatewayConnSlack))
	}
	return errors.Join(errs...)
}

// Print writes the samples as a table, the growth and the verdict.
func (r Report) Print(w io.Writer) {
	o := r.Options
	fmt.Fprintf(w, "soak: %s, churn every %s, %d tills, %d MQTT terminals + 1 serial\n\n", o.Duration, o.Churn, o.Tills, o.MQTTTerminals)
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, r.Baseline.line()+"  baseline")
	for _, s := range r.Samples {
		fmt.Fprintln(w, s.line())
	}
	fmt.Fprintln(w, r.Settled.line()+"  settled")
	g := r.Growth()
	if g.FirstN > 0 {
		fmt.Fprintf(w, "\ngrowth, median of the last %d samples minus the first %d: goroutines %+.0f, fds %+.0f, gateway connections %+.0f, heap %+.1f MB, rss %+.1f MB, db %+.0f KB\n",
			g.LastN, g.FirstN, g.Goroutines, g.FDs, g.GatewayConns, g.HeapInuse/(1<<20), g.RSS/(1<<20), g.DB/1024)
		fmt.Fprintf(w, "  not counting the gateway connections (%d goroutines, %d fds each here): goroutines %+.0f, fds %+.0f\n",
			goroutinesPerGatewayConn, fdsPerGatewayConn, g.OwnGoroutines, g.OwnFDs)
	} else {
		fmt.Fprintf(w, "\ngrowth: too few samples (%d) to compare thirds\n", g.Thin)
	}
	bg, bf := r.Baseline.own()
	sg, sf := r.Settled.own()
	fmt.Fprintf(w, "settled minus baseline: goroutines %+d, fds %+d, gateway connections %+d; not counting those: goroutines %+d, fds %+d\n",
		r.Settled.Goroutines-r.Baseline.Goroutines, r.Settled.FDs-r.Baseline.FDs, r.Settled.GatewayConns-r.Baseline.GatewayConns, sg-bg, sf-bf)
	var outs []string
	for st, n := range r.Outcomes {
		outs = append(outs, fmt.Sprintf("%s %d", st, n))
	}
	slices.Sort(outs)
	fmt.Fprintf(w, "checkouts: %s; till errors %d; events %d; churn rounds %d\n",
		strings.Join(outs, ", "), r.TillErrors, r.Events, r.Churns)
	if r.FirstTillErr != "" {
		fmt.Fprintf(w, "first till error: %s\n", r.FirstTillErr)
	}
	for _, e := range r.ChurnErrors {
		fmt.Fprintf(w, "churn error: %s\n", e)
	}
	if err := r.Check(); err != nil {
		fmt.Fprintf(w, "LEAK: %v\n", err)
	} else {
		fmt.Fprintf(w, "no growth beyond the bounds (goroutines +%d, fds +%d, gateway connections +%d)\n", o.GoroutineSlack, o.FDSlack, o.GatewayConnSlack)
	}
}
