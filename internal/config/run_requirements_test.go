package config_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// What `posbridge run` (and its gateway clients, terminal links and
// broker) would refuse is refused by the config, so doctor's config and
// config.complete checks do not pass a file the daemon then rejects.
func TestConfigRefusesWhatRunRefuses(t *testing.T) {
	base := "hesabe:\n  merchant_code: \"842217\"\n  username: u\n  access_code: ac\n  secret_key: 0123456789abcdef0123456789abcdef\n  iv_key: 0123456789abcdef\n  password: pw\napi:\n  token: 0123456789abcdef0123\nterminals:\n  - {id: \"1\", link: mqtt}\n"
	if err := requireRun(t, base); err != nil {
		t.Fatalf("base: %v", err)
	}
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{"hesabe:\n  merchant_url: \"\"\n", []string{"hesabe.merchant_url", "required"}},
		{"requests:\n  payees: true\npayout:\n  url: https://payout.example.com\n  provider_public_key_file: p.pem\n  merchant_private_key_file: m.pem\n", []string{"payout.merchant_id", "payout.api_key"}},
		{"mqtt:\n  password: broker-password\n", []string{"mqtt.username", "mqtt.password"}},
		{"mqtt:\n  username: store\n", []string{"mqtt.password", "mqtt.username"}},
		{"mqtt:\n  client_id: \"pos/store 7\"\n", []string{"mqtt.client_id", `"pos/store 7"`}},
		{"mqtt:\n  client_id: " + strings.Repeat("x", 65) + "\n", []string{"mqtt.client_id", "64"}},
		{"offline:\n  max_amount: \"-5.000\"\n  max_single: \"-6.000\"\n", []string{"offline.max_amount", "offline.max_single", "negative"}},
		{"api:\n  token: \"0123456789abcdef0123\\n\"\n", []string{"api.token", "line"}},
	} {
		// The case's top-level sections replace the base's.
		err := requireRun(t, merge(base, tc.yaml))
		if err == nil {
			t.Errorf("%q accepted", tc.yaml)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: err = %v\n  want %q", tc.yaml, err, w)
			}
		}
		if strings.Contains(err.Error(), "0123456789abcdef0123") {
			t.Errorf("token in the error: %v", err)
		}
	}
}

// Terminal definitions: a serial section only with link serial, one serial
// port (or USB identity) per terminal, usb.pid only with usb.vid.
func TestTerminalLinkChecks(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string
	}{
		{"terminals:\n  - {id: \"1\", link: mqtt, serial: {port: /dev/ttyACM0}}\n", []string{"terminals[0].serial", "link: serial"}},
		{"terminals:\n  - {id: \"1\", link: serial, serial: {port: /dev/ttyACM0}}\n  - {id: \"2\", link: serial, serial: {port: /dev/ttyACM0}}\n", []string{"terminals[1].serial.port", "/dev/ttyACM0", "terminals[0]"}},
		{"terminals:\n  - {id: \"1\", link: serial, serial: {usb: {vid: \"0483\", pid: \"5740\", serial: A}}}\n  - {id: \"2\", link: serial, serial: {usb: {vid: \"0483\", pid: \"5740\", serial: A}}}\n", []string{"terminals[1].serial.usb", "terminals[0]"}},
		{"terminals:\n  - {id: \"1\", link: serial, serial: {usb: {pid: \"5740\"}}}\n", []string{"terminals[0].serial.usb.vid", "usb.pid"}},
		{"terminals:\n  - {id: \"1\"}\n", []string{"terminals[0].link", "mqtt, serial or none"}},
	} {
		err := validate(t, tc.yaml)
		if err == nil {
			t.Errorf("%q accepted", tc.yaml)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: err = %v\n  want %q", tc.yaml, err, w)
			}
		}
	}
}

// requireRun parses body and runs every check `posbridge run` makes.
func requireRun(t *testing.T, body string) error {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(body))
	if err != nil {
		return err
	}
	return errors.Join(cfg.Validate(), cfg.RequireRun())
}

// merge returns over's top-level sections followed by base's others.
func merge(base, over string) string {
	sections := func(s string) (order []string, body map[string]string) {
		body = map[string]string{}
		key := ""
		for _, line := range strings.SplitAfter(s, "\n") {
			if line != "" && line[0] != ' ' && line[0] != '-' {
				key, _, _ = strings.Cut(line, ":")
				order = append(order, key)
			}
			body[key] += line
		}
		return order, body
	}
	overKeys, _ := sections(over)
	baseKeys, baseBody := sections(base)
	out := over
	for _, k := range baseKeys {
		if !slices.Contains(overKeys, k) {
			out += baseBody[k]
		}
	}
	return out
}
