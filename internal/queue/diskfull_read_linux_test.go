package queue_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestReadRetriesApplyAfterDiskFull: with the database on a 4 MiB tmpfs
// that is then filled, accepts go on into the accept log's room while
// applying them to the database fails for space, and reads fail with it.
// Before, once space was freed a read still returned the last failed
// apply's error without trying again: only a write (a create, a prune)
// made the committer apply. Now a read that finds the apply failed asks
// for one more try and answers with its outcome.
func TestReadRetriesApplyAfterDiskFull(t *testing.T) {
	dir := testutil.MountTinyDisk(t, "4m")
	s := MustOpenPath(t, filepath.Join(dir, "queue.db"), queue.Options{})
	ctx := context.Background()
	if _, _, err := s.Create(ctx, walReq(0)); err != nil {
		t.Fatal(err)
	}
	filler := testutil.FillDisk(t, dir)

	// Accept until the database cannot take them (or the log is full).
	var readErr error
	for i := 1; i < 5000 && readErr == nil; i++ {
		if _, _, err := s.Create(ctx, walReq(i)); err != nil {
			break
		}
		if i%100 == 0 {
			_, readErr = s.Stats(ctx)
		}
	}
	if _, err := s.Stats(ctx); err == nil {
		t.Fatalf("Stats on a full disk: no error (read error during accepts: %v)", readErr)
	} else if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Stats on a full disk: %v, want ENOSPC", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatalf("the first read after space was freed: %v", err)
	}
	if st.Unsent < 2 {
		t.Fatalf("after space was freed: %+v", st)
	}
}
