package hesabe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// Hesabe's documented error codes (hesabe-api.md §1).
const (
	CodeInvalidResponse      = 0
	CodeInvalidInput         = 422
	CodeInvalidToken         = 500
	CodeInvalidMerchant      = 501
	CodeInvalidService       = 503
	CodeInvalidLogin         = 504
	CodeInvalidPaymentToken  = 505
	CodeInvalidRequestData   = 506
	CodeTransactionError     = 507
	codeNone                 = -1 // no code in the answer
	maxErrorMessageRuneCount = 300
)

// ErrNotFound is wrapped by errors from lookups that found nothing.
var ErrNotFound = errors.New("hesabe: not found")

// Message is Hesabe's message: a plain string or an {"en":..,"ar":..} object.
type Message struct {
	En string `json:"en,omitempty"`
	Ar string `json:"ar,omitempty"`
}

// UnmarshalJSON accepts a string, an {en,ar} object, or null.
func (m *Message) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = Message{En: s}
		return nil
	}
	type plain Message
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		// A message of an unexpected shape must not hide the real error.
		*m = Message{En: truncate(string(b))}
		return nil
	}
	*m = Message(p)
	return nil
}

// String returns the English text, or the Arabic one when that is all.
func (m Message) String() string {
	if m.En != "" {
		return m.En
	}
	return m.Ar
}

// Error is every failure of a Hesabe call: what was attempted, what the
// gateway answered (HTTP status, Hesabe code, message) and the class the
// engine acts on. It never holds keys, tokens or request bodies.
type Error struct {
	Op         string         // e.g. "create pos invoice"
	HTTPStatus int            // 0 when no answer arrived
	Code       int            // Hesabe's code, -1 when the answer had none
	Message    Message        // Hesabe's message, if any
	Class      pos.ErrorClass // what to do about it
	RetryAfter time.Duration  // from a 429's Retry-After, if given
	Err        error          // the underlying cause (network, decode), if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("hesabe: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	}
	if e.Code >= 0 {
		if e.HTTPStatus != 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "code %d", e.Code)
	}
	if msg := e.Message.String(); msg != "" {
		if e.HTTPStatus != 0 || e.Code >= 0 {
			b.WriteString(": ")
		}
		b.WriteString(msg)
	}
	if e.Err != nil {
		if e.HTTPStatus != 0 || e.Code >= 0 || e.Message.String() != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	fmt.Fprintf(&b, " (%s)", e.Class)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorClass implements pos.Classifier.
func (e *Error) ErrorClass() pos.ErrorClass { return e.Class }

// authFailure reports whether the gateway refused the bearer token: the
// client logs in again and retries once.
func (e *Error) authFailure() bool {
	return e.HTTPStatus == http.StatusUnauthorized || e.Code == CodeInvalidToken
}

// classifyAnswer decides the class of an answer that arrived (a status and
// maybe a Hesabe code). idempotent says whether the call can be repeated
// without effect (lookups, login).
func classifyAnswer(httpStatus, code int, idempotent bool) pos.ErrorClass {
	switch {
	case httpStatus == http.StatusTooManyRequests:
		return pos.ClassRetryable
	case httpStatus == http.StatusBadGateway || httpStatus == http.StatusGatewayTimeout:
		// A proxy answered: the request may have reached Hesabe.
		if idempotent {
			return pos.ClassRetryable
		}
		return pos.ClassAmbiguous
	case httpStatus >= 500:
		return pos.ClassRetryable
	}
	switch code {
	case CodeInvalidToken:
		return pos.ClassRetryable // after a new login
	case CodeInvalidInput, CodeInvalidRequestData, CodeInvalidMerchant, CodeInvalidService,
		CodeInvalidLogin, CodeInvalidPaymentToken, CodeTransactionError, CodeInvalidResponse:
		return pos.ClassPermanent
	}
	return pos.ClassPermanent
}

func truncate(s string) string {
	r := []rune(s)
	if len(r) > maxErrorMessageRuneCount {
		return string(r[:maxErrorMessageRuneCount]) + "…"
	}
	return s
}

// Short names for the classes, used throughout the client.
const (
	retryable = pos.ClassRetryable
	permanent = pos.ClassPermanent
	ambiguous = pos.ClassAmbiguous
)
