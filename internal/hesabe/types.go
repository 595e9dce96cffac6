package hesabe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/posbridge/posbridge/internal/pos"
)

// Money is an amount in fils; see pos.Money.
type Money = pos.Money

// InvoiceStatus is a Smart POS invoice's status code. Hesabe documents only
// 0 (unpaid); the rest of this table is shared by the client and the
// simulator so that it is corrected in one place.
type InvoiceStatus int

// The POS invoice statuses.
const (
	InvoicePending  InvoiceStatus = 0
	InvoicePaid     InvoiceStatus = 1
	InvoiceFailed   InvoiceStatus = 2 // declined at the terminal
	InvoiceCanceled InvoiceStatus = 3
	InvoiceExpired  InvoiceStatus = 4
)

var invoiceStatusNames = map[InvoiceStatus]string{
	InvoicePending:  "pending",
	InvoicePaid:     "paid",
	InvoiceFailed:   "failed",
	InvoiceCanceled: "canceled",
	InvoiceExpired:  "expired",
}

func (s InvoiceStatus) String() string {
	if n, ok := invoiceStatusNames[s]; ok {
		return n
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Known reports whether s is in the status table.
func (s InvoiceStatus) Known() bool { _, ok := invoiceStatusNames[s]; return ok }

// Final reports whether the payment is over at the gateway.
func (s InvoiceStatus) Final() bool { return s.Known() && s != InvoicePending }

// ParseInvoiceStatus maps a name from the table ("paid") to its status.
func ParseInvoiceStatus(name string) (InvoiceStatus, error) {
	for s, n := range invoiceStatusNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("hesabe: unknown invoice status %q", name)
}

// FlexString decodes a JSON string, number or null into a string: Hesabe
// sends the same field as 84 in one answer and "84" in the next.
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*f = FlexString(b)
	case bytes.Equal(b, []byte("true")), bytes.Equal(b, []byte("false")):
		*f = FlexString(b)
	default:
		return fmt.Errorf("hesabe: want a string or number, got %.20s", b)
	}
	return nil
}

// FlexInt decodes a JSON number, a numeric string, "" or null into an int64.
// Valid is false for null and "".
type FlexInt struct {
	Value int64
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FlexInt) UnmarshalJSON(b []byte) error {
	var s FlexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	if s == "" {
		*f = FlexInt{}
		return nil
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return fmt.Errorf("hesabe: want an integer, got %q", string(s))
	}
	*f = FlexInt{Value: v, Valid: true}
	return nil
}

// MarshalJSON writes the number, or null.
func (f FlexInt) MarshalJSON() ([]byte, error) {
	if !f.Valid {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatInt(f.Value, 10)), nil
}

// POSInvoiceRequest is what posbridge asks Hesabe to push to a terminal.
type POSInvoiceRequest struct {
	CustomerName  string
	CustomerEmail string
	CustomerPhone string
	Amount        Money
	TerminalID    string
	// InvoiceNumber is the bridge's own unique reference; it is how a lost
	// answer is reconciled.
	InvoiceNumber string
	Description   string
}

// posInvoiceWire is the exact JSON Hesabe takes, field order included:
// it reproduces the pos_invoice_request vector byte for byte.
type posInvoiceWire struct {
	MerchantCode  string      `json:"merchantCode"`
	CustomerName  string      `json:"customer_name"`
	CustomerEmail string      `json:"customer_email"`
	CustomerPhone string      `json:"customer_phone"`
	Amount        json.Number `json:"amount"`
	TerminalID    string      `json:"terminal_id"`
	InvoiceNumber string      `json:"invoice_number"`
	Description   string      `json:"description"`
	Resend        int         `json:"resend,omitempty"`
	TransactionID string      `json:"transaction_id,omitempty"`
}

// EncodePOSInvoice returns the compact JSON of a POS invoice request for a
// merchant, as it travels before encryption.
func EncodePOSInvoice(merchantCode string, r POSInvoiceRequest) ([]byte, error) {
	return marshalCompact(posInvoiceWireOf(merchantCode, r))
}

func posInvoiceWireOf(merchantCode string, r POSInvoiceRequest) posInvoiceWire {
	return posInvoiceWire{
		MerchantCode:  merchantCode,
		CustomerName:  r.CustomerName,
		CustomerEmail: r.CustomerEmail,
		CustomerPhone: r.CustomerPhone,
		Amount:        json.Number(r.Amount.NumberString()),
		TerminalID:    r.TerminalID,
		InvoiceNumber: r.InvoiceNumber,
		Description:   r.Description,
	}
}

// marshalCompact is json.Marshal without HTML escaping: Hesabe's payloads
// are compact JSON with '<', '>' and '&' as themselves.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// POSInvoice is a Smart POS invoice as Hesabe reports it.
type POSInvoice struct {
	ID            int64         `json:"id"`
	TransactionID string        `json:"transaction_id"`
	InvoiceNumber string        `json:"invoice_number"`
	Amount        Money         `json:"amount"`
	TerminalID    string        `json:"terminal_id"`
	TerminalName  string        `json:"terminal_name"`
	MerchantID    int64         `json:"merchant_id"`
	MerchantName  string        `json:"merchant_name"`
	CustomerName  string        `json:"customer_name"`
	CustomerEmail string        `json:"customer_email"`
	CustomerPhone string        `json:"customer_phone"`
	Description   string        `json:"description"`
	Status        InvoiceStatus `json:"status"`
	CreatedAt     string        `json:"created_at"`
	UpdatedAt     string        `json:"updated_at"`
}

// posInvoiceAnswer decodes an invoice tolerantly (ids and status may come
// as strings) and converts it.
type posInvoiceAnswer struct {
	ID            FlexInt    `json:"id"`
	TransactionID FlexString `json:"transaction_id"`
	InvoiceNumber FlexString `json:"invoice_number"`
	Amount        Money      `json:"amount"`
	TerminalID    FlexString `json:"terminal_id"`
	TerminalName  FlexString `json:"terminal_name"`
	MerchantID    FlexInt    `json:"merchant_id"`
	MerchantName  FlexString `json:"merchant_name"`
	CustomerName  FlexString `json:"customer_name"`
	CustomerEmail FlexString `json:"customer_email"`
	CustomerPhone FlexString `json:"customer_phone"`
	Description   FlexString `json:"description"`
	Status        FlexInt    `json:"status"`
	CreatedAt     FlexString `json:"created_at"`
	UpdatedAt     FlexString `json:"updated_at"`
}

func (a posInvoiceAnswer) invoice() POSInvoice {
	return POSInvoice{
		ID: a.ID.Value, TransactionID: string(a.TransactionID), InvoiceNumber: string(a.InvoiceNumber),
		Amount: a.Amount, TerminalID: string(a.TerminalID), TerminalName: string(a.TerminalName),
		MerchantID: a.MerchantID.Value, MerchantName: string(a.MerchantName),
		CustomerName: string(a.CustomerName), CustomerEmail: string(a.CustomerEmail),
		CustomerPhone: string(a.CustomerPhone), Description: string(a.Description),
		Status: InvoiceStatus(a.Status.Value), CreatedAt: string(a.CreatedAt), UpdatedAt: string(a.UpdatedAt),
	}
}

// Terminal is a Smart POS terminal assigned to the merchant.
type Terminal struct {
	ID           int64  `json:"id"`
	TerminalID   string `json:"TerminalID"`
	TerminalName string `json:"TerminalName"`
	TerminalType int64  `json:"TerminalType"`
	PosType      int64  `json:"PosType"`
	MerchantID   int64  `json:"MerchantId"`
	MerchantCode string `json:"MerchantCode"`
}

type terminalAnswer struct {
	ID           FlexInt    `json:"id"`
	TerminalID   FlexString `json:"TerminalID"`
	TerminalName FlexString `json:"TerminalName"`
	TerminalType FlexInt    `json:"TerminalType"`
	PosType      FlexInt    `json:"PosType"`
	MerchantID   FlexInt    `json:"MerchantId"`
	MerchantCode FlexString `json:"MerchantCode"`
}

// CustomerRequest creates a customer on the payment API (v2).
type CustomerRequest struct {
	Name         string
	Email        string
	MobileNumber string
}

// customerWire reproduces the customer_create_request vector's field order.
type customerWire struct {
	MerchantCode string `json:"merchantCode"`
	Name         string `json:"name"`
	Email        string `json:"email"`
	MobileNumber string `json:"mobile_number"`
}

// Customer is a customer as Hesabe created it.
type Customer struct {
	ID           int64  `json:"id"`
	CustomerID   string `json:"customer_id"`
	Name         string `json:"name"`
	MobileNumber string `json:"mobile_number"`
	Email        string `json:"email"`
}

type customerAnswer struct {
	ID           FlexInt    `json:"id"`
	CustomerID   FlexString `json:"customer_id"`
	Name         FlexString `json:"name"`
	MobileNumber FlexString `json:"mobile_number"`
	Email        FlexString `json:"email"`
}

// EMIItem is one line of an installment invoice.
type EMIItem struct {
	Title    string `json:"itemTitle"`
	Rate     Money  `json:"rate"`
	Quantity int    `json:"quantity"`
	Amount   Money  `json:"amount"`
}

// EMIInvoice is one HeStallMent (installment) invoice of a batch.
type EMIInvoice struct {
	Amount          Money     `json:"amount"`
	ExpiresAt       string    `json:"expiresAt"` // YYYY-MM-DD
	ReferenceNumber string    `json:"referenceNumber"`
	MerchantCode    string    `json:"merchantCode"` // filled by the client
	InvoiceType     string    `json:"invoiceType"`
	InvoiceSubType  string    `json:"invoiceSubType"`
	Language        string    `json:"language"`
	Description     string    `json:"description"`
	CustomerName    string    `json:"customerName"`
	MobileNumber    string    `json:"mobileNumber"`
	CountryCode     string    `json:"countryCode"`
	CustomerEmail   string    `json:"customerEmail,omitempty"`
	AllocatePayType string    `json:"allocatePayType"`
	Items           []EMIItem `json:"itemsList,omitempty"`
}

// EMIResult is Hesabe's answer for one installment invoice. Fields that
// Hesabe sends as a number in one element and a string in the next are
// decoded tolerantly.
type EMIResult struct {
	ID              FlexInt      `json:"id"`
	InvoiceType     FlexString   `json:"invoice_type"`
	InvoiceSubType  FlexString   `json:"invoice_sub_type"`
	Token           FlexString   `json:"token"`
	AccessKey       FlexString   `json:"access_key"`
	ReferenceNumber FlexString   `json:"reference_number"`
	Amount          Money        `json:"amount"`
	PaymentMethod   []FlexString `json:"payment_method"`
	InvoiceStatus   FlexInt      `json:"invoice_status"`
	URL             FlexString   `json:"url"`
	ExpiresAt       FlexString   `json:"expires_at"`
	MerchantID      FlexString   `json:"merchant_id"`
	Customer        struct {
		Name        FlexString `json:"name"`
		Email       FlexString `json:"email"`
		PhoneNumber FlexString `json:"phone_number"`
	} `json:"customer"`
}
