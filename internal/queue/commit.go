package queue

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Group commit.
//
// Every write goes through one committer goroutine. It opens a bbolt
// read-write transaction for the first waiting call, runs it, and then runs
// every further call in the same transaction as it arrives, up to MaxBatch,
// before it commits once. Under load, calls that arrive while a commit is
// being written form the next batch.
//
// How long a batch stays open is adaptive. It takes what is already
// waiting; if the last batch had more calls than this one has so far, it
// waits for that many, but no longer than the last commit took. Callers
// that each wait for their answer come back together once a commit
// returns, so this collects them in one batch instead of committing the
// first few alone while the rest are still on their way; the calls run as
// they arrive, so the wait overlaps with the work. A lone caller (last
// batch: one call) never waits, and a burst that ends costs at most one
// wait of one commit's duration.
//
// An operation runs in two phases: checks, then writes. A check that fails
// returns reject(err): it wrote nothing, so the others in the batch go on.
// Any other error may leave partial writes: the whole transaction is rolled
// back and each call is run again alone. Operations may therefore run more
// than once and must keep no state between runs except their result fields,
// which each run overwrites.

// maxFillWait caps how long a batch waits for more calls (the last
// commit's duration, normally a fraction of a millisecond).
const maxFillWait = 2 * time.Millisecond

// call is one write waiting for the committer.
type call struct {
	fn    func(tx *bolt.Tx) error
	done  chan error   // buffered(1): the committer never blocks on a gone caller
	state atomic.Int32 // callQueued, then callTaken by the committer or callDropped by its caller
}

const (
	callQueued int32 = iota
	callTaken
	callDropped
)

// rejection marks an error from an operation's check phase: nothing was
// written, the batch may continue.
type rejection struct{ err error }

func (r *rejection) Error() string { return r.err.Error() }
func (r *rejection) Unwrap() error { return r.err }

func reject(err error) error { return &rejection{err: err} }

// unreject returns the error the caller should see.
func unreject(err error) error {
	var r *rejection
	if errors.As(err, &r) {
		return r.err
	}
	return err
}

// update runs fn in a group-committed transaction and returns once that
// transaction is durable (or failed). If ctx ends first, update returns
// ctx.Err() and fn may or may not be committed: callers that must know
// look the result up again (Create is idempotent by key for this reason).
// update never returns while fn is running or still to run in a batch it
// has joined (fn either never runs or has finished), so fn's result
// fields are the caller's to read; only the commit may follow.
func (s *Store) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &call{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.reqs <- c:
	case <-s.closing:
		s.mu.RUnlock()
		return ErrClosed
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		if c.state.CompareAndSwap(callQueued, callDropped) {
			return ctx.Err() // the committer will skip it
		}
		// Taken: it runs in the open batch, which ends within about
		// one commit.
		<-c.done
		return ctx.Err()
	}
}

// batch is the transaction the committer is filling. Operations reach it
// through Store.open (bucket handles opened once per transaction) and keep
// the checkout counters here, written once before the commit.
type batch struct {
	tx    *bolt.Tx
	b     *buckets
	stats *counters // nil until an operation changes them
}

// commitLoop is the committer. It exits when Close closes reqs, after
// committing every call already in the channel.
func (s *Store) commitLoop() {
	defer close(s.committed)
	calls := make([]*call, 0, s.opt.MaxBatch)
	errs := make([]error, 0, s.opt.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var want int           // calls in the last batch
	var wait time.Duration // the last commit's duration: the longest a batch waits for more
	for first := range s.reqs {
		if !first.state.CompareAndSwap(callQueued, callTaken) {
			continue // its caller gave up before it ran
		}
		start := time.Now()
		calls = append(calls[:0], first)
		tx, err := s.db.Begin(true)
		if err != nil {
			first.done <- fmt.Errorf("queue: begin: %w", err)
			want, wait = 0, 0
			continue
		}
		s.cur = &batch{tx: tx}
		errs = append(errs[:0], s.run(first))
		failed := isFailure(errs[0])
		armed := false
	fill:
		for !failed && len(calls) < s.opt.MaxBatch {
			var c *call
			var ok bool
			select {
			case c, ok = <-s.reqs:
			default:
				if len(calls) >= want {
					break fill
				}
				if !armed {
					left := wait - time.Since(start)
					if left <= 0 {
						break fill
					}
					timer.Reset(left)
					armed = true
				}
				select {
				case c, ok = <-s.reqs:
				case <-timer.C:
					armed = false
					break fill
				}
			}
			if !ok {
				break fill // closed: commit what we have; the range ends
			}
			if !c.state.CompareAndSwap(callQueued, callTaken) {
				continue
			}
			calls = append(calls, c)
			errs = append(errs, s.run(c))
			failed = isFailure(errs[len(errs)-1])
		}
		if armed {
			timer.Stop()
		}
		if !failed {
			err = s.cur.flush()
			if err == nil {
				t0 := time.Now()
				err = tx.Commit()
				wait = min(time.Since(t0), maxFillWait)
			} else {
				_ = tx.Rollback()
			}
		} else {
			_ = tx.Rollback()
		}
		s.cur = nil
		s.batches.Add(1)
		s.batched.Add(int64(len(calls)))
		want = len(calls)
		switch {
		case err == nil && !failed:
			for i, c := range calls {
				c.done <- unreject(errs[i])
			}
		case len(calls) == 1:
			if err == nil {
				err = errs[0]
			} else {
				err = fmt.Errorf("queue: commit: %w", err)
			}
			calls[0].done <- unreject(err)
		default:
			for _, c := range calls {
				s.runAlone(c)
			}
		}
		clear(calls) // drop references to finished calls
	}
}

// isFailure: the operation failed outside its check phase; its
// transaction must be rolled back.
func isFailure(err error) bool {
	var r *rejection
	return err != nil && !errors.As(err, &r)
}

// run runs one operation in the open batch.
func (s *Store) run(c *call) error { return c.fn(s.cur.tx) }

// runAlone runs c in a transaction of its own (after its batch failed).
func (s *Store) runAlone(c *call) {
	tx, err := s.db.Begin(true)
	if err != nil {
		c.done <- fmt.Errorf("queue: begin: %w", err)
		return
	}
	s.cur = &batch{tx: tx}
	defer func() { s.cur = nil }()
	opErr := c.fn(tx)
	if isFailure(opErr) {
		_ = tx.Rollback()
		c.done <- opErr
		return
	}
	if err := s.cur.flush(); err != nil {
		_ = tx.Rollback()
		c.done <- err
		return
	}
	if err := tx.Commit(); err != nil {
		c.done <- fmt.Errorf("queue: commit: %w", err)
		return
	}
	c.done <- unreject(opErr)
}

// flush writes what the batch's operations kept in memory.
func (bt *batch) flush() error {
	if bt.stats == nil || bt.b == nil {
		return nil
	}
	return bt.b.writeCounters(*bt.stats)
}
