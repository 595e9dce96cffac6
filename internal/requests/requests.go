// Package requests defines the till's request kinds other than checkouts:
// customers (at Hesabe or HitPay, per the merchant's configuration),
// HeStallMent installment batches (Hesabe) and payout payees (the payout
// provider). For each it says what the till sends (JSON, checked strictly,
// every error naming its field), what is stored (the gateway request with
// sensitive fields already sealed), how it is delivered, and whether a
// request that may already have been applied may be sent again. The engine
// stores and drives them all alike (engine.RequestHandler); see
// docs/requests.md.
package requests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/pos"
)

// maxTillRef bounds the till's own reference, as for checkouts.
const maxTillRef = 64

// Address is a postal address (HitPay customers).
type Address struct {
	Street     string `json:"street,omitempty"`
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	Country    string `json:"country,omitempty"`
}

// CustomerInput is what the till sends to POST /v1/customers. Which fields
// apply depends on the customer gateway: Hesabe takes name, email and
// mobile_number (all required); HitPay takes all of them.
type CustomerInput struct {
	TillRef      string   `json:"till_ref,omitempty"`
	Name         string   `json:"name"`
	Email        string   `json:"email,omitempty"`
	MobileNumber string   `json:"mobile_number,omitempty"`
	CountryCode  string   `json:"country_code,omitempty"`
	Remark       string   `json:"remark,omitempty"`
	BirthDate    string   `json:"birth_date,omitempty"`
	Gender       string   `json:"gender,omitempty"`
	Address      *Address `json:"address,omitempty"`
}

// CustomerResult is a created customer as the till sees it, whatever the
// gateway.
type CustomerResult struct {
	Gateway string `json:"gateway"`
	// ID is the gateway's id of the customer (Hesabe's numeric id,
	// HitPay's UUID).
	ID string `json:"id"`
	// CustomerID is Hesabe's customer code (Hesabe only).
	CustomerID   string   `json:"customer_id,omitempty"`
	Name         string   `json:"name"`
	Email        string   `json:"email,omitempty"`
	MobileNumber string   `json:"mobile_number,omitempty"`
	CountryCode  string   `json:"country_code,omitempty"`
	Remark       string   `json:"remark,omitempty"`
	BirthDate    string   `json:"birth_date,omitempty"`
	Gender       string   `json:"gender,omitempty"`
	Address      *Address `json:"address,omitempty"`
	CreatedAt    string   `json:"created_at,omitempty"`
}

// decode reads a till body strictly into v and checks till_ref.
func decode(body []byte, v any, tillRef func() string) error {
	if err := pos.DecodeJSON(body, v); err != nil {
		return err
	}
	if ref := tillRef(); utf8.RuneCountInString(ref) > maxTillRef {
		return pos.FieldErrorf(pos.EInvalid, "till_ref", "is longer than %d characters", maxTillRef)
	}
	return nil
}

// hashOf fingerprints a decoded request: the same request sent with other
// spacing or key order has the same hash.
func hashOf(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("requests: fingerprint: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// prepared builds what the engine stores.
func prepared(payload any, hash, tillRef string) (engine.Prepared, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return engine.Prepared{}, fmt.Errorf("requests: encode payload: %w", err)
	}
	return engine.Prepared{Payload: b, Hash: hash, TillRef: tillRef}, nil
}

// unsupported refuses a field the configured gateway has no place for,
// rather than dropping it silently.
func unsupported(gateway string, fields map[string]bool) error {
	for _, f := range []string{"country_code", "remark", "birth_date", "gender", "address"} {
		if fields[f] {
			return pos.FieldErrorf(pos.EInvalid, f, "is not supported by this bridge's customer gateway (%s)", gateway)
		}
	}
	return nil
}

// explain is the default RequestError of a delivery error: its message,
// without the Go wrapping of the client.
func explain(err error, code string) pos.RequestError {
	var pe *pos.Error
	if errors.As(err, &pe) {
		return pos.RequestError{Code: string(pe.Code), Field: pe.Field, Message: pe.Message}
	}
	return pos.RequestError{Code: code, Message: strings.TrimSpace(err.Error())}
}
