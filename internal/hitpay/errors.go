package hitpay

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

const maxMessageRunes = 300

// Error is every failure of a HitPay call: what HitPay answered, if
// anything, and the class the engine acts on. It never holds the API key
// or the request body.
type Error struct {
	// Status is the HTTP status, 0 when no answer arrived.
	Status int
	// Message is HitPay's message, e.g. "The given data was invalid.".
	Message string
	// Fields are a 422's errors by HitPay field name, e.g.
	// {"email":["The email must be a valid email address."]}.
	Fields map[string][]string
	// RetryAfter is a 429's or 503's Retry-After, if given.
	RetryAfter time.Duration
	// Err is the underlying cause (network, decode), if any.
	Err error

	class pos.ErrorClass
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hitpay: create customer: ")
	sep := ""
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		sep = ": "
	}
	if e.Message != "" {
		b.WriteString(sep + e.Message)
		sep = ": "
	}
	if len(e.Fields) > 0 {
		keys := sortedKeys(e.Fields)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(k + ": " + strings.Join(e.Fields[k], " "))
		}
		b.WriteString(")")
		sep = ": "
	}
	if e.Err != nil {
		b.WriteString(sep + e.Err.Error())
	}
	fmt.Fprintf(&b, " (%s)", e.class)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorClass implements pos.Classifier.
func (e *Error) ErrorClass() pos.ErrorClass { return e.class }

// RetryAfterDelay is how long a 429 or 503 asked the caller to wait (0:
// not said). The engine's request loop looks for this method.
func (e *Error) RetryAfterDelay() time.Duration { return e.RetryAfter }

// TillField is the till API name of the first field (in name order) a 422
// complained about, e.g. "mobile_number" for HitPay's phone_number, or ""
// when it named none.
func (e *Error) TillField() string {
	if len(e.Fields) == 0 {
		return ""
	}
	return TillField(sortedKeys(e.Fields)[0])
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// classifyStatus is the class of an answer that is not a success.
//
// 429, 408 (the server gave up waiting for the request) and 5xx were not
// applied: retryable. 502 and 504 are the exception: a proxy in front of
// HitPay answered, and HitPay may have created the customer before the
// proxy gave up, so they are ambiguous (as for Hesabe's creates). Every
// other 4xx (401, 403, 404, 422, ...) gets the same answer if sent again:
// permanent.
func classifyStatus(status int) pos.ErrorClass {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return pos.ClassRetryable
	case status == http.StatusBadGateway, status == http.StatusGatewayTimeout:
		return pos.ClassAmbiguous
	case status >= 500:
		return pos.ClassRetryable
	}
	return pos.ClassPermanent
}

func truncate(s string) string {
	r := []rune(s)
	if len(r) > maxMessageRunes {
		return string(r[:maxMessageRunes]) + "…"
	}
	return s
}

// HTTPStatusCode is the HTTP status of the answer, 0 when none arrived
// (the engine keeps a request's place in the queue while its gateway is
// unreachable).
func (e *Error) HTTPStatusCode() int { return e.Status }
