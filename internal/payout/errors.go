package payout

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// The provider's answer codes. The reference shows only 200 ("Request
// succeeded."); the failure codes are our assumption, HTTP-like like the
// success code, one table the client and the simulator share.
const (
	CodeOK           = 200 // success
	CodeInvalidParam = 400 // a field is missing or malformed (the answer names it)
	CodeUnauthorized = 401 // unknown merchant or wrong API key
	CodeForbidden    = 403 // the merchant may not create payees
	CodeDuplicate    = 409 // mercustomid is already a payee of this merchant
	CodeTooMany      = 429 // rate limited
	CodeInternal     = 500 // the provider failed; nothing was created
	CodeBusy         = 503 // system busy, try later; nothing was created
)

// ErrDuplicate is matched (errors.Is) by the error of a create whose
// mercustomid already exists at the provider. After an ambiguous failure
// the bridge sends the same request again and reads this as "it was
// created the first time"; Error.CustomID then names the payee when the
// provider said.
var ErrDuplicate = errors.New("payout: payee already exists (duplicate mercustomid)")

// Error is every failure of a provider call: what the provider answered
// (HTTP status, code, message, request id, the field it names) and the
// class the engine acts on. It never holds the API key, keys or request
// bodies, and digit runs that could be an identity or account number are
// cut out of the provider's message.
type Error struct {
	Op         string        // e.g. "create payee"
	HTTPStatus int           // 0 when no answer arrived
	Code       int           // the provider's code, 0 when the answer had none
	Message    string        // the provider's message, if any
	RequestID  string        // the provider's requestId, for its support
	Field      string        // the till API field the provider complained about, if known
	CustomID   string        // for a duplicate: the existing payee, if the provider said
	RetryAfter time.Duration // from a 429's Retry-After, if given
	Err        error         // the underlying cause (network, decode), if any
	class      pos.ErrorClass
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("payout: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	var parts []string
	if e.HTTPStatus != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", e.HTTPStatus))
	}
	if e.Code != 0 {
		parts = append(parts, fmt.Sprintf("code %d", e.Code))
	}
	b.WriteString(strings.Join(parts, ", "))
	for _, s := range []string{e.Message, errString(e.Err)} {
		if s == "" {
			continue
		}
		if b.Len() > len("payout: ")+len(e.Op)+2 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " [field %s]", e.Field)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	fmt.Fprintf(&b, " (%s)", e.class)
	return b.String()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDuplicate) true for a duplicate mercustomid.
func (e *Error) Is(target error) bool {
	return target == ErrDuplicate && e.Code == CodeDuplicate
}

// ErrorClass implements pos.Classifier.
func (e *Error) ErrorClass() pos.ErrorClass { return e.class }

// RetryAfterDelay is how long a 429 or busy answer asked to wait (at least
// a second), zero for other errors. The engine reads it.
func (e *Error) RetryAfterDelay() time.Duration {
	if e.HTTPStatus == http.StatusTooManyRequests || e.Code == CodeTooMany || e.Code == CodeBusy {
		return max(e.RetryAfter, time.Second)
	}
	return 0
}

// RequestError is the reason to keep on a failed request (the engine's
// Explain): the provider's code, message and the till field.
func (e *Error) RequestError() pos.RequestError {
	code := ""
	switch {
	case e.Code != 0:
		code = strconv.Itoa(e.Code)
	case e.HTTPStatus != 0:
		code = "http_" + strconv.Itoa(e.HTTPStatus)
	}
	msg := e.Message
	if msg == "" {
		msg = errString(e.Err)
	}
	return pos.RequestError{Code: code, Message: msg, Field: e.Field}
}

// classify decides the class of an answer that arrived. The call creates
// something, so a proxy's 502/504 (the request may have reached the
// provider) is ambiguous, as in the hesabe client; the bridge then resends
// and a duplicate tells it the first one was applied.
func classify(httpStatus, code int) pos.ErrorClass {
	switch {
	case code == CodeDuplicate:
		return pos.ClassPermanent
	case httpStatus == http.StatusTooManyRequests || code == CodeTooMany || code == CodeBusy:
		return pos.ClassRetryable
	case httpStatus == http.StatusBadGateway || httpStatus == http.StatusGatewayTimeout:
		return pos.ClassAmbiguous
	case httpStatus >= 500 || code == CodeInternal:
		return pos.ClassRetryable
	}
	return pos.ClassPermanent
}

// tillFields maps the provider's field names to the till API's.
var tillFields = map[string]string{
	"name_e": "name_en", "name_a": "name_ar", "mercustomid": "merchant_customer_id",
	"identity": "identity", "bankcode": "bank_code", "cardno": "card_number",
	"ibanaccount": "iban", "stcaccount": "stc_account", "address": "address",
	"swiftcode": "swift_code", "autoapproval": "auto_approval", "otpappname": "otp_app_name",
}

// TillField returns the till API name of a provider field ("" if unknown).
func TillField(providerField string) string { return tillFields[providerField] }

var wordPattern = regexp.MustCompile(`[a-z_]+`)

// fieldOf finds the field an error answer is about: its "field" member
// when it has one, else the first provider field name in its message.
func fieldOf(field, message string) string {
	if f := tillFields[strings.ToLower(field)]; f != "" {
		return f
	}
	for _, w := range wordPattern.FindAllString(strings.ToLower(message), -1) {
		if f := tillFields[w]; f != "" {
			return f
		}
	}
	return ""
}

var longDigits = regexp.MustCompile(`\+?[0-9][0-9 -]{6,}[0-9]`)

const maxMessageRunes = 300

// scrubMessage keeps a provider message safe to log and show: digit runs
// of eight or more (an identity, a card or phone number the provider might
// echo) are replaced, and the text is cut to 300 characters.
func scrubMessage(s string) string {
	s = longDigits.ReplaceAllStringFunc(s, func(m string) string {
		digits := 0
		for i := 0; i < len(m); i++ {
			if '0' <= m[i] && m[i] <= '9' {
				digits++
			}
		}
		if digits >= 8 {
			return "[redacted]"
		}
		return m
	})
	if r := []rune(s); len(r) > maxMessageRunes {
		s = string(r[:maxMessageRunes]) + "…"
	}
	return s
}

// HTTPStatusCode is the HTTP status of the answer, 0 when none arrived
// (the engine keeps a request's place in the queue while its gateway is
// unreachable).
func (e *Error) HTTPStatusCode() int { return e.HTTPStatus }
