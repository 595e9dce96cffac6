package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// TestLoadValueErrorNamesFile: a value the file gives that is refused
// (not a YAML error: those named the file already) said only
// "config: api.listen = ...", so a technician with a main file and a
// packaged default could not tell which one to open. Each refused value
// is now given with the file's path, and stays a ValidationError.
func TestLoadValueErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "posbridge.yaml")
	body := "api:\n  listen: 10.0.0.5:8080\nlog:\n  level: loud\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(path)
	if err == nil {
		t.Fatal("Load: no error")
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, path+": ") {
			t.Errorf("error line without the file's path: %q", line)
		}
	}
	if msg := err.Error(); !strings.Contains(msg, "api.listen") || !strings.Contains(msg, "log.level") {
		t.Errorf("Load: %v, want both refused values", err)
	}
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		t.Errorf("Load: %T is not a ValidationError", err)
	}
}
