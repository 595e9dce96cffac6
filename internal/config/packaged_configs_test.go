package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// TestPackagedConfigs: the configs the packages install (Linux and
// Windows) read and validate as shipped, so an installation starts from a
// file the bridge accepts (a stricter check must update them too).
func TestPackagedConfigs(t *testing.T) {
	for _, name := range []string{"posbridge.yaml", filepath.Join("windows", "posbridge.example.yaml")} {
		readValid(t, filepath.Join("..", "..", "packaging", name))
	}
}

// readValid parses the config file at path and validates it, failing the
// test with the file's name on either error.
func readValid(t *testing.T, path string) config.Config {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := config.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cfg
}
