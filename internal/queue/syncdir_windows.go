package queue

// syncDir is a no-op on Windows: NTFS journals directory entries, and a
// directory cannot be opened for flushing.
func syncDir(string) error { return nil }
