package queue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
)

// damagedStore makes a database of n checkouts, closes it, garbles the
// element headers of the page holding checkout #victim's record (what a
// lost or torn write leaves), and reopens it. It returns the store and
// the checkouts' ids by index.
func damagedStore(t *testing.T, n, victim int) (*queue.Store, []string, *testutil.SyncBuffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "queue.db")
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = mustCreate(t, s, walReq(i)).ID
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.GarblePageHolding(t, path, []byte(walReq(victim).TillRef))
	var logs testutil.SyncBuffer
	s, err = queue.Open(path, queue.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("open the damaged file (its meta pages are whole): %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, ids, &logs
}

// TestDamagedPageIsAnError: bbolt panics on a page it cannot read, which
// crashed posbridge (and again at each restart, as soon as the page was
// read). Now a read that meets the damaged page returns an error matching
// ErrDamaged naming the file; from then on every write is refused with it
// (nothing more is written into a damaged file), reads of other pages go
// on, and Close returns.
func TestDamagedPageIsAnError(t *testing.T) {
	s, ids, logs := damagedStore(t, 3000, 1501)
	ctx := context.Background()
	if s.Damaged() != nil {
		t.Fatalf("damaged before any read: %v", s.Damaged())
	}
	_, err := s.Get(ctx, ids[1501])
	if !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("Get on the damaged page: %v, want ErrDamaged", err)
	}
	if d := s.Damaged(); d == nil || !bytes.Contains([]byte(d.Error()), []byte(s.Path())) {
		t.Fatalf("Damaged() = %v, want the damage naming %s", d, s.Path())
	}
	if got, err := s.Get(ctx, ids[0]); err != nil || got.ID != ids[0] {
		t.Fatalf("Get on a whole page: %+v, %v", got, err)
	}
	if _, _, err := s.Create(ctx, walReq(5000)); !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("Create on a damaged file: %v, want ErrDamaged", err)
	}
	if _, err := s.Transition(ctx, ids[0], pos.StateCanceled, "till", nil); !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("Transition on a damaged file: %v, want ErrDamaged", err)
	}
	if got, err := s.Get(ctx, ids[0]); err != nil || got.State != pos.StateQueued {
		t.Fatalf("the refused transition changed the checkout: %+v, %v", got, err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("Close: %v", err)
	}
	// Said once, at the first meeting, with what bbolt met.
	if n := strings.Count(logs.String(), "database file is damaged"); n != 1 || !strings.Contains(logs.String(), "go.etcd.io/bbolt") {
		t.Errorf("the damage logged %d times:\n%s", n, logs.String())
	}
}

// TestDamagedPageMetByCommitter: the first to meet the damaged page is a
// write (the committer, in its own goroutine, where a panic took the
// whole process down). The write returns ErrDamaged, its transaction is
// rolled back and the write lock freed: reads go on and Close returns.
func TestDamagedPageMetByCommitter(t *testing.T) {
	s, ids, _ := damagedStore(t, 3000, 1501)
	ctx := context.Background()
	if _, err := s.Transition(ctx, ids[1501], pos.StateCanceled, "till", nil); !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("Transition of the checkout on the damaged page: %v, want ErrDamaged", err)
	}
	if _, err := s.Transition(ctx, ids[0], pos.StateCanceled, "till", nil); !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("a later Transition: %v, want ErrDamaged", err)
	}
	if got, err := s.Get(ctx, ids[2999]); err != nil || got.State != pos.StateQueued {
		t.Fatalf("Get on a whole page after the damage: %+v, %v", got, err)
	}
	if _, err := s.Stats(ctx); err != nil {
		t.Fatalf("Stats after the damage: %v", err)
	}
	if err := s.Close(); err != nil && !errors.Is(err, queue.ErrDamaged) {
		t.Fatalf("Close: %v", err)
	}
}
