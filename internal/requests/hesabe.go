package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
)

// HesabeGateway is the name of Hesabe's request kinds.
const HesabeGateway = engine.GatewayHesabe

// HesabeCustomers creates customers at Hesabe (POST /v2/customer).
//
// A customer whose creation may have reached Hesabe is sent again: a
// duplicate customer record is harmless, and Hesabe offers no look-up.
type HesabeCustomers struct {
	Client *hesabe.Client
}

var _ engine.RequestHandler = HesabeCustomers{}

// Gateway implements engine.RequestHandler.
func (HesabeCustomers) Gateway() string { return HesabeGateway }

// ResendAmbiguous implements engine.RequestHandler.
func (HesabeCustomers) ResendAmbiguous() bool { return true }

// Prepare implements engine.RequestHandler.
func (HesabeCustomers) Prepare(body []byte, _ time.Time) (engine.Prepared, error) {
	var in CustomerInput
	if err := decode(body, &in, func() string { return in.TillRef }); err != nil {
		return engine.Prepared{}, err
	}
	if err := unsupported(HesabeGateway, map[string]bool{"country_code": in.CountryCode != "", "remark": in.Remark != "",
		"birth_date": in.BirthDate != "", "gender": in.Gender != "", "address": in.Address != nil}); err != nil {
		return engine.Prepared{}, err
	}
	req := hesabe.CustomerRequest{Name: in.Name, Email: in.Email, MobileNumber: in.MobileNumber}
	if err := hesabe.ValidateCustomer(req); err != nil {
		return engine.Prepared{}, err
	}
	hash, err := hashOf(in)
	if err != nil {
		return engine.Prepared{}, err
	}
	return prepared(req, hash, in.TillRef)
}

// Deliver implements engine.RequestHandler.
func (h HesabeCustomers) Deliver(ctx context.Context, r pos.Request) (json.RawMessage, error) {
	var req hesabe.CustomerRequest
	if err := json.Unmarshal(r.Payload, &req); err != nil {
		return nil, storedPayloadError(r, err)
	}
	c, err := h.Client.CreateCustomer(ctx, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(CustomerResult{Gateway: HesabeGateway, ID: strconv.FormatInt(c.ID, 10), CustomerID: c.CustomerID,
		Name: c.Name, Email: c.Email, MobileNumber: c.MobileNumber})
}

// Explain implements engine.RequestHandler.
func (HesabeCustomers) Explain(err error) pos.RequestError { return explainHesabe(err) }

// InstallmentsInput is what the till sends to POST /v1/installments: one
// batch of HeStallMent invoices.
type InstallmentsInput struct {
	TillRef  string               `json:"till_ref,omitempty"`
	Invoices []InstallmentInvoice `json:"invoices"`
}

// InstallmentInvoice is one installment invoice of a batch.
type InstallmentInvoice struct {
	// Amount is a string with up to 3 decimals, like every till amount.
	Amount          json.RawMessage `json:"amount"`
	ExpiresAt       string          `json:"expires_at"` // YYYY-MM-DD
	ReferenceNumber string          `json:"reference_number"`
	// InvoiceType: "0" URL sharing, "1" SMS.
	InvoiceType string `json:"invoice_type"`
	// InvoiceSubType: "0" SMS, "1" WhatsApp, "2" Email, "3" URL.
	InvoiceSubType string            `json:"invoice_sub_type"`
	Language       string            `json:"language,omitempty"` // en (default) or ar
	Description    string            `json:"description,omitempty"`
	CustomerName   string            `json:"customer_name"`
	MobileNumber   string            `json:"mobile_number"`
	CountryCode    string            `json:"country_code,omitempty"` // default 965
	CustomerEmail  string            `json:"customer_email,omitempty"`
	PaymentTypes   []int             `json:"payment_types"`
	Items          []InstallmentItem `json:"items,omitempty"`
}

// InstallmentItem is one line of an installment invoice.
type InstallmentItem struct {
	Title    string          `json:"title"`
	Rate     json.RawMessage `json:"rate"`
	Quantity int             `json:"quantity"`
	Amount   json.RawMessage `json:"amount"`
}

// InstallmentsResult is what Hesabe made of a batch, one entry per
// invoice in the order sent.
type InstallmentsResult struct {
	Invoices []InstallmentResult `json:"invoices"`
}

// InstallmentResult is one created installment invoice.
type InstallmentResult struct {
	ReferenceNumber string    `json:"reference_number"`
	ID              int64     `json:"id,omitempty"`
	URL             string    `json:"url,omitempty"`
	Token           string    `json:"token,omitempty"`
	Amount          pos.Money `json:"amount"`
	ExpiresAt       string    `json:"expires_at,omitempty"`
	// Status is Hesabe's invoice_status (absent when Hesabe sent null).
	Status *int64 `json:"status,omitempty"`
}

// HesabeInstallments creates HeStallMent invoice batches at Hesabe (POST
// /v1/invoice/emi).
//
// A batch whose creation may have reached Hesabe is NOT sent again: each
// invoice may already have been texted or mailed to its customer, and
// Hesabe offers no look-up by reference number. Such a batch ends
// uncertain for a person to check in Hesabe's dashboard.
//
// A batch expires (is never sent) from the start of its earliest
// expires_at day in Kuwait: Hesabe refuses an expiry date that is not in
// the future.
type HesabeInstallments struct {
	Client *hesabe.Client
	// MaxBatch bounds the invoices per batch (0: hesabe.MaxEMIBatch).
	MaxBatch int
}

var _ engine.RequestHandler = HesabeInstallments{}

// Gateway implements engine.RequestHandler.
func (HesabeInstallments) Gateway() string { return HesabeGateway }

// ResendAmbiguous implements engine.RequestHandler.
func (HesabeInstallments) ResendAmbiguous() bool { return false }

// kuwait is Hesabe's time zone (no daylight saving).
var kuwait = time.FixedZone("AST", 3*3600)

// Prepare implements engine.RequestHandler.
func (h HesabeInstallments) Prepare(body []byte, now time.Time) (engine.Prepared, error) {
	var in InstallmentsInput
	if err := decode(body, &in, func() string { return in.TillRef }); err != nil {
		return engine.Prepared{}, err
	}
	invs := make([]hesabe.EMIInvoice, len(in.Invoices))
	for i, v := range in.Invoices {
		types := make([]hesabe.PaymentType, len(v.PaymentTypes))
		for j, t := range v.PaymentTypes {
			types[j] = hesabe.PaymentType(t)
		}
		field := fmt.Sprintf("invoices[%d]", i)
		amount, err := pos.DecodeMoney(field+".amount", v.Amount, false)
		if err != nil {
			return engine.Prepared{}, err
		}
		inv := hesabe.EMIInvoice{
			Amount: amount, ExpiresAt: v.ExpiresAt, ReferenceNumber: v.ReferenceNumber,
			InvoiceType: v.InvoiceType, InvoiceSubType: v.InvoiceSubType, Language: v.Language,
			Description: v.Description, CustomerName: v.CustomerName, MobileNumber: v.MobileNumber,
			CountryCode: v.CountryCode, CustomerEmail: v.CustomerEmail, AllocatePayType: hesabe.JoinPaymentTypes(types),
		}
		if inv.Language == "" {
			inv.Language = "en"
		}
		if inv.CountryCode == "" {
			inv.CountryCode = "965"
		}
		for j, it := range v.Items {
			item := fmt.Sprintf("%s.items[%d]", field, j)
			rate, err := pos.DecodeMoney(item+".rate", it.Rate, true)
			if err != nil {
				return engine.Prepared{}, err
			}
			total, err := pos.DecodeMoney(item+".amount", it.Amount, true)
			if err != nil {
				return engine.Prepared{}, err
			}
			inv.Items = append(inv.Items, hesabe.EMIItem{Title: it.Title, Rate: rate, Quantity: it.Quantity,
				Amount: total})
		}
		invs[i] = inv
	}
	max := h.MaxBatch
	if max <= 0 {
		max = hesabe.MaxEMIBatch
	}
	if err := hesabe.ValidateInstallments(invs, now, max); err != nil {
		return engine.Prepared{}, err
	}
	var notAfter time.Time
	for _, inv := range invs {
		day, err := time.ParseInLocation(time.DateOnly, inv.ExpiresAt, kuwait)
		if err != nil { // ValidateInstallments checked it; keep the error specific anyway
			return engine.Prepared{}, pos.FieldErrorf(pos.EInvalid, "invoices.expires_at", "is not a YYYY-MM-DD date")
		}
		if notAfter.IsZero() || day.Before(notAfter) {
			notAfter = day
		}
	}
	hash, err := hashOf(struct {
		TillRef  string
		Invoices []hesabe.EMIInvoice
	}{in.TillRef, invs})
	if err != nil {
		return engine.Prepared{}, err
	}
	p, err := prepared(invs, hash, in.TillRef)
	p.NotAfter = notAfter.Add(-time.Nanosecond)
	return p, err
}

// Deliver implements engine.RequestHandler.
func (h HesabeInstallments) Deliver(ctx context.Context, r pos.Request) (json.RawMessage, error) {
	var invs []hesabe.EMIInvoice
	if err := json.Unmarshal(r.Payload, &invs); err != nil {
		return nil, storedPayloadError(r, err)
	}
	got, err := h.Client.CreateInstallments(ctx, invs)
	if err != nil {
		return nil, err
	}
	out := InstallmentsResult{Invoices: make([]InstallmentResult, 0, len(got))}
	for _, g := range got {
		res := InstallmentResult{ReferenceNumber: string(g.ReferenceNumber), ID: g.ID.Value, URL: string(g.URL),
			Token: string(g.Token), Amount: g.Amount, ExpiresAt: string(g.ExpiresAt)}
		if g.InvoiceStatus.Valid {
			st := g.InvoiceStatus.Value
			res.Status = &st
		}
		out.Invoices = append(out.Invoices, res)
	}
	return json.Marshal(out)
}

// Explain implements engine.RequestHandler.
func (HesabeInstallments) Explain(err error) pos.RequestError { return explainHesabe(err) }

func explainHesabe(err error) pos.RequestError {
	var herr *hesabe.Error
	if errors.As(err, &herr) {
		msg := herr.Message.String()
		if msg == "" {
			msg = herr.Error()
		}
		code := ""
		if herr.Code >= 0 {
			code = strconv.Itoa(herr.Code)
		} else if herr.HTTPStatus > 0 {
			code = "http_" + strconv.Itoa(herr.HTTPStatus)
		}
		return pos.RequestError{Code: code, Message: msg}
	}
	return explain(err, "")
}

// storedPayloadError: a stored request that no longer decodes can never be
// sent; it fails (permanent) instead of blocking its gateway.
func storedPayloadError(r pos.Request, err error) error {
	return &permanentError{fmt.Errorf("request %s: stored payload does not decode: %w", r.ID, err)}
}

type permanentError struct{ error }

func (e *permanentError) Unwrap() error              { return e.error }
func (e *permanentError) ErrorClass() pos.ErrorClass { return pos.ClassPermanent }
