package soak

import (
	"strings"
	"testing"
)

// samples makes n samples whose gateway connections and own goroutines
// and descriptors follow the given functions of the sample's index.
func samples(n int, conns, ownG, ownF func(i int) int) []Sample {
	out := make([]Sample, n)
	for i := range out {
		c := conns(i)
		out[i] = Sample{GatewayConns: c, Goroutines: ownG(i) + goroutinesPerGatewayConn*c, FDs: ownF(i) + fdsPerGatewayConn*c}
	}
	return out
}

func flat(v int) func(int) int { return func(int) int { return v } }

// TestCheckJudgesOwnGrowth: gateway connections that follow the engine's
// polls (within their bound) are not a leak, goroutines or descriptors
// of the rest that climb are, and one sample taken while the broker was
// down does not move the verdict.
func TestCheckJudgesOwnGrowth(t *testing.T) {
	o := Options{}.withDefaults()
	base := Sample{Goroutines: 100, FDs: 40}
	cases := []struct {
		name string
		s    []Sample
		want string // "" for no leak, else a word of the error
	}{
		{"flat", samples(30, flat(2), flat(100), flat(40)), ""},
		{"pool grows within its bound", samples(30, func(i int) int { return 1 + i/4 }, flat(100), flat(40)), ""},
		{"goroutines climb", samples(30, flat(2), func(i int) int { return 100 + 2*i }, flat(40)), "goroutines grew"},
		{"descriptors climb", samples(30, flat(2), flat(100), func(i int) int { return 40 + i }), "open files grew"},
		{"gateway connections climb", samples(30, func(i int) int { return 2 * i }, flat(100), flat(40)), "gateway connections grew"},
		{"a dip while the broker was down", func() []Sample {
			s := samples(9, flat(2), flat(140), flat(60))
			s[1].Goroutines -= 90 // only the first third has one: its mean would be 30 lower
			return s
		}(), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Report{Options: o, Baseline: base, Samples: c.s}
			r.Settled = c.s[len(c.s)-1]
			r.Settled.Goroutines, r.Settled.FDs, r.Settled.GatewayConns = 105, 42, 1 // came back
			err := r.Check()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("leak reported: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error about %q", err, c.want)
			}
		})
	}
	// Settled far above the baseline is a leak even with flat samples.
	r := Report{Options: o, Baseline: base, Samples: samples(30, flat(2), flat(100), flat(40)),
		Settled: Sample{Goroutines: 100 + o.GoroutineSlack + 1, FDs: 40}}
	if err := r.Check(); err == nil || !strings.Contains(err.Error(), "did not come back") {
		t.Fatalf("settled %d goroutines against %d: got %v", r.Settled.Goroutines, base.Goroutines, err)
	}
}
