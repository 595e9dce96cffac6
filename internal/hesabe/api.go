package hesabe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Endpoint paths under the merchant and payment API bases.
const (
	PathLogin          = "/v1/login"
	PathTokenRefresh   = "/v1/token-refresh"
	PathPOSTransaction = "/v1/merchant/smartpos-transaction"
	PathPOSTerminals   = "/v1/merchant/smartpos-terminals"
	PathPOSInvoices    = "/v1/merchant/smartpos-invoices"
	PathEMI            = "/v1/invoice/emi"
	PathCustomer       = "/v2/customer"
)

// CreatePOSInvoice creates a Smart POS invoice, which Hesabe pushes to the
// terminal. It is not idempotent at Hesabe: on an ambiguous error, look the
// invoice up with FindPOSInvoice(req.InvoiceNumber) before sending again.
func (c *Client) CreatePOSInvoice(ctx context.Context, req POSInvoiceRequest) (*POSInvoice, error) {
	if err := checkPOSRequest(req); err != nil {
		return nil, &Error{Op: "create pos invoice", Code: codeNone, Class: permanent, Err: err}
	}
	return c.posTransaction(ctx, "create pos invoice", posInvoiceWireOf(c.cfg.MerchantCode, req))
}

// ResendPOSInvoice asks Hesabe to push an existing invoice to its terminal
// again (after a terminal restart, say).
func (c *Client) ResendPOSInvoice(ctx context.Context, req POSInvoiceRequest, transactionID string) (*POSInvoice, error) {
	if transactionID == "" {
		return nil, &Error{Op: "resend pos invoice", Code: codeNone, Class: permanent, Err: errors.New("transaction id is required")}
	}
	w := posInvoiceWireOf(c.cfg.MerchantCode, req)
	w.Resend, w.TransactionID = 1, transactionID
	return c.posTransaction(ctx, "resend pos invoice", w)
}

func (c *Client) posTransaction(ctx context.Context, op string, w posInvoiceWire) (*POSInvoice, error) {
	var ans posInvoiceAnswer
	err := c.do(ctx, call{op: op, method: http.MethodPost, base: c.cfg.MerchantURL, path: PathPOSTransaction,
		payload: w, bearer: true}, &ans)
	if err != nil {
		return nil, err
	}
	inv := ans.invoice()
	if inv.ID == 0 && inv.TransactionID == "" {
		// Success without an invoice: it may exist; find it before retrying.
		return nil, &Error{Op: op, HTTPStatus: http.StatusOK, Code: codeNone, Class: ambiguous,
			Err: errors.New("answer carries no invoice id")}
	}
	return &inv, nil
}

func checkPOSRequest(r POSInvoiceRequest) error {
	switch {
	case r.Amount <= 0:
		return fmt.Errorf("amount must be positive (got %s)", r.Amount)
	case r.TerminalID == "":
		return errors.New("terminal id is required")
	case r.CustomerName == "":
		return errors.New("customer name is required")
	}
	return nil
}

// GetPOSInvoice returns the invoice with Hesabe id id. An unknown id gives
// an error wrapping ErrNotFound.
func (c *Client) GetPOSInvoice(ctx context.Context, id int64) (*POSInvoice, error) {
	var ans posInvoiceAnswer
	op := "get pos invoice"
	err := c.do(ctx, call{op: op, method: http.MethodGet, base: c.cfg.MerchantURL,
		path: PathPOSInvoices + "/" + strconv.FormatInt(id, 10), payload: merchantOnly{c.cfg.MerchantCode},
		bearer: true, idempotent: true}, &ans)
	if err != nil {
		return nil, notFound(err)
	}
	inv := ans.invoice()
	if inv.ID == 0 {
		return nil, &Error{Op: op, HTTPStatus: http.StatusOK, Code: codeNone, Class: permanent, Err: ErrNotFound}
	}
	return &inv, nil
}

// FindPOSInvoice looks an invoice up by the bridge's invoice_number. None
// gives an error wrapping ErrNotFound; this is the reconcile step before a
// create is sent again.
func (c *Client) FindPOSInvoice(ctx context.Context, invoiceNumber string) (*POSInvoice, error) {
	op := "find pos invoice"
	if invoiceNumber == "" {
		return nil, &Error{Op: op, Code: codeNone, Class: permanent, Err: errors.New("invoice number is required")}
	}
	var raw json.RawMessage
	err := c.do(ctx, call{op: op, method: http.MethodGet, base: c.cfg.MerchantURL, path: PathPOSInvoices,
		payload: invoiceQuery{MerchantCode: c.cfg.MerchantCode, InvoiceNumber: invoiceNumber, Page: 1},
		bearer:  true, idempotent: true}, &raw)
	if err != nil {
		return nil, notFound(err)
	}
	list, err := decodeInvoiceList(raw)
	if err != nil {
		return nil, &Error{Op: op, HTTPStatus: http.StatusOK, Code: codeNone, Class: retryable, Err: err}
	}
	for i := range list {
		if list[i].InvoiceNumber == invoiceNumber {
			return &list[i], nil
		}
	}
	return nil, &Error{Op: op, HTTPStatus: http.StatusOK, Code: codeNone, Class: permanent, Err: ErrNotFound}
}

// decodeInvoiceList accepts a bare array or a paginator {"data":[...]}.
func decodeInvoiceList(raw json.RawMessage) ([]POSInvoice, error) {
	var items []posInvoiceAnswer
	if err := json.Unmarshal(raw, &items); err != nil {
		var page struct {
			Data []posInvoiceAnswer `json:"data"`
		}
		if err2 := json.Unmarshal(raw, &page); err2 != nil {
			return nil, fmt.Errorf("decode invoice list: %w", err)
		}
		items = page.Data
	}
	out := make([]POSInvoice, len(items))
	for i, a := range items {
		out[i] = a.invoice()
	}
	return out, nil
}

type invoiceQuery struct {
	MerchantCode  string `json:"merchantCode"`
	InvoiceNumber string `json:"invoice_number"`
	Page          int    `json:"page"`
}

type merchantOnly struct {
	MerchantCode string `json:"merchantCode"`
}

// notFound marks Hesabe's "Request not found" answers (and HTTP 404) as
// ErrNotFound, keeping the rest of the error. Nothing else is: a look-up
// that was refused (a 401 or 403 from a front end, any other message
// without a Hesabe code) says nothing about the invoice, and the engine
// sends a checkout again only on a real "not found".
func notFound(err error) error {
	var herr *Error
	if errors.As(err, &herr) && herr.Class == permanent && herr.Err == nil &&
		(herr.HTTPStatus == http.StatusNotFound || strings.Contains(strings.ToLower(herr.Message.String()), "not found")) {
		herr.Err = ErrNotFound
	}
	return err
}

// Terminals lists the Smart POS terminals assigned to the merchant.
func (c *Client) Terminals(ctx context.Context) ([]Terminal, error) {
	var ans []terminalAnswer
	if err := c.do(ctx, call{op: "list terminals", method: http.MethodGet, base: c.cfg.MerchantURL,
		path: PathPOSTerminals, payload: merchantOnly{c.cfg.MerchantCode}, bearer: true, idempotent: true}, &ans); err != nil {
		return nil, err
	}
	out := make([]Terminal, len(ans))
	for i, a := range ans {
		out[i] = Terminal{ID: a.ID.Value, TerminalID: string(a.TerminalID), TerminalName: string(a.TerminalName),
			TerminalType: a.TerminalType.Value, PosType: a.PosType.Value, MerchantID: a.MerchantID.Value,
			MerchantCode: string(a.MerchantCode)}
	}
	return out, nil
}

// CreateCustomer creates a customer on the payment API (v2). It needs the
// access code, not a merchant token.
func (c *Client) CreateCustomer(ctx context.Context, req CustomerRequest) (*Customer, error) {
	var ans customerAnswer
	if err := c.do(ctx, call{op: "create customer", method: http.MethodPost, base: c.cfg.PaymentURL, path: PathCustomer,
		payload: customerWire{MerchantCode: c.cfg.MerchantCode, Name: req.Name, Email: req.Email, MobileNumber: req.MobileNumber}},
		&ans); err != nil {
		return nil, err
	}
	return &Customer{ID: ans.ID.Value, CustomerID: string(ans.CustomerID), Name: string(ans.Name),
		MobileNumber: string(ans.MobileNumber), Email: string(ans.Email)}, nil
}

// EncodeCustomer returns the compact JSON of a create-customer request.
func EncodeCustomer(merchantCode string, r CustomerRequest) ([]byte, error) {
	return marshalCompact(customerWire{MerchantCode: merchantCode, Name: r.Name, Email: r.Email, MobileNumber: r.MobileNumber})
}

// CreateInstallments sends a HeStallMent batch and returns one result per
// invoice, in order.
func (c *Client) CreateInstallments(ctx context.Context, invoices []EMIInvoice) ([]EMIResult, error) {
	op := "create installments"
	if len(invoices) == 0 {
		return nil, &Error{Op: op, Code: codeNone, Class: permanent, Err: errors.New("batch is empty")}
	}
	batch := struct {
		MerchantCode string       `json:"merchantCode"`
		Invoices     []EMIInvoice `json:"invoices"`
	}{MerchantCode: c.cfg.MerchantCode, Invoices: make([]EMIInvoice, len(invoices))}
	for i, inv := range invoices {
		inv.MerchantCode = c.cfg.MerchantCode
		batch.Invoices[i] = inv
	}
	var out []EMIResult
	if err := c.do(ctx, call{op: op, method: http.MethodPost, base: c.cfg.MerchantURL, path: PathEMI,
		payload: batch, bearer: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}
