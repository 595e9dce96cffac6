package hesabesim

import (
	"context"
	"net/http"
	"time"

	"github.com/posbridge/posbridge/internal/simfault"
)

// FaultKind names a misbehaviour the simulator can inject.
type FaultKind = simfault.Kind

// The injectable faults: simfault's generic kinds and Hesabe's own. Their
// names are used on the command line (--fault KIND[:COUNT][@PATH]) and in
// the admin API.
const (
	// FaultLatency delays the answer by Fault.Latency (default 2 s).
	FaultLatency = simfault.Latency
	// Fault5xx answers HTTP Fault.Status (default 500) with Hesabe's plain
	// {"message":"Internal server error occurred"}, before applying anything.
	Fault5xx = simfault.Status5xx
	// Fault429 answers 429 with Retry-After: 1, before applying anything.
	Fault429 = simfault.Status429
	// FaultResetBeforeRead resets the connection before reading the body:
	// nothing was applied.
	FaultResetBeforeRead = simfault.ResetBeforeRead
	// FaultResetAfterRead reads the body, then resets without applying it.
	FaultResetAfterRead = simfault.ResetAfterRead
	// FaultMalformedHex applies the request and answers {"response":"<not hex>"}.
	FaultMalformedHex FaultKind = "malformed-hex"
	// FaultBadPadding applies the request and answers a ciphertext whose
	// padding is wrong.
	FaultBadPadding FaultKind = "bad-padding"
	// FaultPlainError answers a plain-JSON (unencrypted) Hesabe error,
	// {"status":false,"code":506,"message":"Invalid Request Data"}, HTTP 400.
	FaultPlainError FaultKind = "plain-error"
	// FaultApplyThenDrop applies the request, then resets the connection
	// without answering: the ambiguous case.
	FaultApplyThenDrop = simfault.ApplyThenDrop
	// FaultExpireToken expires every access token before handling the
	// request (token expiry mid-run); refresh tokens stay valid.
	FaultExpireToken FaultKind = "expire-token"
	// FaultUnauthorized answers HTTP 401 {"status":false,"message":
	// "Unauthorized"} (no Hesabe code) before applying anything, whatever
	// the token: a refused token or a front end that turns the request
	// away. The client logs in again and retries once, so it takes two
	// hits to make a call fail.
	FaultUnauthorized FaultKind = "unauthorized"
)

// FaultKinds lists every kind, for help texts.
var FaultKinds = []FaultKind{FaultLatency, Fault5xx, Fault429, FaultResetBeforeRead, FaultResetAfterRead,
	FaultMalformedHex, FaultBadPadding, FaultPlainError, FaultApplyThenDrop, FaultExpireToken, FaultUnauthorized}

// Fault is one injected misbehaviour (see simfault.Fault).
type Fault = simfault.Fault

// ParseFault reads KIND[:COUNT][@PATH], e.g. "5xx:3@smartpos-transaction",
// "latency=1500ms", "apply-then-drop%0.3" (30% of requests). For latency
// and 5xx, "=VALUE" sets the duration or the status. See simfault.Parse.
func ParseFault(s string) (Fault, error) {
	return simfault.Parse(s, FaultKinds)
}

// Inject adds a fault. Faults are checked in the order added.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, simfault.Arm(f))
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
	return simfault.List(s.faults).Faults()
}

// armedFault is an injected fault with its hits left. The fault list lives
// under s.mu beside the stats that count fired faults, so the simulator
// uses simfault's unsynchronized List rather than a Set.
type armedFault = simfault.Armed

// takeFaults returns the kinds that hit this request, consuming counts.
func (s *Server) takeFaults(path string) map[FaultKind]Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := simfault.List(s.faults)
	hit := l.Take(path, s.rand.Float64)
	s.faults = l
	for k := range hit {
		s.stats.FaultsFired[k]++
	}
	return hit
}

// reset closes the client's connection abruptly (RST) without answering.
func reset(w http.ResponseWriter) { simfault.Reset(w) }

// sleep waits d, or until the request is abandoned or the server closes.
func (s *Server) sleep(ctx context.Context, d time.Duration) {
	simfault.Sleep(ctx, d, s.closing)
}
