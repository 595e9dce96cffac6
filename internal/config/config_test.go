package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

func write(t *testing.T, name, body string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hesabe.Timeout.D().Seconds() != 20 || cfg.Log.Level != "info" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	p := write(t, "c.yaml", "hesabe:\n  merchant_code: \"1\"\n  secret_kye: x\n", 0o600)
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), "secret_kye") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidationNamesField(t *testing.T) {
	p := write(t, "c.yaml", "log:\n  level: loud\nhesabe:\n  secret_key: short\n  timeout: 5 minutes\n", 0o600)
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), "line 5") || !strings.Contains(err.Error(), "not a duration") {
		t.Fatalf("err = %v", err)
	}
	p = write(t, "c.yaml", "log:\n  level: loud\nhesabe:\n  secret_key: short\n", 0o600)
	_, err = config.Load(p)
	var ve *config.ValidationError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), "hesabe.secret_key") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "short") {
		t.Fatalf("secret value in error: %v", err)
	}
}

func TestEnvExpansionAndSecrets(t *testing.T) {
	t.Setenv("MY_CODE", "842217")
	t.Setenv(config.EnvPassword, "from-env-pass")
	sec := write(t, "secrets.yaml", "hesabe:\n  secret_key: PkW64zMe5NVdrlPVNnjo2Jy9nOb7v1Xg\n  iv_key: 5NVdrlPVNnjo2Jy9\n  access_code: c333\n", 0o600)
	p := write(t, "c.yaml", fmt.Sprintf("secrets_file: %s\nhesabe:\n  merchant_code: ${MY_CODE}\n  username: test\n", sec), 0o644)
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hesabe.MerchantCode != "842217" || cfg.Hesabe.Password.Value() != "from-env-pass" || cfg.Hesabe.IVKey.Value() != "5NVdrlPVNnjo2Jy9" {
		t.Fatalf("cfg = %+v", cfg.Hesabe)
	}
	if err := cfg.RequireGateway(); err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(s, "PkW64") || strings.Contains(s, "from-env-pass") {
		t.Fatalf("secret printed: %s", s)
	}
	p = write(t, "c.yaml", "hesabe:\n  merchant_code: ${NOT_SET_ANYWHERE}\n", 0o600)
	if _, err := config.Load(p); err == nil || !strings.Contains(err.Error(), "NOT_SET_ANYWHERE") {
		t.Fatalf("unset var: %v", err)
	}
}

func TestSecretsFilePermissions(t *testing.T) {
	sec := write(t, "secrets.yaml", "hesabe:\n  password: x\n", 0o644)
	p := write(t, "c.yaml", "secrets_file: "+sec+"\n", 0o600)
	_, err := config.Load(p)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v", err)
	}
}

func TestExampleConfigs(t *testing.T) {
	t.Setenv("POSBRIDGE_API_TOKEN", "0123456789abcdef0123")
	t.Setenv("POSBRIDGE_DIAG_TOKEN", "fedcba9876543210fedc")
	t.Setenv("POSBRIDGE_MQTT_PASSWORD", "store-lan-broker-pass")
	for _, name := range []string{"demo.yaml", "sandbox.yaml", "production.yaml"} {
		cfg := readValid(t, filepath.Join("..", "..", "configs", name))
		if len(cfg.Terminals) != 2 {
			t.Fatalf("%s: terminals = %+v", name, cfg.Terminals)
		}
	}
}

func TestRunValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"terminals:\n  - {id: \"1\", link: carrier-pigeon}\n", "terminals[0].link"},
		{"terminals:\n  - {id: \"1\", link: serial}\n", "terminals[0].serial"},
		{"terminals:\n  - {id: \"1\", link: mqtt}\n  - {id: \"1\", link: mqtt}\n", "declared twice"},
		{"terminals:\n  - {id: \"has space\", link: mqtt}\n", "terminals[0].id"},
		{"terminals:\n  - {id: \"1\", link: serial, serial: {usb: {vid: xyz}}}\n", "serial.usb.vid"},
		{"offline:\n  max_single: \"900.000\"\n", "offline.max_single"},
		{"checkout:\n  max_amount: \"1.2345\"\n", "more than 3 decimals"},
		{"checkout:\n  default_deadline: 10m\n  max_deadline: 5m\n", "checkout.max_deadline"},
		{"api:\n  listen: 8470\n", "api.listen"},
		{"api:\n  token: short\n", "at least 16"},
		{"diagnostics:\n  token: short\n", "diagnostics.token"},
		{"mqtt:\n  broker: http://x\n", "mqtt.broker"},
		{"diagnostics:\n  listen: 127.0.0.1:8470\n", "must differ"},
	} {
		p := write(t, "c.yaml", tc.yaml, 0o600)
		_, err := config.Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
	cfg, _ := config.Load("")
	if err := cfg.RequireRun(); err == nil || !strings.Contains(err.Error(), "api.token") || !strings.Contains(err.Error(), "terminals") {
		t.Errorf("RequireRun on defaults: %v", err)
	}
}
