package config

import (
	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/payout"
)

// Client maps the hitpay section to the client's configuration.
func (h HitPay) Client() hitpay.Config {
	return hitpay.Config{BaseURL: h.URL, APIKey: h.APIKey.Value(), Timeout: h.Timeout.D()}
}

// Client maps the payout section to the client's configuration.
func (p Payout) Client() payout.Config {
	return payout.Config{
		BaseURL: p.URL, MerchantID: p.MerchantID, APIKey: p.APIKey.Value(), Timeout: p.Timeout.D(),
		ProviderPublicKeyFile: p.ProviderPublicKeyFile, MerchantPrivateKeyFile: p.MerchantPrivateKeyFile,
		Padding: crypto.RSAPadding(p.Padding),
	}
}
