package config_test

import (
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// ${VAR} puts the variable's value into the key's value as it is: YAML
// characters in it (a '*' or '&' at the start, ": ", " #", quotes) neither
// change the value nor break the file, and a value the YAML parser would
// have misread never appears in an error.
func TestEnvValuesTakenVerbatim(t *testing.T) {
	for _, v := range []string{
		"*Star-token-0123456789", "&Amp-token-0123456789", "!Bang-token-0123456789",
		"has: colon-0123456789", "has #hash-0123456789", `quote"and\back-0123456`,
		"0123456789012345678", "[bracket-0123456789", "trailing-space-0123456789 ",
	} {
		t.Setenv("PB_TEST_TOKEN", v)
		cfg, err := config.Parse(strings.NewReader("api:\n  token: ${PB_TEST_TOKEN}\ndiagnostics:\n  token: \"${PB_TEST_TOKEN}\"\n"))
		if err != nil {
			if strings.Contains(err.Error(), strings.TrimSpace(strings.TrimLeft(v, "*&!"))) {
				t.Errorf("%q: the value is in the error: %v", v, err)
			}
			t.Errorf("%q: %v", v, err)
			continue
		}
		if got := cfg.API.Token.Value(); got != v {
			t.Errorf("api.token: got %q, want %q", got, v)
		}
		if got := cfg.Diagnostics.Token.Value(); got != v {
			t.Errorf("diagnostics.token (quoted): got %q, want %q", got, v)
		}
	}
}

// Typed keys still read their variable's value as a number, an amount or
// a duration.
func TestEnvValuesTyped(t *testing.T) {
	t.Setenv("PB_MAX", "20")
	t.Setenv("PB_AMOUNT", "100.000")
	t.Setenv("PB_POLL", "2s")
	t.Setenv("PB_ON", "false")
	cfg, err := config.Parse(strings.NewReader("offline:\n  max_count: ${PB_MAX}\ncheckout:\n  max_amount: ${PB_AMOUNT}\n  poll_interval: ${PB_POLL}\nrequests:\n  installments: ${PB_ON}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Offline.MaxCount != 20 || cfg.Checkout.MaxAmount.String() != "100.000" || cfg.Checkout.PollInterval.D().String() != "2s" || cfg.Requests.Installments {
		t.Fatalf("cfg = %+v %+v %+v", cfg.Offline, cfg.Checkout, cfg.Requests)
	}
}

// A ${VAR} in a comment is not expanded (it is not a value); an unset one
// in a value is an error naming the key, its line and the variable.
func TestEnvUnsetNamesKey(t *testing.T) {
	if _, err := config.Parse(strings.NewReader("# api:\n#   token: ${PB_NOT_SET_ANYWHERE}\nlog:\n  level: info # ${PB_NOT_SET_EITHER}\n")); err != nil {
		t.Fatalf("comment: %v", err)
	}
	_, err := config.Parse(strings.NewReader("log:\n  level: info\napi:\n  token: ${PB_NOT_SET_ANYWHERE}\n"))
	if err == nil {
		t.Fatal("unset variable accepted")
	}
	for _, want := range []string{"api.token", "line 4", "PB_NOT_SET_ANYWHERE", "environment variable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	}
}
