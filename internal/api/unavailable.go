package api

import (
	"strconv"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// UnavailableError is a 503 `unavailable` for a temporary condition of
// the bridge (its disk is full): the answer carries Retry-After, so the
// till knows that it may retry (a create with the same Idempotency-Key)
// and when. Err, the cause, goes to the bridge's log only.
type UnavailableError struct {
	Message    string
	RetryAfter time.Duration
	Err        error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return string(pos.EUnavailable) + ": " + e.Message
	}
	return string(pos.EUnavailable) + ": " + e.Message + ": " + e.Err.Error()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// retryAfter is the Retry-After header value: whole seconds, at least 1.
func (e *UnavailableError) retryAfter() string {
	s := int64((e.RetryAfter + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}
