package httpserve

import (
	"net/http"
	"strings"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header. The scheme is matched without regard to case (RFC 7235 makes
// it a case-insensitive token: "bearer" and "BEARER" are the same); the
// token is returned as sent, for the caller to compare in constant time.
func BearerToken(r *http.Request) (string, bool) {
	const scheme = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	return h[len(scheme):], true
}
