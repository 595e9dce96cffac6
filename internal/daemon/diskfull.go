package daemon

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/queue"
)

// diskFullRetry is the Retry-After of a request refused for a full disk.
const diskFullRetry = 30 * time.Second

// diskFullReason is what /v1/status (reason) and /readyz (accepting
// checkouts) say while the disk is full.
const diskFullReason = "the bridge's disk is full: it cannot store checkouts (a create is refused and nothing is stored) " +
	"or read its queue until space is freed in its data_dir; it recovers by itself"

// diskProbeEvery is how often, while the disk is full, the store is read
// (which applies what the accept log holds) to learn that space is back.
var diskProbeEvery = 2 * time.Second

// diskWatch tells the till and the diagnostics that the disk is full, and
// that it no longer is. Its reason shares acceptErr with the failed
// accept log, which it never replaces nor clears: that one lasts until a
// restart.
type diskWatch struct {
	acceptErr *atomic.Pointer[string]
	reason    *string
	// probe reads the store: nil once it can write again.
	probe    func(context.Context) error
	watching atomic.Bool
}

// diskProbe reads the store's counters: a read first applies what the
// accept log holds (trying again after a failed apply), which tells
// whether the disk takes writes again.
func diskProbe(s *queue.Store) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := s.Stats(ctx)
		return err
	}
}

func newDiskWatch(acceptErr *atomic.Pointer[string], probe func(context.Context) error) *diskWatch {
	r := diskFullReason
	return &diskWatch{acceptErr: acceptErr, reason: &r, probe: probe}
}

// full records that a write failed for space, and watches for its return.
func (w *diskWatch) full() {
	w.acceptErr.CompareAndSwap(nil, w.reason)
	if w.acceptErr.Load() == w.reason && w.watching.CompareAndSwap(false, true) {
		go w.watch()
	}
}

// isFull reports whether the disk was last found full.
func (w *diskWatch) isFull() bool { return w.acceptErr.Load() == w.reason }

// check probes the store once: the disk is no longer full when the store
// can be read (everything the accept log holds was applied, so the log
// can start again at its beginning). It reports whether it still is.
func (w *diskWatch) check() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := w.probe(ctx)
	switch {
	case err == nil:
		w.acceptErr.CompareAndSwap(w.reason, nil)
		return false
	case diskFull(err):
		w.full()
		return true
	}
	return w.isFull()
}

// watch probes until the disk takes writes again (or the store is
// closed), so /readyz recovers without a till having to try.
func (w *diskWatch) watch() {
	defer w.watching.Store(false)
	for w.isFull() {
		time.Sleep(diskProbeEvery)
		if !w.isFull() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := w.probe(ctx)
		cancel()
		if errors.Is(err, queue.ErrClosed) {
			return
		}
		if err == nil {
			w.acceptErr.CompareAndSwap(w.reason, nil)
		}
	}
}

// refuse turns a store error caused by a full disk into a 503 with
// Retry-After that says what the till may do (what is the rest of the
// sentence after "the bridge's disk is full; "), and records it.
// Other errors are returned unchanged.
func (w *diskWatch) refuse(err error, what string) error {
	if err == nil || !diskFull(err) {
		return err
	}
	w.full()
	return &api.UnavailableError{Message: "the bridge's disk is full; " + what, RetryAfter: diskFullRetry, Err: err}
}
