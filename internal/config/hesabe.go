package config

import "github.com/posbridge/posbridge/internal/hesabe"

// Client maps the hesabe section to the client's configuration: the one
// place where the file's keys meet the client's fields.
func (h Hesabe) Client() hesabe.Config {
	return hesabe.Config{
		MerchantURL: h.MerchantURL, PaymentURL: h.PaymentURL, MerchantCode: h.MerchantCode,
		AccessCode: h.AccessCode.Value(), SecretKey: h.SecretKey.Value(), IVKey: h.IVKey.Value(),
		Username: h.Username, Password: h.Password.Value(), Timeout: h.Timeout.D(),
	}
}
