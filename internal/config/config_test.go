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
