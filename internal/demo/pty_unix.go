//go:build !windows

package demo

import (
	"errors"
	"io"
	"os"

	"github.com/creack/pty"
)

var errNoPTY = errors.New("no pseudo-terminals on this platform")

// openPTY makes a pseudo-terminal pair: the daemon opens the tty side by
// path like a USB serial port; the simulated terminal drives the master.
// The returned closer closes both ends.
func openPTY() (path string, terminalSide io.ReadWriteCloser, closer func() error, err error) {
	master, tty, err := pty.Open()
	if err != nil {
		return "", nil, nil, err
	}
	// Keep the tty end open here as well: without any open slave, the
	// master reads EIO between the daemon's reconnects.
	return tty.Name(), master, func() error {
		// The simulated terminal may have closed the master already.
		err := master.Close()
		if errors.Is(err, os.ErrClosed) {
			err = nil
		}
		return errors.Join(err, tty.Close())
	}, nil
}
