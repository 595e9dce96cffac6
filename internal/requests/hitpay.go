package requests

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/pos"
)

// HitPayGateway is the name of HitPay's request kinds.
const HitPayGateway = "hitpay"

// HitPayCustomers creates customers at HitPay (POST /v1/customers).
//
// A customer whose creation may have reached HitPay is sent again: a
// duplicate customer record is harmless.
type HitPayCustomers struct {
	Client *hitpay.Client
}

var _ engine.RequestHandler = HitPayCustomers{}

// Gateway implements engine.RequestHandler.
func (HitPayCustomers) Gateway() string { return HitPayGateway }

// ResendAmbiguous implements engine.RequestHandler.
func (HitPayCustomers) ResendAmbiguous() bool { return true }

// Prepare implements engine.RequestHandler.
func (HitPayCustomers) Prepare(body []byte, _ time.Time) (engine.Prepared, error) {
	var in CustomerInput
	if err := decode(body, &in, func() string { return in.TillRef }); err != nil {
		return engine.Prepared{}, err
	}
	req := hitpay.CustomerRequest{Name: in.Name, Email: in.Email, PhoneNumber: in.MobileNumber,
		PhoneNumberCountryCode: in.CountryCode, Remark: in.Remark, BirthDate: in.BirthDate, Gender: in.Gender}
	if in.Address != nil {
		req.Address = hitpay.Address{City: in.Address.City, State: in.Address.State, Street: in.Address.Street,
			PostalCode: in.Address.PostalCode, Country: in.Address.Country}
	}
	if err := hitpay.Validate(req); err != nil {
		return engine.Prepared{}, err
	}
	hash, err := hashOf(in)
	if err != nil {
		return engine.Prepared{}, err
	}
	return prepared(req, hash, in.TillRef)
}

// Deliver implements engine.RequestHandler.
func (h HitPayCustomers) Deliver(ctx context.Context, r pos.Request) (json.RawMessage, error) {
	var req hitpay.CustomerRequest
	if err := json.Unmarshal(r.Payload, &req); err != nil {
		return nil, storedPayloadError(r, err)
	}
	c, err := h.Client.CreateCustomer(ctx, req)
	if err != nil {
		return nil, err
	}
	res := CustomerResult{Gateway: HitPayGateway, ID: c.ID, Name: c.Name, Email: c.Email,
		MobileNumber: c.PhoneNumber, CountryCode: c.PhoneNumberCountryCode, Remark: c.Remark,
		BirthDate: c.BirthDate, Gender: c.Gender}
	if c.Address != (hitpay.Address{}) {
		res.Address = &Address{Street: c.Address.Street, City: c.Address.City, State: c.Address.State,
			PostalCode: c.Address.PostalCode, Country: c.Address.Country}
	}
	if !c.CreatedAt.IsZero() {
		res.CreatedAt = c.CreatedAt.Format(time.RFC3339)
	}
	return json.Marshal(res)
}

// Explain implements engine.RequestHandler.
func (HitPayCustomers) Explain(err error) pos.RequestError {
	var herr *hitpay.Error
	if !errors.As(err, &herr) {
		return explain(err, "")
	}
	out := pos.RequestError{Message: herr.Message, Field: herr.TillField()}
	if herr.Status > 0 {
		out.Code = "http_" + strconv.Itoa(herr.Status)
	}
	if len(herr.Fields) > 0 {
		var parts []string
		for _, msgs := range herr.Fields {
			parts = append(parts, msgs...)
		}
		out.Message = strings.TrimSpace(out.Message + " " + strings.Join(parts, " "))
	}
	if out.Message == "" {
		out.Message = herr.Error()
	}
	return out
}
