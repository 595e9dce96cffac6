//go:build windows

package demo

import (
	"errors"
	"io"
)

var errNoPTY = errors.New("no pseudo-terminals on Windows: the demo runs the MQTT terminal only")

func openPTY() (string, io.ReadWriteCloser, func() error, error) {
	return "", nil, nil, errNoPTY
}
