package queue

import (
	"os"
	"syscall"
)

// datasync flushes f's data and what is needed to read it back
// (fdatasync), as bbolt does for the database.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
