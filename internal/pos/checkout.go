package pos

import (
	"errors"
	"time"
)

// State is where a checkout is on its path. The path is
//
//	queued → submitting → sent → on_terminal → paid | declined | canceled | expired | failed
//
// with shortcuts: queued may go straight to canceled or expired; submitting
// back to queued (a retryable failure) or to canceled or expired (the
// submit settled and the invoice is not at the gateway); sent straight to
// paid, declined, canceled or expired (a result without a terminal ack);
// and any non-final state to failed.
//
// Final states never change, with one exception: expired → paid, for a
// checkout whose invoice reached the gateway (InvoiceID set) and that the
// gateway reports paid after the bridge had given up on it (the terminal
// never confirmed a cancel). The till must learn the truth; the engine
// logs it as an error and counts it.
type State string

// The checkout states. Their string values are part of the till API.
const (
	// StateQueued: durable, not yet sent to the gateway.
	StateQueued State = "queued"
	// StateSubmitting: a request to the gateway is (or may be) in flight.
	// Found at start-up, it means the outcome is unknown: reconcile first.
	StateSubmitting State = "submitting"
	// StateSent: the invoice exists at the gateway (id and transaction id known).
	StateSent State = "sent"
	// StateOnTerminal: the terminal acknowledged the invoice.
	StateOnTerminal State = "on_terminal"
	// StatePaid: the customer paid. Final.
	StatePaid State = "paid"
	// StateDeclined: the payment was declined. Final.
	StateDeclined State = "declined"
	// StateCanceled: canceled by the till or at the terminal. Final.
	StateCanceled State = "canceled"
	// StateExpired: not delivered (or not paid) before its deadline. Final.
	StateExpired State = "expired"
	// StateFailed: the gateway refused it permanently. Final.
	StateFailed State = "failed"
)

// States lists every state in path order.
var States = []State{StateQueued, StateSubmitting, StateSent, StateOnTerminal,
	StatePaid, StateDeclined, StateCanceled, StateExpired, StateFailed}

// Final reports whether no further transition can leave s.
func (s State) Final() bool {
	switch s {
	case StatePaid, StateDeclined, StateCanceled, StateExpired, StateFailed:
		return true
	}
	return false
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

// Customer is who pays, as the till describes them. All fields are optional
// for a card checkout; Hesabe shows the name on the terminal.
type Customer struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Outcome is how a payment ended at the terminal or the gateway.
type Outcome string

// The payment outcomes.
const (
	OutcomeApproved Outcome = "approved"
	OutcomeDeclined Outcome = "declined"
	OutcomeCanceled Outcome = "canceled"
)

// Result is the end of a checkout as far as the payment goes.
type Result struct {
	Outcome Outcome `json:"outcome,omitempty"`
	// Reference is what the terminal or gateway gave (auth code, RRN, ...).
	Reference string `json:"reference,omitempty"`
	// Reason is a human explanation, e.g. the gateway's refusal message.
	Reason string `json:"reason,omitempty"`
	// Source says who decided: "terminal", "gateway", "bridge" or "till".
	Source string    `json:"source,omitempty"`
	At     time.Time `json:"at"`
}

// Transition is one entry of a checkout's history.
type Transition struct {
	At     time.Time `json:"at"`
	From   State     `json:"from,omitempty"`
	To     State     `json:"to"`
	Reason string    `json:"reason,omitempty"`
}

// Checkout is one card payment the till asked for, from acceptance to its end.
type Checkout struct {
	// ID is the bridge's id for the checkout, given to the till.
	ID string `json:"id"`
	// IdempotencyKey is the till's key; the same key returns the same checkout.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// RequestHash fingerprints what the till sent, to tell a retry from a
	// conflicting reuse of the same idempotency key.
	RequestHash string `json:"-"`
	// TillRef is the till's own reference (receipt number, lane, ...).
	TillRef string `json:"till_ref,omitempty"`
	// TerminalID is the Hesabe terminal_id the payment goes to.
	TerminalID  string   `json:"terminal_id"`
	Amount      Money    `json:"amount"`
	Customer    Customer `json:"customer"`
	Description string   `json:"description,omitempty"`
	// InvoiceNumber is the bridge's unique reference sent as Hesabe's
	// invoice_number; it is how an unknown outcome is reconciled.
	InvoiceNumber string `json:"invoice_number"`

	State     State     `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Deadline: a checkout not delivered by then becomes expired.
	Deadline time.Time `json:"deadline"`

	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitempty"`
	LastError     string    `json:"last_error,omitempty"`

	// Gateway identifiers, once known.
	InvoiceID     int64  `json:"invoice_id,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`

	// CancelRequested: the till (or the deadline) asked to cancel a
	// checkout already at the gateway or terminal; it ends when the
	// terminal or gateway confirms, or expires after a grace period.
	CancelRequested   bool      `json:"cancel_requested,omitempty"`
	CancelRequestedAt time.Time `json:"cancel_requested_at,omitzero"`

	Result  *Result      `json:"result,omitempty"`
	History []Transition `json:"history,omitempty"`
}

// TerminalEventKind says what a terminal link reported.
type TerminalEventKind string

// The terminal event kinds.
const (
	// TerminalConnected: the terminal identified itself on its link.
	TerminalConnected TerminalEventKind = "connected"
	// TerminalDisconnected: the link went down or the terminal went silent.
	TerminalDisconnected TerminalEventKind = "disconnected"
	// TerminalAck: the terminal has the invoice on screen.
	TerminalAck TerminalEventKind = "ack"
	// TerminalResult: the payment ended at the terminal (see Outcome).
	TerminalResult TerminalEventKind = "result"
	// TerminalStatus: the terminal reported idle or busy.
	TerminalStatus TerminalEventKind = "status"
)

// ErrTerminalBusy: a terminal refused an invoice because another payment
// is on its screen. A terminal link's push error wraps it, so the engine
// offers the invoice again once the terminal is free.
var ErrTerminalBusy = errors.New("terminal busy with another payment")

// TerminalEvent is what a terminal link tells the engine. The engine matches
// it to a checkout by TransactionID (or InvoiceNumber when given).
type TerminalEvent struct {
	Kind          TerminalEventKind `json:"kind"`
	TerminalID    string            `json:"terminal_id"`
	TransactionID string            `json:"transaction_id,omitempty"`
	InvoiceNumber string            `json:"invoice_number,omitempty"`
	Outcome       Outcome           `json:"outcome,omitempty"`
	Reference     string            `json:"reference,omitempty"`
	Reason        string            `json:"reason,omitempty"`
	Busy          bool              `json:"busy,omitempty"`
	At            time.Time         `json:"at"`
}

// CheckoutRequest is what a till asks for. The engine validates it, gives
// it an id and an invoice number, and stores it before answering.
type CheckoutRequest struct {
	// IdempotencyKey: the same key with the same request returns the same
	// checkout; with a different request it is a conflict.
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	TillRef        string   `json:"till_ref,omitempty"`
	TerminalID     string   `json:"terminal_id"`
	Amount         Money    `json:"amount"`
	Customer       Customer `json:"customer"`
	Description    string   `json:"description,omitempty"`
	// Deadline is how long the checkout may take to reach the terminal and
	// be paid; 0 means the configured default.
	Deadline time.Duration `json:"-"`
}
