//go:build !windows

package demo

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/creack/pty"
)

var errNoPTY = errors.New("no pseudo-terminals on this platform")

// openPTY makes a pseudo-terminal pair: the daemon opens the tty side by
// path like a USB serial port; the simulated terminal drives the master.
// The returned closer closes both ends, once (later calls return the
// first call's result).
func openPTY() (path string, terminalSide io.ReadWriteCloser, closer func() error, err error) {
	raw, tty, err := pty.Open()
	if err != nil {
		return "", nil, nil, fmt.Errorf("demo: open a pty: %w", err)
	}
	// pty.Open leaves the master in blocking mode (it takes its Fd), so
	// closing it would not end a read in progress: a simulated terminal
	// stopped while the daemon still holds the tty would wait forever.
	// A non-blocking copy goes through Go's poller, where Close ends a
	// pending read.
	fd, err := syscall.Dup(int(raw.Fd()))
	raw.Close()
	if err == nil {
		err = syscall.SetNonblock(fd, true)
		if err != nil {
			syscall.Close(fd)
		}
	}
	if err != nil {
		tty.Close()
		return "", nil, nil, fmt.Errorf("demo: pty master: %w", err)
	}
	master := os.NewFile(uintptr(fd), "ptmx")
	var once sync.Once
	// Keep the tty end open here as well: without any open slave, the
	// master reads EIO between the daemon's reconnects.
	return tty.Name(), master, func() error {
		once.Do(func() {
			// The simulated terminal may have closed the master already.
			err = master.Close()
			if errors.Is(err, os.ErrClosed) {
				err = nil
			}
			err = errors.Join(err, tty.Close())
		})
		return err
	}, nil
}
