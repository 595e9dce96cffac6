package config_test

import (
	"strings"
	"testing"
)

// A password written into a URL (user:pass@host) is refused with an error
// that names the key and says where credentials go, and never shows the
// password: those URLs are logged at start and shown on the diagnostics
// page and by doctor. URLs need a host.
func TestURLsRefuseCredentials(t *testing.T) {
	const pw = "URLPASS-MARKER"
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{"hesabe:\n  merchant_url: http://user:" + pw + "@127.0.0.1:8480/api\n", []string{"hesabe.merchant_url", "user:xxxxx@", "credentials"}},
		{"hesabe:\n  payment_url: nope://user:" + pw + "@host/api\n", []string{"hesabe.payment_url", "http"}},
		{"mqtt:\n  broker: tcp://user:" + pw + "@broker:1883\n", []string{"mqtt.broker", "mqtt.username", "mqtt.password"}},
		{"mqtt:\n  broker: http://user:" + pw + "@broker:1883\n", []string{"mqtt.broker", "tcp://"}},
		{"requests:\n  customers: hitpay\nhitpay:\n  url: https://k:" + pw + "@api.hit-pay.com\n", []string{"hitpay.url", "credentials"}},
		{"requests:\n  payees: true\npayout:\n  url: https://k:" + pw + "@payout.example.com\n  merchant_id: M\n  provider_public_key_file: p.pem\n  merchant_private_key_file: m.pem\n", []string{"payout.url", "credentials"}},
		{"hesabe:\n  merchant_url: \"https://\"\n", []string{"hesabe.merchant_url", "host"}},
		{"hesabe:\n  payment_url: \"https:///api\"\n", []string{"hesabe.payment_url"}},
		{"mqtt:\n  broker: tcp://broker\n", []string{"mqtt.broker", "port"}},
	} {
		err := validate(t, tc.yaml)
		if err == nil {
			t.Errorf("%q accepted", tc.yaml)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%q: password in the error: %v", tc.yaml, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: err = %v\n  want %q", tc.yaml, err, w)
			}
		}
	}
}
