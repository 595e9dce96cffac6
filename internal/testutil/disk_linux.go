package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// MountTinyDisk mounts a tmpfs of size (e.g. "4m") on a new temporary
// directory for the test (root only: the test is skipped elsewhere),
// unmounted when the test ends.
func MountTinyDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes a file named filler in dir until the disk holding it
// is full, and returns its path (remove it to free the space).
func FillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for buf := make([]byte, 64<<10); ; {
		if _, err := f.Write(buf); err != nil {
			return path
		}
	}
}
