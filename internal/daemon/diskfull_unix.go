//go:build !windows

package daemon

import (
	"errors"
	"syscall"
)

// diskFull reports whether err is the disk refusing a write for want of
// space (or of the service user's quota).
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
