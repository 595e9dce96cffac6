package requests

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/pos"
)

// PayoutGateway is the name of the payout provider's request kinds.
const PayoutGateway = "payout"

// PayeeInput is what the till sends to POST /v1/payees.
type PayeeInput struct {
	TillRef string `json:"till_ref,omitempty"`
	payout.PayeeRequest
}

// PayeeResult is a created payee as the till sees it: the provider's
// review status and the sensitive fields opened and masked to their last
// four characters (nothing more is ever stored).
type PayeeResult struct {
	payout.MaskedPayee
	// Adopted: the provider already had this merchant_customer_id (a
	// resend after a broken connection found the first create had gone
	// through); the provider did not repeat the payee's details.
	Adopted bool `json:"adopted,omitempty"`
}

// Payees creates payout payees at the payout provider.
//
// Identity, card and STC numbers are sealed with the provider's public key
// in Prepare, before anything is stored, and the idempotency hash is an
// HMAC keyed from the merchant's private key: the bbolt file never holds
// them in plaintext. A payee whose creation may have reached the provider
// is sent again: the provider refuses a second payee with the same
// merchant_customer_id, which means the first one was created.
type Payees struct {
	Client *payout.Client
}

var _ engine.RequestHandler = Payees{}

// Gateway implements engine.RequestHandler.
func (Payees) Gateway() string { return PayoutGateway }

// ResendAmbiguous implements engine.RequestHandler.
func (Payees) ResendAmbiguous() bool { return true }

// Prepare implements engine.RequestHandler.
func (p Payees) Prepare(body []byte, _ time.Time) (engine.Prepared, error) {
	var in PayeeInput
	if err := decode(body, &in, func() string { return in.TillRef }); err != nil {
		return engine.Prepared{}, err
	}
	sealed, err := p.Client.SealPayee(in.PayeeRequest)
	if err != nil {
		return engine.Prepared{}, err
	}
	hash := p.Client.PayeeHash(in.PayeeRequest)
	if in.TillRef != "" {
		hash += ":" + in.TillRef
	}
	return prepared(sealed, hash, in.TillRef)
}

// Deliver implements engine.RequestHandler.
func (p Payees) Deliver(ctx context.Context, r pos.Request) (json.RawMessage, error) {
	var sealed payout.SealedPayee
	if err := json.Unmarshal(r.Payload, &sealed); err != nil {
		return nil, storedPayloadError(r, err)
	}
	payee, err := p.Client.CreatePayee(ctx, sealed)
	if errors.Is(err, payout.ErrDuplicate) && engine.MayHaveBeenApplied(r) {
		// An earlier attempt of this very request may have created it
		// (the connection broke after sending): adopt it.
		res := PayeeResult{MaskedPayee: payout.MaskedPayee{MerchantCustomerID: sealed.MerCustomID,
			Status: payout.PayeeStatus("unknown")}, Adopted: true}
		var perr *payout.Error
		if errors.As(err, &perr) {
			res.CustomID = perr.CustomID
		}
		return json.Marshal(res)
	}
	if err != nil {
		return nil, err
	}
	masked, err := p.Client.MaskPayee(payee)
	if err != nil {
		// Created, but the answer's sealed fields did not open with the
		// merchant's key (a key mismatch): keep what is known rather
		// than fail a payee that exists.
		masked = payout.MaskedPayee{CustomID: payee.CustomID, MerchantCustomerID: payee.MerchantCustomerID,
			Status: payee.Status, StatusCode: payee.StatusCode, StatusDesc: payee.StatusDesc,
			DemandPerfection: payee.DemandPerfection, CreatedAt: payee.CreatedAt, RequestID: payee.RequestID}
	}
	return json.Marshal(PayeeResult{MaskedPayee: masked})
}

// Explain implements engine.RequestHandler.
func (Payees) Explain(err error) pos.RequestError {
	var perr *payout.Error
	if errors.As(err, &perr) {
		return perr.RequestError()
	}
	return explain(err, "")
}
