//go:build !windows

package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
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

// TestAcceptLogFileSizeLimit accepts checkouts in a child process (this
// test binary run again) whose files may not grow past 1 MiB less a page
// (RLIMIT_FSIZE: the kernel refuses the write, as on a full disk): the
// database fits, the log's 1 MiB chunk does not. The log makes do with
// what it can get, one page at a time, and starts again at offset 0 once
// what it holds is applied. Before, every accept failed ("grow accept
// log: file too large") although the database had room.
func TestAcceptLogFileSizeLimit(t *testing.T) {
	const n = 400 // one page of log each: more than fits below the limit
	if path := os.Getenv("QUEUE_TEST_FSIZE_CHILD"); path != "" {
		s, err := queue.Open(path, queue.Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		lim.Cur = 1<<20 - 4096
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		for i := range n {
			if _, _, err := s.Create(context.Background(), walReq(i)); err != nil {
				fmt.Printf("error: Create %d: %v\n", i, err)
				os.Exit(1)
			}
		}
		if err := s.Close(); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ok")
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	cmd := testutil.SelfCommand("-test.run=^TestAcceptLogFileSizeLimit$")
	cmd.Env = append(os.Environ(), "QUEUE_TEST_FSIZE_CHILD="+path)
	out, err := cmd.Output()
	if err != nil || !strings.HasSuffix(string(out), "ok\n") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := MustOpenPath(t, path, queue.Options{})
	checkAll(t, s, n, nil)
}
