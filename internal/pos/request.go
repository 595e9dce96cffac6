package pos

import (
	"encoding/json"
	"time"
)

// RequestKind names what a queued gateway request does. Checkouts have
// their own type (Checkout) because a terminal and a payment result follow
// their delivery; every other kind is a Request: delivered once, answered
// once.
type RequestKind string

// The request kinds. Their string values are part of the till API.
const (
	// KindCustomer creates a customer at the configured customer gateway
	// (Hesabe or HitPay).
	KindCustomer RequestKind = "customer"
	// KindInstallments creates a batch of HeStallMent (installment)
	// invoices at Hesabe.
	KindInstallments RequestKind = "installments"
	// KindPayee creates a payout payee (bank or STC Pay account) at the
	// payout provider.
	KindPayee RequestKind = "payee"
)

// RequestKinds lists every kind.
var RequestKinds = []RequestKind{KindCustomer, KindInstallments, KindPayee}

// RequestState is where a queued request is. The path is
//
//	queued → submitting → succeeded | failed | uncertain
//
// with shortcuts: queued may go straight to canceled, expired or failed;
// submitting back to queued (a retryable failure: it was not applied) or to
// expired (not applied, and too late to send again).
//
// uncertain is for a kind that must not be sent twice and has no way to
// look up whether the gateway applied it: the connection broke after the
// request was sent. The bridge stops there and says so; a person checks
// the gateway's dashboard.
type RequestState string

// The request states. Their string values are part of the till API.
const (
	// RequestQueued: durable, not yet delivered.
	RequestQueued RequestState = "queued"
	// RequestSubmitting: a call to the gateway is (or may be) in flight.
	RequestSubmitting RequestState = "submitting"
	// RequestSucceeded: the gateway accepted it; Result holds its answer. Final.
	RequestSucceeded RequestState = "succeeded"
	// RequestFailed: the gateway refused it (or it could not be sent);
	// Error says why. Final.
	RequestFailed RequestState = "failed"
	// RequestUncertain: it may or may not have been applied, and sending it
	// again could duplicate it. Final; check the gateway.
	RequestUncertain RequestState = "uncertain"
	// RequestExpired: not delivered before NotAfter. Final.
	RequestExpired RequestState = "expired"
	// RequestCanceled: canceled by the till before it was sent. Final.
	RequestCanceled RequestState = "canceled"
)

// RequestStates lists every state in path order.
var RequestStates = []RequestState{RequestQueued, RequestSubmitting, RequestSucceeded,
	RequestFailed, RequestUncertain, RequestExpired, RequestCanceled}

// Final reports whether no further transition can leave s.
func (s RequestState) Final() bool {
	return s != RequestQueued && s != RequestSubmitting && s.Valid()
}

// Valid reports whether s is one of the known states.
func (s RequestState) Valid() bool {
	for _, v := range RequestStates {
		if v == s {
			return true
		}
	}
	return false
}

// RequestAllowed reports whether a request may move from one state to
// another.
func RequestAllowed(from, to RequestState) bool {
	switch from {
	case RequestQueued:
		return to == RequestSubmitting || to == RequestCanceled || to == RequestExpired || to == RequestFailed
	case RequestSubmitting:
		return to == RequestQueued || to == RequestSucceeded || to == RequestFailed ||
			to == RequestUncertain || to == RequestExpired
	}
	return false
}

// Request is one queued gateway request that is not a checkout: a customer,
// an installment batch, a payout payee.
type Request struct {
	ID   string      `json:"id"`
	Kind RequestKind `json:"kind"`
	// Gateway is where it goes ("hesabe", "hitpay", "payout"), fixed at
	// acceptance from the merchant's configuration.
	Gateway        string `json:"gateway"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// RequestHash fingerprints what the till asked for, to tell a retry of
	// the same request from another request reusing its key.
	RequestHash string `json:"-"`
	TillRef     string `json:"till_ref,omitempty"`
	// Payload is the gateway request exactly as it will be sent (sensitive
	// fields already sealed). Not part of the till API.
	Payload json.RawMessage `json:"-"`
	State   RequestState    `json:"state"`
	// Attempts counts calls to the gateway.
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	// NotAfter: not delivered by then, the request expires (zero: never).
	NotAfter time.Time `json:"not_after,omitzero"`
	// Result is the gateway's answer once it succeeded, in the shape of
	// its kind (see the till API).
	Result json.RawMessage `json:"result,omitempty"`
	// Error is why it failed, expired or is uncertain.
	Error      *RequestError       `json:"error,omitempty"`
	CreatedAt  time.Time           `json:"created_at"`
	UpdatedAt  time.Time           `json:"updated_at"`
	FinishedAt time.Time           `json:"finished_at,omitzero"`
	History    []RequestTransition `json:"history,omitempty"`
}

// RequestError is the reason a request did not succeed.
type RequestError struct {
	// Code is the gateway's code when it gave one, otherwise a bridge code
	// (e.g. "expired", "ambiguous").
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
	// Field is the till API field the gateway complained about, if known.
	Field string `json:"field,omitempty"`
}

// RequestTransition is one entry of a request's history.
type RequestTransition struct {
	At     time.Time    `json:"at"`
	From   RequestState `json:"from,omitempty"`
	To     RequestState `json:"to"`
	Reason string       `json:"reason,omitempty"`
}
