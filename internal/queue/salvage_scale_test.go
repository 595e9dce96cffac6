package queue_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/queue"
)

// TestSalvageScale measures a salvage of $POSBRIDGE_SALVAGE_N checkouts
// (skipped without it): go test -run TestSalvageScale -v with the
// variable set. It logs the time; it asserts only the result.
func TestSalvageScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("POSBRIDGE_SALVAGE_N"))
	if n <= 0 {
		t.Skip("set POSBRIDGE_SALVAGE_N to measure")
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	createMany(t, s, 0, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	rep, err := queue.Salvage(context.Background(), path, filepath.Join(t.TempDir(), "new.db"), queue.SalvageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("salvage of %d checkouts: %v (report says %v); copied %v", n, time.Since(t0), rep.Elapsed, rep.Copied)
	if !rep.Complete() || rep.Copied["queued"] != n {
		t.Fatalf("report %+v", rep)
	}
}
