package config_test

import (
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// Every value the file gets wrong is named by its YAML path and line, with
// the value and what is accepted; unknown keys suggest the known one.
func TestYAMLErrorsNameKeyValueAndAccepted(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{"offline:\n  max_count: ten\n", []string{"line 2", "offline.max_count", `"ten"`, "whole number"}},
		{"offline:\n  max_count: 1.5\n", []string{"line 2", "offline.max_count", `"1.5"`, "whole number"}},
		{"requests:\n  max_batch: 1e3\n", []string{"requests.max_batch", "whole number"}},
		{"checkout:\n  drain_rate: fast\n", []string{"line 2", "checkout.drain_rate", `"fast"`, "number"}},
		{"requests:\n  installments: yes please\n", []string{"requests.installments", "true or false"}},
		{"hesabe:\n  timeout: 5\n", []string{"line 2", "hesabe.timeout", `"5"`, "30s"}},
		{"checkout:\n  retention: 1d\n", []string{"checkout.retention", `"1d"`, "h"}},
		{"checkout:\n  max_amount: \"1.2345\"\n", []string{"line 2", "checkout.max_amount", `"1.2345"`, "more than 3 decimals", `"100.000"`}},
		{"offline:\n  max_single: 5,000\n", []string{"offline.max_single", `"5,000"`}},
		{"checkout:\n  max_amount: [1]\n", []string{"checkout.max_amount", "single value"}},
		{"hesabe: oops\n", []string{"line 1", "hesabe", "section", "merchant_url"}},
		{"terminals:\n  id: \"1\"\n", []string{"line 2", "terminals", "list"}},
		{"terminals:\n  - \"1\"\n", []string{"line 2", "terminals[0]", "section"}},
		{"hesabe:\n  merchant_code: \"1\"\n  secret_kye: x\n", []string{"line 3", "hesabe.secret_kye", "unknown key", "secret_key"}},
		{"chekout:\n  poll_interval: 1s\n", []string{"line 1", "chekout", "unknown key", "checkout"}},
		{"terminals:\n  - id: \"1\"\n    link: serial\n    serial:\n      port: /dev/ttyACM0\n      bauds: 9600\n", []string{"line 6", "terminals[0].serial.bauds", "unknown key", "baud"}},
		{"api:\n  listen: 127.0.0.1:8470\n  listen: 127.0.0.1:8472\n", []string{"line 3", "api.listen", "line 2"}},
		{"api:\n  token: [a, b]\n", []string{"api.token", "single value"}},
		{"log:\n  level: info\n---\nlog:\n  level: debug\n", []string{"one YAML document"}},
	} {
		_, err := config.Parse(strings.NewReader(tc.yaml))
		if err == nil {
			t.Errorf("%q accepted", tc.yaml)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: err = %v\n  want %q", tc.yaml, err, w)
			}
		}
		for _, bad := range []string{"config.Config", "config.Hesabe", "!!str", "unmarshal", "float64"} {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%q: err = %v\n  shows Go/YAML internals %q", tc.yaml, err, bad)
			}
		}
	}
}

// The amount message says "amount" once: not `"1.2345" is not an amount
// (e.g. "100.000"): amount has more than 3 decimals`.
func TestAmountErrorSaysAmountOnce(t *testing.T) {
	for _, v := range []string{`"1.2345"`, `"abc"`, `""`, `"99999999999999999999.000"`} {
		_, err := config.Parse(strings.NewReader("offline:\n  max_single: " + v + "\n"))
		if err == nil {
			t.Fatalf("%s accepted", v)
		}
		msg := strings.ReplaceAll(err.Error(), "offline.max_single", "")
		if n := strings.Count(msg, "amount"); n > 1 {
			t.Errorf("%s: %q says amount %d times", v, err, n)
		}
	}
}
