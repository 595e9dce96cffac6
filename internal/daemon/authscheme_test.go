package daemon_test

import (
	"net/http"
	"testing"
)

// TestAuthSchemeCaseInsensitive: the "Bearer" of an Authorization header
// is matched without regard to case (RFC 7235: the scheme is a
// case-insensitive token), on the till API and on the diagnostics
// endpoint; "bearer <token>" was refused with 401. The token itself
// stays exact.
func TestAuthSchemeCaseInsensitive(t *testing.T) {
	s := startStack(t)
	for _, tc := range []struct {
		name, url, auth string
		want            int
	}{
		{"api Bearer", s.Daemon.APIURL() + "/v1/status", "Bearer " + s.Token, http.StatusOK},
		{"api bearer", s.Daemon.APIURL() + "/v1/status", "bearer " + s.Token, http.StatusOK},
		{"api BEARER", s.Daemon.APIURL() + "/v1/status", "BEARER " + s.Token, http.StatusOK},
		{"api token case", s.Daemon.APIURL() + "/v1/status", "Bearer " + s.Token[:len(s.Token)-1] + "X", http.StatusUnauthorized},
		{"api other scheme", s.Daemon.APIURL() + "/v1/status", "Token " + s.Token, http.StatusUnauthorized},
		{"api no space", s.Daemon.APIURL() + "/v1/status", "Bearer" + s.Token, http.StatusUnauthorized},
		{"diag bearer", s.Daemon.DiagURL() + "/status.json", "bearer " + s.Token, http.StatusOK},
		{"diag wrong", s.Daemon.DiagURL() + "/status.json", "bearer x" + s.Token, http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		req.Header.Set("Authorization", tc.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
