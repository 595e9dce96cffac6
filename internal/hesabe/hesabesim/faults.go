package hesabesim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind names a misbehaviour the simulator can inject.
type FaultKind string

// The injectable faults. Their names are used on the command line
// (--fault KIND[:COUNT][@PATH]) and in the admin API.
const (
	// FaultLatency delays the answer by Fault.Latency (default 2 s).
	FaultLatency FaultKind = "latency"
	// Fault5xx answers HTTP Fault.Status (default 500) with Hesabe's plain
	// {"message":"Internal server error occurred"}, before applying anything.
	Fault5xx FaultKind = "5xx"
	// Fault429 answers 429 with Retry-After: 1, before applying anything.
	Fault429 FaultKind = "429"
	// FaultResetBeforeRead resets the connection before reading the body:
	// nothing was applied.
	FaultResetBeforeRead FaultKind = "reset-before-read"
	// FaultResetAfterRead reads the body, then resets without applying it.
	FaultResetAfterRead FaultKind = "reset-after-read"
	// FaultMalformedHex applies the request and answers {"response":"<not hex>"}.
	FaultMalformedHex FaultKind = "malformed-hex"
	// FaultBadPadding applies the request and answers a ciphertext whose
	// padding is wrong.
	FaultBadPadding FaultKind = "bad-padding"
	// FaultPlainError answers a plain-JSON (unencrypted) Hesabe error,
	// {"status":false,"code":506,"message":"Invalid Request Data"}, HTTP 400.
	FaultPlainError FaultKind = "plain-error"
	// FaultApplyThenDrop applies the request, then closes the connection
	// without answering: the ambiguous case.
	FaultApplyThenDrop FaultKind = "apply-then-drop"
	// FaultExpireToken expires every access token before handling the
	// request (token expiry mid-run); refresh tokens stay valid.
	FaultExpireToken FaultKind = "expire-token"
)

// FaultKinds lists every kind, for help texts.
var FaultKinds = []FaultKind{FaultLatency, Fault5xx, Fault429, FaultResetBeforeRead, FaultResetAfterRead,
	FaultMalformedHex, FaultBadPadding, FaultPlainError, FaultApplyThenDrop, FaultExpireToken}

// Fault is one injected misbehaviour.
type Fault struct {
	Kind FaultKind `json:"kind"`
	// Path limits the fault to request paths containing it ("" = all).
	Path string `json:"path,omitempty"`
	// Count is how many requests it hits; 0 means until cleared.
	Count int `json:"count,omitempty"`
	// Latency for FaultLatency.
	Latency time.Duration `json:"latency,omitempty"`
	// Status for Fault5xx.
	Status int `json:"status,omitempty"`
	// Probability in (0,1] hits only that share of matching requests;
	// 0 means every one.
	Probability float64 `json:"probability,omitempty"`
}

// ParseFault reads KIND[:COUNT][@PATH], e.g. "5xx:3@smartpos-transaction",
// "latency=1500ms", "apply-then-drop%0.3" (30% of requests). For latency
// and 5xx, "=VALUE" sets the duration or the status.
func ParseFault(s string) (Fault, error) {
	var f Fault
	rest, path, _ := strings.Cut(s, "@")
	f.Path = path
	rest, prob, hasProb := strings.Cut(rest, "%")
	if hasProb {
		p, err := strconv.ParseFloat(prob, 64)
		if err != nil || p <= 0 || p > 1 {
			return f, fmt.Errorf("fault %q: probability must be in (0,1]", s)
		}
		f.Probability = p
	}
	rest, count, hasCount := strings.Cut(rest, ":")
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil || n < 0 {
			return f, fmt.Errorf("fault %q: count must be a non-negative integer", s)
		}
		f.Count = n
	}
	kind, val, hasVal := strings.Cut(rest, "=")
	f.Kind = FaultKind(kind)
	known := false
	for _, k := range FaultKinds {
		known = known || k == f.Kind
	}
	if !known {
		return f, fmt.Errorf("fault %q: unknown kind %q (want one of %v)", s, kind, FaultKinds)
	}
	if hasVal {
		switch f.Kind {
		case FaultLatency:
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return f, fmt.Errorf("fault %q: bad latency %q", s, val)
			}
			f.Latency = d
		case Fault5xx:
			n, err := strconv.Atoi(val)
			if err != nil || n < 500 || n > 599 {
				return f, fmt.Errorf("fault %q: status must be 500..599", s)
			}
			f.Status = n
		default:
			return f, fmt.Errorf("fault %q: %s takes no value", s, f.Kind)
		}
	}
	return f, nil
}

// Inject adds a fault. Faults are checked in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Kind == FaultLatency && f.Latency == 0 {
		f.Latency = 2 * time.Second
	}
	if f.Kind == Fault5xx && f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	s.faults = append(s.faults, &armedFault{Fault: f, left: f.Count})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults returns the armed faults and how many hits each has left.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, f := range s.faults {
		c := f.Fault
		c.Count = f.left
		out = append(out, c)
	}
	return out
}

type armedFault struct {
	Fault
	left int // hits left when Count > 0
}

// takeFaults returns the kinds that hit this request, consuming counts.
func (s *Server) takeFaults(path string) map[FaultKind]Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hit map[FaultKind]Fault
	kept := s.faults[:0]
	for _, f := range s.faults {
		match := (f.Path == "" || strings.Contains(path, f.Path)) &&
			(f.Probability == 0 || s.rand.Float64() < f.Probability)
		if match {
			if hit == nil {
				hit = make(map[FaultKind]Fault)
			}
			if _, dup := hit[f.Kind]; !dup {
				hit[f.Kind] = f.Fault
				s.stats.FaultsFired[f.Kind]++
				if f.Count > 0 {
					f.left--
				}
			}
		}
		if f.Count == 0 || f.left > 0 {
			kept = append(kept, f)
		}
	}
	s.faults = kept
	return hit
}

// reset closes the client's connection abruptly (RST) without answering.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// sleep waits d, or until the request is abandoned or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-s.closing:
	}
}
