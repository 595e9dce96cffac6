package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// fuzzSecret is a secret key the fuzzer's seeds hold; Parse's errors
// must never show it, whatever the rest of the file is.
const fuzzSecret = "Zq8sQ1vR4tW7yB0nM3kL6jH9gF2dS5aX"

// FuzzParseConfig reads any bytes as a configuration file: Parse never
// panics, and no error shows the secret key the seeds carry (a value of
// hesabe.secret_key, quoted or not, next to any mistake). The seeds are
// the packaged configurations, with the secret key set, and broken
// pieces of them: aliases, anchors, flow maps, tabs, a list where a map
// belongs.
func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(b, []byte("\nextra: {secret_key: "+fuzzSecret+"}\n")...))
		f.Add(b[:len(b)/2])
	}
	for _, s := range []string{
		"hesabe:\n  secret_key: " + fuzzSecret + "\n  timeout: ten\n",
		"hesabe:\n  secret_key: &k " + fuzzSecret + "\n  password: *k\n  iv_key: [*k]\n",
		"hesabe: {secret_key: \"" + fuzzSecret + "\", merchant_code: [1]}\n",
		"hesabe:\n\tsecret_key: " + fuzzSecret + "\n",
		"hesabe:\n  secret_key: *" + fuzzSecret + "\n",
		"- " + fuzzSecret + "\n",
		"a: &a [*a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := config.Parse(bytes.NewReader(b))
		if err != nil && strings.Contains(err.Error(), fuzzSecret) && secretOnlyAsSecret(b) {
			t.Fatalf("error shows the secret key: %v", err)
		}
	})
}

// secretOnlyAsSecret reports whether every line holding fuzzSecret gives
// it to a secret's key (the fuzzer also moves it under other keys, whose
// values errors may show).
func secretOnlyAsSecret(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, fuzzSecret) {
			continue
		}
		i := strings.Index(line, fuzzSecret)
		key := line[:i]
		if !strings.Contains(key, "secret_key:") && !strings.Contains(key, "password:") && !strings.Contains(key, "iv_key:") &&
			!strings.Contains(key, "access_code:") {
			return false
		}
	}
	return true
}
