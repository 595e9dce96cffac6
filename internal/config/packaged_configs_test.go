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
		f, err := os.Open(filepath.Join("..", "..", "packaging", name))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
