package config_test

import (
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

func validate(t *testing.T, body string) error {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(body))
	if err != nil {
		return err
	}
	return cfg.Validate()
}

// Listen addresses need a port number, and the till API and diagnostics
// stay on loopback unless the file opts in with allow_remote: true. The
// embedded broker may listen on the store network (terminals there connect
// to it) but then only with mqtt.username and mqtt.password.
func TestListenAddresses(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want []string // nil: valid
	}{
		{"api:\n  listen: 127.0.0.1:99999\n", []string{"api.listen", `"127.0.0.1:99999"`, "port", "65535"}},
		{"api:\n  listen: 127.0.0.1:http\n", []string{"api.listen", "port"}},
		{"diagnostics:\n  listen: \"127.0.0.1:\"\n", []string{"diagnostics.listen", "port"}},
		{"mqtt:\n  embedded:\n    listen: 127.0.0.1:abc\n", []string{"mqtt.embedded.listen", "port"}},
		{"api:\n  listen: 0.0.0.0:8470\n", []string{"api.listen", `"0.0.0.0:8470"`, "loopback", "api.allow_remote: true"}},
		{"api:\n  listen: \":8470\"\n", []string{"api.listen", "api.allow_remote: true"}},
		{"api:\n  listen: \"[::]:8470\"\n", []string{"api.listen", "api.allow_remote: true"}},
		{"diagnostics:\n  listen: 192.168.1.10:8471\n", []string{"diagnostics.listen", "diagnostics.allow_remote: true"}},
		{"api:\n  listen: pos-pc.local:8470\n", []string{"api.listen", "api.allow_remote: true"}},
		{"mqtt:\n  embedded:\n    listen: 0.0.0.0:1883\n", []string{"mqtt.embedded.listen", "mqtt.username", "mqtt.password"}},
		{"api:\n  listen: 0.0.0.0:8470\n  allow_remote: true\n", nil},
		{"diagnostics:\n  listen: 10.0.0.5:8471\n  allow_remote: true\n", nil},
		{"api:\n  listen: localhost:8470\n", nil},
		{"api:\n  listen: \"[::1]:8470\"\n", nil},
		{"api:\n  listen: 127.0.0.2:0\n", nil},
		{"mqtt:\n  embedded:\n    listen: 0.0.0.0:1883\n  username: store\n  password: broker-password\n", nil},
	} {
		err := validate(t, tc.yaml)
		if tc.want == nil {
			if err != nil {
				t.Errorf("%q: %v", tc.yaml, err)
			}
			continue
		}
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
	if d := config.Default(); d.API.AllowRemote || d.Diagnostics.AllowRemote {
		t.Error("allow_remote is on by default")
	}
}
