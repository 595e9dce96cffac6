package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// TestLoggerRedactsEverySecret: the daemon's logger scrubs the value of
// every secret in the configuration, whatever the line that carries it
// (an error from a library quoting a header, say), not only the Hesabe
// ones. Before, the HitPay and payout API keys were left out.
func TestLoggerRedactsEverySecret(t *testing.T) {
	cfg := config.Default()
	cfg.Hesabe.AccessCode = "access-code-0123456789"
	cfg.Hesabe.SecretKey = "secret-key-0123456789abcdef"
	cfg.Hesabe.IVKey = "iv-key-0123456789"
	cfg.API.Token = "api-token-0123456789abcdef"
	cfg.Diagnostics.Token = "diag-token-0123456789abcdef"
	cfg.MQTT.Password = "mqtt-password-0123456789"
	cfg.HitPay.APIKey = "hitpay-key-0123456789abcdef"
	cfg.Payout.APIKey = "payout-key-0123456789abcdef"
	var buf bytes.Buffer
	log, _, _ := newLogger(&buf, cfg, true)
	secrets := cfg.SecretValues()
	if len(secrets) < 8 {
		t.Fatalf("SecretValues gave %d values, want the 8 set", len(secrets))
	}
	for _, s := range secrets {
		log.Error("gateway call failed", "err", "401 for key "+s)
	}
	for _, s := range secrets {
		if strings.Contains(buf.String(), s) {
			t.Errorf("the log shows the secret %q:\n%s", s[:8]+"…", buf.String())
		}
	}
}
