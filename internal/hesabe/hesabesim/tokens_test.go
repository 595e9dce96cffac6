package hesabesim

import (
	"testing"
	"time"
)

// TestTokensForgottenWhenExpired: a simulator running for days keeps only
// the access tokens still valid and a bounded number of refresh tokens.
// It kept every token it ever issued: each login and refresh grew it.
func TestTokensForgottenWhenExpired(t *testing.T) {
	opts := DefaultOptions()
	opts.TokenLifetime = time.Nanosecond // every token has expired by the next issue
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var m *merchantState
	for _, ms := range s.merchants {
		m = ms
	}
	const logins = 5000
	s.mu.Lock()
	for range logins {
		s.issue(m)
	}
	access, refresh := len(s.tokens), len(s.refreshes)
	s.mu.Unlock()
	if access > 10 || refresh > 1024 {
		t.Fatalf("after %d logins the simulator holds %d access tokens (all expired but the last) and %d refresh tokens; want at most 10 and 1024",
			logins, access, refresh)
	}
}
