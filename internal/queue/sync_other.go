//go:build !linux

package queue

import "os"

// datasync flushes f (fsync, or FlushFileBuffers on Windows).
func datasync(f *os.File) error { return f.Sync() }
