package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
)

// runCLI runs posbridge in-process with the given stdin.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = dispatch(context.Background(), env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

type vectors struct {
	Key, IV string
	Vectors []struct{ Name, Hex, Plaintext string }
}

func loadVectors(t *testing.T) vectors {
	b, err := os.ReadFile("testdata/hesabe-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHesabeDecryptEncryptVectors(t *testing.T) {
	v := loadVectors(t)
	for _, vec := range v.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			code, out, errs := runCLI(t, vec.Hex, "hesabe", "decrypt", "--key", v.Key, "--iv", v.IV)
			if code != 0 || out != vec.Plaintext || errs != "" {
				t.Fatalf("decrypt: code %d, stdout %q, stderr %q", code, out, errs)
			}
			pad := "16"
			if strings.HasSuffix(vec.Name, "_response") {
				pad = "32"
			}
			code, out, errs = runCLI(t, vec.Plaintext, "hesabe", "encrypt", "--key", v.Key, "--iv", v.IV, "--pad", pad)
			if code != 0 || out != vec.Hex || errs != "" {
				t.Fatalf("encrypt: code %d, stdout %q, stderr %q", code, out, errs)
			}
		})
	}
	// Keys from the environment, hex with a trailing newline, a whole body.
	t.Setenv("POSBRIDGE_HESABE_SECRET_KEY", v.Key)
	t.Setenv("POSBRIDGE_HESABE_IV_KEY", v.IV)
	vec := v.Vectors[1]
	for _, in := range []string{vec.Hex + "\n", `{"response":"` + vec.Hex + `"}`} {
		code, out, _ := runCLI(t, in, "hesabe", "decrypt")
		if code != 0 || out != vec.Plaintext {
			t.Fatalf("decrypt(%.20q) = %d %q", in, code, out)
		}
	}
}

func TestHesabeDecryptBadInput(t *testing.T) {
	v := loadVectors(t)
	good := v.Vectors[0].Hex
	for _, tc := range []struct{ name, in, want string }{
		{"not hex", "xy" + good[2:], "not hex"},
		{"odd", good[1:], "odd number"},
		{"bad padding", good[:len(good)-32] + strings.Repeat("0", 32), "bad padding"},
		{"empty", "", "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, tc.in, "hesabe", "decrypt", "--key", v.Key, "--iv", v.IV)
			if code != exitFailure || out != "" {
				t.Fatalf("code %d stdout %q", code, out)
			}
			if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, tc.want) {
				t.Fatalf("stderr %q, want one line with %q", errs, tc.want)
			}
			if strings.Contains(errs, v.Key) || strings.Contains(errs, v.IV) {
				t.Fatal("key in error")
			}
		})
	}
	code, _, errs := runCLI(t, good, "hesabe", "decrypt", "--key", "short", "--iv", v.IV)
	if code != exitFailure || !strings.Contains(errs, "32 bytes") {
		t.Fatalf("short key: %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, good, "hesabe", "decrypt", "--bogus"); code != exitUsage {
		t.Fatalf("bad flag exit %d", code)
	}
}

func TestHesabeTerminalsCommand(t *testing.T) {
	sim, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close(context.Background())
	m := hesabesim.SandboxMerchant()
	cfg := fmt.Sprintf("hesabe:\n  merchant_url: %s\n  payment_url: %s\n  merchant_code: \"%s\"\n  access_code: %s\n  secret_key: %s\n  iv_key: %s\n  username: %s\n  password: %s\n",
		sim.APIURL(), sim.APIURL(), m.Code, m.AccessCode, m.SecretKey, m.IVKey, m.Username, m.Password)
	p := filepath.Join(t.TempDir(), "posbridge.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "", "hesabe", "terminals", "--config", p)
	if code != 0 || !strings.Contains(out, "29708454") || !strings.Contains(out, "A99") {
		t.Fatalf("code %d out %q err %q", code, out, errs)
	}
	// The gateway down: a one-line error, exit 1.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = sim.Close(ctx)
	code, _, errs = runCLI(t, "", "hesabe", "terminals", "--config", p)
	if code != exitFailure || !strings.Contains(errs, "retryable") || strings.Contains(errs, m.Password) {
		t.Fatalf("down: code %d err %q", code, errs)
	}
}
