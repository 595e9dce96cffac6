// Package simfault is the fault injection the gateway simulators share
// (hesabesim, hitpaysim and the payout simulator): the generic fault kinds,
// the KIND[=VALUE][:COUNT][%PROBABILITY][@PATH] syntax of --fault and of the
// admin API, a list of armed faults that counts down as requests hit them,
// and the two ways a simulator misbehaves on the wire: Reset (an RST) and
// Drop (a close without an answer).
//
// What a kind means for a request is up to each simulator's handler, which
// checks the faults Take returns in the order it serves a request: latency
// first, then the faults that strike before the body is read (reset, 5xx,
// 429), then the ones after it. Simulators add their own kinds (Hesabe's
// malformed-hex, say) by passing a longer known list to Parse.
package simfault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind names a misbehaviour a simulator can inject.
type Kind string

// The kinds every simulator understands.
const (
	// Latency delays the answer by Fault.Latency (default 2 s).
	Latency Kind = "latency"
	// Status5xx answers HTTP Fault.Status (default 500) before applying
	// anything.
	Status5xx Kind = "5xx"
	// Status429 answers 429 (with Retry-After) before applying anything.
	Status429 Kind = "429"
	// ResetBeforeRead resets the connection before reading the body:
	// nothing was applied, and a client using "Expect: 100-continue" never
	// sent the body.
	ResetBeforeRead Kind = "reset-before-read"
	// ResetAfterRead reads the body, then resets without applying it. The
	// client cannot tell this from ApplyThenDrop.
	ResetAfterRead Kind = "reset-after-read"
	// ApplyThenDrop applies the request, then closes the connection
	// without answering: the ambiguous case.
	ApplyThenDrop Kind = "apply-then-drop"
)

// Kinds lists the generic kinds, in the order simulators check them.
var Kinds = []Kind{Latency, Status5xx, Status429, ResetBeforeRead, ResetAfterRead, ApplyThenDrop}

// Defaults for a fault's unset values.
const (
	DefaultLatency = 2 * time.Second
	DefaultStatus  = http.StatusInternalServerError
)

// Fault is one injected misbehaviour.
type Fault struct {
	Kind Kind `json:"kind"`
	// Path limits the fault to request paths containing it ("" = all).
	Path string `json:"path,omitempty"`
	// Count is how many requests it hits; 0 means until cleared.
	Count int `json:"count,omitempty"`
	// Latency for Latency.
	Latency time.Duration `json:"latency,omitempty"`
	// Status for Status5xx.
	Status int `json:"status,omitempty"`
	// Probability in (0,1] hits only that share of matching requests;
	// 0 means every one.
	Probability float64 `json:"probability,omitempty"`
}

// Parse reads KIND[=VALUE][:COUNT][%PROBABILITY][@PATH], e.g.
// "5xx=503:3@/v1/customers", "latency=1500ms", "apply-then-drop%0.3" (30%
// of requests). Only latency (a duration) and 5xx (a status, 500..599)
// take a value. known lists the kinds the simulator implements; nil means
// Kinds.
func Parse(s string, known []Kind) (Fault, error) {
	if known == nil {
		known = Kinds
	}
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
	f.Kind = Kind(kind)
	if !Known(f.Kind, known) {
		return f, fmt.Errorf("fault %q: unknown kind %q (want one of %v)", s, kind, known)
	}
	if hasVal {
		switch f.Kind {
		case Latency:
			d, err := time.ParseDuration(val)
			if err != nil || d < 0 {
				return f, fmt.Errorf("fault %q: bad latency %q", s, val)
			}
			f.Latency = d
		case Status5xx:
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

// Known reports whether k is in known.
func Known(k Kind, known []Kind) bool {
	for _, kk := range known {
		if kk == k {
			return true
		}
	}
	return false
}

// Armed is an injected fault and the hits it has left.
type Armed struct {
	Fault
	// Left is the hits left when Count > 0.
	Left int
}

// Arm returns f ready to add to a List, with the default latency and
// status filled in.
func Arm(f Fault) *Armed {
	if f.Kind == Latency && f.Latency == 0 {
		f.Latency = DefaultLatency
	}
	if f.Kind == Status5xx && f.Status == 0 {
		f.Status = DefaultStatus
	}
	return &Armed{Fault: f, Left: f.Count}
}

// List is the armed faults in the order they were added. It is not
// synchronized: it is for a simulator that keeps its fault state under its
// own lock (hesabesim counts fired faults in its stats under the same
// mutex). Set is the synchronized form the others want.
type List []*Armed

// Faults returns copies of the armed faults, Count being the hits left.
func (l List) Faults() []Fault {
	out := make([]Fault, 0, len(l))
	for _, a := range l {
		f := a.Fault
		f.Count = a.Left
		out = append(out, f)
	}
	return out
}

// Take returns the faults that hit a request for path, one per kind (the
// first added wins), consuming their counts and dropping the used-up ones.
// roll returns a number in [0,1) for the probability draws; it is only
// called for a fault with a Probability whose path matches.
func (l *List) Take(path string, roll func() float64) map[Kind]Fault {
	var hit map[Kind]Fault
	kept := (*l)[:0]
	for _, a := range *l {
		match := (a.Path == "" || strings.Contains(path, a.Path)) &&
			(a.Probability == 0 || roll() < a.Probability)
		if match {
			if hit == nil {
				hit = make(map[Kind]Fault)
			}
			if _, dup := hit[a.Kind]; !dup {
				hit[a.Kind] = a.Fault
				if a.Count > 0 {
					a.Left--
				}
			}
		}
		if a.Count == 0 || a.Left > 0 {
			kept = append(kept, a)
		}
	}
	clear((*l)[len(kept):])
	*l = kept
	return hit
}

// Set is a concurrency-safe List that also counts how often each kind
// fired. The zero value is ready to use; a Set must not be copied.
type Set struct {
	mu    sync.Mutex
	list  List
	fired map[Kind]int
}

// Inject arms f (see Arm for its defaults). Faults are checked in the
// order added.
func (s *Set) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, Arm(f))
}

// Clear removes every armed fault. The fired counts stay.
func (s *Set) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = nil
}

// Faults returns the armed faults and how many hits each has left.
func (s *Set) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.list.Faults()
}

// Take returns the faults that hit a request for path (see List.Take),
// consuming their counts.
func (s *Set) Take(path string) map[Kind]Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	hit := s.list.Take(path, rand.Float64)
	if len(hit) > 0 && s.fired == nil {
		s.fired = make(map[Kind]int)
	}
	for k := range hit {
		s.fired[k]++
	}
	return hit
}

// Fired returns how many requests each kind has hit.
func (s *Set) Fired() map[Kind]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Kind]int, len(s.fired))
	for k, n := range s.fired {
		out[k] = n
	}
	return out
}

// Reset closes the client's connection abruptly, with an RST (SO_LINGER 0),
// without answering. The handler must return right after it.
func Reset(w http.ResponseWriter) {
	conn := hijack(w)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// Drop closes the client's connection without answering: an orderly close
// (FIN) when the request was read to its end, though the kernel still sends
// an RST if unread bytes remain. The handler must return right after it.
func Drop(w http.ResponseWriter) {
	_ = hijack(w).Close()
}

// hijack takes the connection over; when it cannot, it aborts the handler,
// which makes the server close the connection anyway.
func hijack(w http.ResponseWriter) net.Conn {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return conn
}

// Sleep waits d, or until ctx is done or stop is closed (a simulator
// closing). It reports whether the whole of d passed.
func Sleep(ctx context.Context, d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
