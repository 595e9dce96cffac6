// Package gwhttp is the HTTP plumbing posbridge's gateway clients share
// (hesabe, hitpay): their transport, and a request body that records
// whether any of it left the process.
//
// That record is how a client tells "never sent" (retryable) from "maybe
// applied" (ambiguous) when a call fails without an answer. A request that
// creates something carries "Expect: 100-continue": the transport sends the
// headers, waits for the server's "100 Continue" (or ExpectContinueTimeout)
// and only then reads the body. If the connection fails before that, no
// byte of the body was read, so the server cannot have acted on it.
package gwhttp

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// ExpectContinueTimeout is how long the transport waits for "100 Continue"
// before it sends the body anyway. A server slower than this to accept a
// request gets the body, and a failure after that is ambiguous.
const ExpectContinueTimeout = 2 * time.Second

// NewTransport returns the transport gateway clients use when the caller
// gives no http.Client: proxies from the environment, bounded dial and TLS
// handshake, HTTP/2 when offered, and ExpectContinueTimeout.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: ExpectContinueTimeout,
	}
}

// Body is a request body that records whether the transport read any byte
// of it.
type Body struct {
	r    *bytes.Reader
	sent atomic.Bool
}

// Read implements io.Reader, noting that bytes left.
func (b *Body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.sent.Store(true)
	}
	return n, err
}

// Sent reports whether the transport started sending the body. A nil Body
// (a request without one) never sent anything.
func (b *Body) Sent() bool { return b != nil && b.sent.Load() }

// NewRequest builds a request carrying body (nil: none) and returns the
// Body to ask Sent of after Do fails (nil when there is no body). The
// transport can never resend the body by itself (no GetBody). With
// expectContinue, the request carries "Expect: 100-continue" so that the
// body only leaves once the server asked for it; use it for every request
// that must not be applied twice.
func NewRequest(ctx context.Context, method, url string, body []byte, expectContinue bool) (*http.Request, *Body, error) {
	if body == nil {
		req, err := http.NewRequestWithContext(ctx, method, url, nil)
		return req, nil, err
	}
	b := &Body{r: bytes.NewReader(body)}
	req, err := http.NewRequestWithContext(ctx, method, url, b)
	if err != nil {
		return nil, nil, err
	}
	req.ContentLength = int64(len(body))
	req.GetBody = nil
	if expectContinue {
		req.Header.Set("Expect", "100-continue")
	}
	return req, b, nil
}

// RetryAfter reads a 429's (or 503's) Retry-After header, in seconds or as
// an HTTP date relative to now; 0 when absent or unusable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
