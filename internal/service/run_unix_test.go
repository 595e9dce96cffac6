//go:build !windows

package service_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/service"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestMain doubles as the daemon child for TestRunUnderSignals.
func TestMain(m *testing.M) {
	if mode := os.Getenv("POSBRIDGE_SERVICE_CHILD"); mode != "" {
		os.Exit(child(mode, os.Getenv("POSBRIDGE_SERVICE_DIR")))
	}
	os.Exit(m.Run())
}

func child(mode, dir string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	run := func(ctx context.Context) error {
		st, err := queue.Open(filepath.Join(dir, "posbridge.db"), queue.Options{})
		if err != nil {
			return err
		}
		os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644)
		switch mode {
		case "fail":
			st.Close()
			return errors.New("gateway config incomplete")
		case "hang":
			select {} // ignores ctx: Stop must still return
		}
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // in-flight transitions finish
		if err := st.Close(); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "closed"), nil, 0o644)
	}
	err := service.Run(service.Config{Name: "posbridge-test", StopTimeout: 300 * time.Millisecond}, run, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "posbridge:", err)
		return 1
	}
	return 0
}

// TestRunUnderSignals runs service.Run in a real child process (kardianos
// picks the platform's service system; its RunWait is ours) and stops it
// with SIGTERM as systemd does.
func TestRunUnderSignals(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		signal   bool
		wantCode int
		closed   bool
	}{
		{"graceful", true, 0, true}, // stop: ctx canceled, db closed, exit 0
		{"hang", true, 1, false},    // run ignores ctx: exit 1 after StopTimeout
		{"fail", false, 1, false},   // run fails on its own: exit 1 → Restart=on-failure
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "POSBRIDGE_SERVICE_CHILD="+tc.mode, "POSBRIDGE_SERVICE_DIR="+dir)
			stderr := &testutil.SyncBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			exited := make(chan struct{})
			go func() { waited <- cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("child never became ready: %s", stderr.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if tc.signal {
				time.Sleep(50 * time.Millisecond) // let RunWait install its handler
				cmd.Process.Signal(syscall.SIGTERM)
			}
			var err error
			select {
			case err = <-waited:
			case <-time.After(20 * time.Second):
				t.Fatalf("child did not exit: %s", stderr.String())
			}
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			}
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.wantCode, stderr.String())
			}
			_, statErr := os.Stat(filepath.Join(dir, "closed"))
			if (statErr == nil) != tc.closed {
				t.Fatalf("database closed = %v, want %v; stderr:\n%s", statErr == nil, tc.closed, stderr.String())
			}
			// Whatever happened, the lock is gone with the process.
			st, err := queue.Open(filepath.Join(dir, "posbridge.db"), queue.Options{LockTimeout: 2 * time.Second})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			st.Close()
		})
	}
}
