package daemon

import (
	"errors"
	"syscall"
)

// Windows' "disk full" errors (winerror.h).
const (
	errorHandleDiskFull syscall.Errno = 39
	errorDiskFull       syscall.Errno = 112
)

// diskFull reports whether err is the disk refusing a write for want of
// space.
func diskFull(err error) bool {
	return errors.Is(err, errorDiskFull) || errors.Is(err, errorHandleDiskFull) || errors.Is(err, syscall.ENOSPC)
}
