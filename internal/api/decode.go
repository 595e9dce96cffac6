package api

import (
	"encoding/json"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/pos"
)

// Limits on the create request's fields.
const (
	maxIdempotencyKey = 128
	maxTillRef        = 64
	maxTerminalID     = 32
	maxDescription    = 255
	maxCustomerName   = 100
	maxEmail          = 254
	maxPhoneDigits    = 19
	maxDeadline       = 24 * time.Hour
)

// createBody is the JSON a till sends to POST /v1/checkouts.
type createBody struct {
	TerminalID      *string         `json:"terminal_id"`
	Amount          json.RawMessage `json:"amount"`
	TillRef         string          `json:"till_ref"`
	Description     string          `json:"description"`
	Customer        *customerBody   `json:"customer"`
	DeadlineSeconds *int64          `json:"deadline_seconds"`
}

type customerBody struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// DecodeCreate turns a create request's body and Idempotency-Key header
// into a CheckoutRequest, or a *pos.Error naming the field that is wrong.
func DecodeCreate(body []byte, idempotencyKey string) (pos.CheckoutRequest, error) {
	var req pos.CheckoutRequest
	var keys []string
	if idempotencyKey != "" {
		keys = []string{idempotencyKey}
	}
	if err := checkKey(keys, "payment attempt"); err != nil {
		return req, err
	}
	req.IdempotencyKey = idempotencyKey
	var in createBody
	if err := pos.DecodeJSON(body, &in); err != nil {
		return req, err
	}
	if in.TerminalID == nil || strings.TrimSpace(*in.TerminalID) == "" {
		return req, pos.FieldErrorf(pos.EInvalid, "terminal_id", "is required")
	}
	if err := checkText("terminal_id", *in.TerminalID, maxTerminalID); err != nil {
		return req, err
	}
	req.TerminalID = *in.TerminalID
	amount, err := pos.DecodeMoney("amount", in.Amount, false)
	if err != nil {
		return req, err
	}
	req.Amount = amount
	if err := checkText("till_ref", in.TillRef, maxTillRef); err != nil {
		return req, err
	}
	req.TillRef = in.TillRef
	if err := checkText("description", in.Description, maxDescription); err != nil {
		return req, err
	}
	req.Description = in.Description
	if in.Customer != nil {
		c := *in.Customer
		if err := checkText("customer.name", c.Name, maxCustomerName); err != nil {
			return req, err
		}
		if c.Email != "" {
			if len(c.Email) > maxEmail {
				return req, pos.FieldErrorf(pos.EInvalid, "customer.email", "is longer than %d characters", maxEmail)
			}
			if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
				return req, pos.FieldErrorf(pos.EInvalid, "customer.email", "is not an email address")
			}
		}
		if c.Phone != "" {
			// ^\+?[0-9]{1,19}$, as documented: a lone "+" is no number.
			digits := strings.TrimPrefix(c.Phone, "+")
			if len(digits) < 1 || len(digits) > maxPhoneDigits || strings.TrimLeft(digits, "0123456789") != "" {
				return req, pos.FieldErrorf(pos.EInvalid, "customer.phone", "must be 1 to %d digits (0-9) with an optional leading +, e.g. \"+96512345678\"", maxPhoneDigits)
			}
		}
		req.Customer = pos.Customer{Name: c.Name, Email: c.Email, Phone: c.Phone}
	}
	if in.DeadlineSeconds != nil {
		d := *in.DeadlineSeconds
		// Compared in seconds: d*time.Second can wrap around int64 to a
		// small positive duration (2^55+60 becomes 60 s).
		if d < 1 || d > int64(maxDeadline/time.Second) {
			return req, pos.FieldErrorf(pos.EInvalid, "deadline_seconds", "must be from 1 to %d", int(maxDeadline.Seconds()))
		}
		req.Deadline = time.Duration(d) * time.Second
	}
	return req, nil
}

// checkKey checks the Idempotency-Key header's values (one is required)
// of a create of what ("payment attempt", "customer", ...).
func checkKey(values []string, what string) error {
	if len(values) > 1 {
		return pos.FieldErrorf(pos.EInvalid, "Idempotency-Key", "header is given more than once; send one key")
	}
	k := ""
	if len(values) == 1 {
		k = values[0]
	}
	if k == "" {
		return pos.FieldErrorf(pos.EInvalid, "Idempotency-Key", "header is required: a unique key per %s, reused when the till retries it", what)
	}
	if len(k) > maxIdempotencyKey {
		return pos.FieldErrorf(pos.EInvalid, "Idempotency-Key", "is longer than %d characters", maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return pos.FieldErrorf(pos.EInvalid, "Idempotency-Key", "must be printable ASCII without spaces")
		}
	}
	return nil
}

func checkText(field, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return pos.FieldErrorf(pos.EInvalid, field, "is longer than %d characters", max)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return pos.FieldErrorf(pos.EInvalid, field, "contains control characters")
		}
	}
	return nil
}
