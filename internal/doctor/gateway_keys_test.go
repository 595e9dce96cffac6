package doctor_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/doctor"
)

// TestGatewayLoginNamesTheWrongSetting: each wrong piece of the Hesabe
// account gets the fix for that setting. Before, a wrong access code was
// reported as "Hesabe refused the merchant login (code 504)" with "check
// hesabe.username/password" (the login itself had succeeded: the 401 came
// from the terminal list, which the access code guards), and a wrong
// secret key or IV key (an answer that does not decrypt) or a merchant_url
// with a wrong path (HTTP 404) got only "check the hesabe section of the
// config", although docs/operations.md promises secret_key/iv_key for an
// undecryptable answer.
func TestGatewayLoginNamesTheWrongSetting(t *testing.T) {
	for _, tc := range []struct {
		name       string
		change     func(s *setup, secrets string) string // returns the new secrets file
		merchant   func(s *setup) string                 // a merchant_url, or nil
		detail     string
		fix        string
		wrongValue string // must never be printed
	}{
		{name: "access code", change: func(s *setup, sec string) string {
			return strings.Replace(sec, s.sim.ClientConfig(0).AccessCode, "d333729b-d060-4b74-a49d-000000000000", 1)
		}, detail: "Hesabe refused the access code", fix: "hesabe.access_code", wrongValue: "d333729b-d060-4b74-a49d-000000000000"},
		{name: "secret key", change: func(s *setup, sec string) string {
			return strings.Replace(sec, s.sim.ClientConfig(0).SecretKey, "XkW64zMe5NVdrlPVNnjo2Jy9nOb7v1XQ", 1)
		}, detail: "could not be decrypted", fix: "hesabe.secret_key and hesabe.iv_key", wrongValue: "XkW64zMe5NVdrlPVNnjo2Jy9nOb7v1XQ"},
		{name: "iv key", change: func(s *setup, sec string) string {
			return strings.Replace(sec, s.sim.ClientConfig(0).IVKey, "5NVdrlPVNnjo2JyX", 1)
		}, detail: "could not be decrypted", fix: "hesabe.secret_key and hesabe.iv_key", wrongValue: "5NVdrlPVNnjo2JyX"},
		{name: "password", change: func(s *setup, sec string) string {
			return strings.Replace(sec, s.password, "Wrong-Passw0rd!", 1)
		}, detail: "Hesabe refused the merchant login (code 504)", fix: "hesabe.username/password", wrongValue: "Wrong-Passw0rd!"},
		{name: "merchant url path", merchant: func(s *setup) string {
			return strings.TrimSuffix(s.merchantURL, "/api") + "/wrong"
		}, detail: "HTTP 404", fix: "hesabe.merchant_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t)
			if tc.merchant != nil {
				s.merchantURL = tc.merchant(s)
			}
			s.write(t)
			if tc.change != nil {
				b, err := os.ReadFile(s.secretsPath)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(s.secretsPath, []byte(tc.change(s, string(b))), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			rs := s.run(t, doctor.Options{})
			r := expect(t, rs, "gateway.login", doctor.Fail, tc.detail, tc.fix)
			expect(t, rs, "gateway.tcp", doctor.OK, "", "")
			if tc.wrongValue != "" {
				var b bytes.Buffer
				doctor.WriteText(&b, rs)
				if strings.Contains(b.String(), tc.wrongValue) {
					t.Errorf("doctor printed the configured (wrong) secret:\n%s", b.String())
				}
			}
			if tc.name != "password" && strings.Contains(r.Fix, "username/password") {
				t.Errorf("blames the username/password: %q", r.Fix)
			}
		})
	}
}
