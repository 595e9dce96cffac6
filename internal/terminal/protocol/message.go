package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// Version is the protocol's major version, sent as "v" in every message. A
// receiver refuses a message with another major version (error code
// "unsupported_version"). Additions that old receivers may ignore (new
// optional fields) do not change it.
const Version = 1

// MaxMessageSize is the largest encoded message either side may send, in
// bytes. It fits in one serial frame.
const MaxMessageSize = 8192

// Kind says what a message is.
type Kind string

// The message kinds. Their string values are the wire format.
const (
	// KindIdentify (bridge → terminal): "say who you are"; the terminal
	// answers with a hello. Sent when a link (re)opens.
	KindIdentify Kind = "identify"
	// KindHello (terminal → bridge): the terminal's identity. Sent on
	// start, on reconnect and in answer to identify. Reliable.
	KindHello Kind = "hello"
	// KindInvoice (bridge → terminal): show this invoice and take the
	// payment. Reliable.
	KindInvoice Kind = "invoice"
	// KindCancel (bridge → terminal): withdraw an invoice. Reliable.
	KindCancel Kind = "cancel"
	// KindResult (terminal → bridge): how a payment ended. Reliable.
	KindResult Kind = "result"
	// KindStatus (terminal → bridge): idle or busy, sent on every change.
	KindStatus Kind = "status"
	// KindPing asks the other side for a pong (either direction).
	KindPing Kind = "ping"
	// KindPong answers a ping; Ref is the ping's ID.
	KindPong Kind = "pong"
	// KindAck acknowledges a reliable message; Ref is its ID.
	KindAck Kind = "ack"
	// KindError refuses a message; Ref is its ID (if it had a readable one).
	// For a reliable message it counts as the acknowledgement.
	KindError Kind = "error"
)

// Kinds lists every kind the protocol defines.
var Kinds = []Kind{KindIdentify, KindHello, KindInvoice, KindCancel, KindResult,
	KindStatus, KindPing, KindPong, KindAck, KindError}

// Reliable reports whether a message of kind k must be acknowledged (by an
// ack or an error with Ref set to its ID) and is resent until it is.
func (k Kind) Reliable() bool {
	switch k {
	case KindHello, KindInvoice, KindCancel, KindResult:
		return true
	}
	return false
}

// Refusable reports whether a message of kind k that cannot be taken is
// answered with an error. Answers (ack, error, pong) never are: two sides
// refusing each other's refusals (a terminal in another terminal's port)
// would send errors back and forth for ever.
func (k Kind) Refusable() bool {
	return k != KindAck && k != KindError && k != KindPong
}

// Valid reports whether k is a kind this version defines.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// Message is one protocol message. Exactly the body field matching Kind is
// set (none for identify, ping, pong and ack).
type Message struct {
	V    int    `json:"v"`
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	// TerminalID is the Hesabe terminal_id the message is from or for.
	TerminalID string `json:"terminal_id"`
	// Ref is the ID of the message this one answers (ack, error, pong).
	Ref  string    `json:"ref,omitempty"`
	Time time.Time `json:"ts,omitzero"`

	Hello   *Hello   `json:"hello,omitempty"`
	Invoice *Invoice `json:"invoice,omitempty"`
	Cancel  *Cancel  `json:"cancel,omitempty"`
	Result  *Result  `json:"result,omitempty"`
	Status  *Status  `json:"status,omitempty"`
	Error   *Error   `json:"error,omitempty"`
}

// UnmarshalJSON reads a message. "ts" is informational: one that is not
// an RFC 3339 time (a local time without a zone, Unix seconds) counts as
// absent instead of getting the message refused, which for a result would
// end its resends (an error answers a reliable message) and lose the
// payment. Every other field is read as declared.
func (m *Message) UnmarshalJSON(b []byte) error {
	type plain Message
	var v struct {
		plain
		Time json.RawMessage `json:"ts"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Message(v.plain)
	m.Time = time.Time{}
	if len(v.Time) > 0 {
		var ts time.Time
		if json.Unmarshal(v.Time, &ts) == nil {
			m.Time = ts
		}
	}
	return nil
}

// Hello is a terminal's identity.
type Hello struct {
	Model        string `json:"model"`
	SerialNumber string `json:"serial_number"`
	AppVersion   string `json:"app_version"`
	// Protocol lists the major versions the terminal speaks; optional.
	Protocol []int `json:"protocol,omitempty"`
}

// Invoice is a payment request shown on the terminal.
type Invoice struct {
	TransactionID string `json:"transaction_id"`
	InvoiceNumber string `json:"invoice_number,omitempty"`
	// Amount in KWD as a string with 3 decimals, "0.100".
	Amount       pos.Money `json:"amount"`
	Description  string    `json:"description,omitempty"`
	CustomerName string    `json:"customer_name,omitempty"`
	// Deadline after which the terminal should stop offering the invoice
	// (and report canceled with reason "timeout"); optional.
	Deadline time.Time `json:"deadline,omitzero"`
}

// Cancel withdraws an invoice.
type Cancel struct {
	TransactionID string `json:"transaction_id"`
	Reason        string `json:"reason,omitempty"`
}

// Result is how a payment ended at the terminal.
type Result struct {
	TransactionID string      `json:"transaction_id"`
	InvoiceNumber string      `json:"invoice_number,omitempty"`
	Outcome       pos.Outcome `json:"outcome"`
	// Reference is whatever the terminal gives: auth code, RRN, ...
	Reference string    `json:"reference,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Amount    pos.Money `json:"amount,omitempty"`
}

// UnmarshalJSON reads a result. An "amount" of null counts as absent, as
// null does for every other optional field (pos.Money itself refuses
// null): a terminal whose JSON library writes absent fields as null must
// not have its payment refused, which would end the result's resends.
func (r *Result) UnmarshalJSON(b []byte) error {
	type plain Result
	var v struct {
		plain
		Amount json.RawMessage `json:"amount"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Result(v.plain)
	if len(v.Amount) == 0 || string(v.Amount) == "null" {
		return nil
	}
	return json.Unmarshal(v.Amount, &r.Amount)
}

// Status is whether the terminal can take an invoice.
type Status struct {
	State         State  `json:"state"`
	TransactionID string `json:"transaction_id,omitempty"`
}

// State is a terminal's status state.
type State string

// The terminal states.
const (
	StateIdle State = "idle"
	StateBusy State = "busy"
)

// Error is why a message was refused.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message,omitempty"`
}

// ErrorCode is a stable machine-readable reason in an error message.
type ErrorCode string

// The error codes. A receiver may send codes it does not know about; treat
// an unknown code like "internal".
const (
	ErrCodeBadMessage         ErrorCode = "bad_message"         // not decodable or invalid
	ErrCodeUnsupportedVersion ErrorCode = "unsupported_version" // "v" is not a version the receiver speaks
	ErrCodeUnsupportedKind    ErrorCode = "unsupported_kind"    // a kind the receiver does not know
	ErrCodeBusy               ErrorCode = "busy"                // the terminal is taking another payment
	ErrCodeUnknownTransaction ErrorCode = "unknown_transaction" // cancel for an invoice the terminal does not have
	ErrCodeWrongTerminal      ErrorCode = "wrong_terminal"      // terminal_id is not this terminal's
	ErrCodeAlreadyCompleted   ErrorCode = "already_completed"   // cancel after the payment ended
	ErrCodeInternal           ErrorCode = "internal"
)

// Errors returned by Decode and Validate, wrapped with details.
var (
	ErrSyntax             = errors.New("message is not valid JSON")
	ErrTooLarge           = errors.New("message is too large")
	ErrUnsupportedVersion = errors.New("unsupported protocol version")
	ErrUnsupportedKind    = errors.New("unsupported message kind")
	ErrInvalid            = errors.New("invalid message")
)

// Decode parses and validates one message. Unknown fields are ignored so
// newer senders can add optional fields. The error wraps one of ErrSyntax,
// ErrTooLarge, ErrUnsupportedVersion, ErrUnsupportedKind or ErrInvalid; the
// returned Message holds whatever was readable (ID, Kind) even on error, so
// the receiver can refuse it with a matching Ref.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessageSize {
		return m, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		// Try to recover the envelope so the refusal can carry a Ref.
		var env struct {
			ID         string `json:"id"`
			Kind       Kind   `json:"kind"`
			TerminalID string `json:"terminal_id"`
		}
		if json.Unmarshal(b, &env) == nil {
			m = Message{ID: env.ID, Kind: env.Kind, TerminalID: env.TerminalID}
			return m, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		return Message{}, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if dec.More() {
		return m, fmt.Errorf("%w: trailing data after the message", ErrSyntax)
	}
	return m, m.Validate()
}

// Encode validates m and returns its JSON form.
func Encode(m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s message: %w", m.Kind, err)
	}
	if len(b) > MaxMessageSize {
		return nil, fmt.Errorf("encode %s message: %w: %d bytes", m.Kind, ErrTooLarge, len(b))
	}
	return b, nil
}

// Field limits. Generous for a human reading a terminal screen, small
// enough that every message fits one frame.
const (
	maxIDLen    = 64
	maxTextLen  = 512
	maxShortLen = 128
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks the envelope and the body the kind requires.
func (m Message) Validate() error {
	if m.V != Version {
		return fmt.Errorf("%w: v=%d, this side speaks %d", ErrUnsupportedVersion, m.V, Version)
	}
	if !m.Kind.Valid() {
		return fmt.Errorf("%w: %q", ErrUnsupportedKind, truncate(string(m.Kind)))
	}
	if err := checkID("id", m.ID, true); err != nil {
		return err
	}
	if err := checkID("terminal_id", m.TerminalID, true); err != nil {
		return err
	}
	if err := checkID("ref", m.Ref, false); err != nil {
		return err
	}
	bodies := 0
	for _, set := range []bool{m.Hello != nil, m.Invoice != nil, m.Cancel != nil,
		m.Result != nil, m.Status != nil, m.Error != nil} {
		if set {
			bodies++
		}
	}
	need := func(ok bool, field string) error {
		if !ok || bodies != 1 {
			return invalid("%s message needs exactly the %q body", m.Kind, field)
		}
		return nil
	}
	switch m.Kind {
	case KindIdentify, KindPing:
		if bodies != 0 {
			return invalid("%s message takes no body", m.Kind)
		}
	case KindPong, KindAck:
		if bodies != 0 {
			return invalid("%s message takes no body", m.Kind)
		}
		if m.Ref == "" {
			return invalid("%s message needs ref", m.Kind)
		}
	case KindHello:
		if err := need(m.Hello != nil, "hello"); err != nil {
			return err
		}
		return m.Hello.validate()
	case KindInvoice:
		if err := need(m.Invoice != nil, "invoice"); err != nil {
			return err
		}
		return m.Invoice.validate()
	case KindCancel:
		if err := need(m.Cancel != nil, "cancel"); err != nil {
			return err
		}
		return checkID("cancel.transaction_id", m.Cancel.TransactionID, true)
	case KindResult:
		if err := need(m.Result != nil, "result"); err != nil {
			return err
		}
		return m.Result.validate()
	case KindStatus:
		if err := need(m.Status != nil, "status"); err != nil {
			return err
		}
		if m.Status.State != StateIdle && m.Status.State != StateBusy {
			return invalid("status.state %q is not idle or busy", truncate(string(m.Status.State)))
		}
		return checkID("status.transaction_id", m.Status.TransactionID, false)
	case KindError:
		if err := need(m.Error != nil, "error"); err != nil {
			return err
		}
		if m.Error.Code == "" {
			return invalid("error.code is empty")
		}
		if len(m.Error.Code) > maxShortLen || len(m.Error.Message) > maxTextLen {
			return invalid("error fields too long")
		}
	}
	return nil
}

func (h *Hello) validate() error {
	for _, f := range []struct{ name, v string }{
		{"hello.model", h.Model}, {"hello.serial_number", h.SerialNumber}, {"hello.app_version", h.AppVersion},
	} {
		if len(f.v) > maxShortLen {
			return invalid("%s is longer than %d bytes", f.name, maxShortLen)
		}
	}
	if h.Model == "" {
		return invalid("hello.model is empty")
	}
	return nil
}

func (in *Invoice) validate() error {
	if err := checkID("invoice.transaction_id", in.TransactionID, true); err != nil {
		return err
	}
	if err := checkID("invoice.invoice_number", in.InvoiceNumber, false); err != nil {
		return err
	}
	if in.Amount <= 0 {
		return invalid("invoice.amount must be positive, got %s", in.Amount)
	}
	if len(in.Description) > maxTextLen || len(in.CustomerName) > maxShortLen {
		return invalid("invoice.description or customer_name too long")
	}
	return nil
}

func (r *Result) validate() error {
	if err := checkID("result.transaction_id", r.TransactionID, true); err != nil {
		return err
	}
	if err := checkID("result.invoice_number", r.InvoiceNumber, false); err != nil {
		return err
	}
	switch r.Outcome {
	case pos.OutcomeApproved, pos.OutcomeDeclined, pos.OutcomeCanceled:
	default:
		return invalid("result.outcome %q is not approved, declined or canceled", truncate(string(r.Outcome)))
	}
	if len(r.Reference) > maxShortLen || len(r.Reason) > maxTextLen {
		return invalid("result.reference or reason too long")
	}
	if r.Amount < 0 {
		return invalid("result.amount is negative")
	}
	return nil
}

// checkID accepts 1–64 printable ASCII characters without spaces, quotes
// or slashes (IDs become MQTT topic levels and log fields).
func checkID(field, v string, required bool) error {
	if v == "" {
		if required {
			return invalid("%s is empty", field)
		}
		return nil
	}
	if len(v) > maxIDLen {
		return invalid("%s is longer than %d bytes", field, maxIDLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '+' || c == '#' || c == '"' || c == '\\' {
			return invalid("%s has a forbidden character at byte %d", field, i)
		}
	}
	return nil
}

// ValidID reports whether s may be used as a message or terminal id.
func ValidID(s string) bool { return checkID("id", s, true) == nil }

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
