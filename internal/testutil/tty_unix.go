//go:build unix

package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// PtyPair opens a pseudo-terminal: the code under test opens the tty by
// path, the test (or a simulated terminal) uses the master. The master is
// non-blocking, so it goes through Go's poller and closing it ends a
// pending read. Both are closed when the test ends.
func PtyPair(t testing.TB) (master *os.File, ttyPath string) {
	t.Helper()
	master, ttyPath, _ = PtyPairCloser(t)
	return master, ttyPath
}

// PtyPairCloser is PtyPair with a function that closes both ends at once
// (a cable pull); it is idempotent and also runs when the test ends.
func PtyPairCloser(t testing.TB) (master *os.File, ttyPath string, closeAll func()) {
	t.Helper()
	raw, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	fd, err := syscall.Dup(int(raw.Fd()))
	raw.Close()
	if err != nil {
		t.Fatalf("dup pty: %v", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		t.Fatalf("nonblock pty: %v", err)
	}
	m := os.NewFile(uintptr(fd), "ptmx")
	// The test gets a name of its own for the tty, removed with it: a
	// port opened again by name after the pair is closed (a link retrying
	// after a cable pull) then fails, where /dev/pts/N could already be
	// another test's pty (the kernel reuses the numbers at once; a hub
	// of one package's tests once wrote into another's that way).
	link := filepath.Join(t.TempDir(), "tty")
	if err := os.Symlink(tty.Name(), link); err != nil {
		t.Fatalf("name the pty: %v", err)
	}
	var once sync.Once
	closeAll = func() {
		once.Do(func() {
			os.Remove(link)
			m.Close()
			tty.Close()
		})
	}
	t.Cleanup(closeAll)
	return m, link, closeAll
}

// FillTTY fills the output side of the tty at path until it takes no
// more: from then on nothing written to the port gets through until the
// far end (the pty master) reads, as with a terminal app that hangs and
// stops reading its port, or a USB device that stops draining.
func FillTTY(t testing.TB, path string) {
	t.Helper()
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer syscall.Close(fd)
	buf := make([]byte, 4096)
	// The kernel moves what was written on to the master's side in the
	// background, making room again for a while: full means a few rounds
	// in a row that take nothing.
	for total, idle := 0, 0; idle < 3; time.Sleep(20 * time.Millisecond) {
		idle++
		for {
			n, err := syscall.Write(fd, buf)
			if errors.Is(err, syscall.EAGAIN) {
				break
			}
			if err != nil {
				t.Fatalf("fill %s: %v", path, err)
			}
			if idle, total = 0, total+n; total > 64<<20 {
				t.Fatalf("%s takes everything written to it", path)
			}
		}
	}
}
