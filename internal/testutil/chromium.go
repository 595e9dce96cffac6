package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Chromium finds a headless-capable Chromium for tests that load a page
// in a real browser, and returns it with the flags every such run uses
// (headless, no sandbox, a fresh profile in a temporary directory, no
// background traffic). Without one the test is skipped, or fails under
// CI=true (scripts/test.sh installs it).
func Chromium(t testing.TB) (bin string, args []string) {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (scripts/test.sh installs it)")
		}
		t.Skip("chromium not installed")
	}
	return bin, []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(t.TempDir(), "profile")}
}
