package pos

import (
	"errors"
	"fmt"
)

// ErrorClass tells the engine what to do about a failed gateway call.
type ErrorClass int

// The gateway error classes.
const (
	// ClassUnknown is not a gateway error (or not classified); treat it as
	// ambiguous where a charge could follow.
	ClassUnknown ErrorClass = iota
	// ClassRetryable: the request was not applied (network error before the
	// body was sent, 5xx, 429). Send again after a back-off.
	ClassRetryable
	// ClassPermanent: the gateway refused the request (validation, merchant
	// misconfiguration). Sending it again gives the same answer.
	ClassPermanent
	// ClassAmbiguous: the request may have been applied (the connection broke
	// after the body was sent). Look the result up before sending again.
	ClassAmbiguous
)

func (c ErrorClass) String() string {
	switch c {
	case ClassRetryable:
		return "retryable"
	case ClassPermanent:
		return "permanent"
	case ClassAmbiguous:
		return "ambiguous"
	}
	return "unknown"
}

// Classifier is implemented by errors that know their ErrorClass.
type Classifier interface {
	ErrorClass() ErrorClass
}

// ClassOf returns the class of the first error in err's chain that knows
// its class, or ClassUnknown.
func ClassOf(err error) ErrorClass {
	var c Classifier
	if errors.As(err, &c) {
		return c.ErrorClass()
	}
	return ClassUnknown
}

// Code is a stable machine-readable error code of the till API.
type Code string

// Application error codes. Their string values are part of the till API.
const (
	EInvalid      Code = "invalid"        // a request field is wrong
	ENotFound     Code = "not_found"      // no such checkout or terminal
	EConflict     Code = "conflict"       // idempotency key reused with another request, or state forbids it
	ELimit        Code = "limit_exceeded" // an offline limit refuses the request
	EUnauthorized Code = "unauthorized"   // missing or wrong API token
	EUnavailable  Code = "unavailable"    // the bridge is shutting down or cannot store
	EInternal     Code = "internal"       // a bug or an unexpected failure; details only in the log
)

// Error is the one application error the till sees: a code, the field it is
// about (if any), and a message for a human.
type Error struct {
	Code    Code
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an application error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an application error about one request field.
func FieldErrorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an application error in err's chain, or
// EInternal for anything else.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}
