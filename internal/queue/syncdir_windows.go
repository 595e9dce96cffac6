package queue

import "os"

// syncDir is a no-op on Windows: NTFS journals directory entries, and a
// directory cannot be opened for flushing.
func syncDir(string) error { return nil }

// chownLike is a no-op on Windows: the log inherits the folder's ACL like
// the database does.
func chownLike(*os.File, string) error { return nil }
