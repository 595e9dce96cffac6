//go:build !windows

package queue_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/posbridge/posbridge/internal/queue"
)

// TestAcceptLogOwnedLikeDatabase: root opening the service's database (a
// technician running doctor or posbridge by hand) makes the log the
// service's, so the service can open it after a crash.
func TestAcceptLogOwnedLikeDatabase(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	s := MustOpenPath(t, path, queue.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(queue.AcceptLogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 || st.Gid != 65534 {
		t.Fatalf("accept log owned by %d:%d, the database by 65534:65534", st.Uid, st.Gid)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
