package queue

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Group commit.
//
// Every write goes through one committer goroutine. It takes the first
// waiting call, then whatever else is already waiting (up to MaxBatch), runs
// them all in one bbolt read-write transaction and commits once. While it
// commits, new calls pile up and form the next batch, so under load many
// calls share one fsync, and a lone caller waits for nothing but its own
// commit (unlike bbolt's db.Batch, which waits MaxBatchDelay for company).
//
// An operation runs in two phases: checks, then writes. A check that fails
// returns reject(err): it wrote nothing, so the others in the batch go on.
// Any other error may leave partial writes: the whole transaction is rolled
// back and each call is run again alone. Operations may therefore run more
// than once and must keep no state between runs except their result fields,
// which each run overwrites.

// call is one write waiting for the committer.
type call struct {
	fn   func(tx *bolt.Tx) error
	done chan error // buffered(1): the committer never blocks on a gone caller
}

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
// ctx.Err() but fn may still be committed later: callers that must know
// look the result up again (Create is idempotent by key for this reason).
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
		return ctx.Err()
	}
}

// commitLoop is the committer. It exits when Close closes reqs, after
// committing every call already in the channel.
func (s *Store) commitLoop() {
	defer close(s.committed)
	batch := make([]*call, 0, s.opt.MaxBatch)
	for first := range s.reqs {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < s.opt.MaxBatch {
			select {
			case c, ok := <-s.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, c)
			default:
				break fill
			}
		}
		s.runBatch(batch)
		clear(batch) // drop references to finished calls
	}
}

// runBatch commits calls together; if one fails outside its check phase
// (or the commit fails), it rolls back and runs each alone.
func (s *Store) runBatch(calls []*call) {
	errs := make([]error, len(calls))
	opFailed := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, c := range calls {
			errs[i] = c.fn(tx)
			var r *rejection
			if errs[i] != nil && !errors.As(errs[i], &r) {
				opFailed = true
				return errs[i]
			}
		}
		return nil
	})
	if err != nil && !opFailed {
		err = fmt.Errorf("queue: commit: %w", err)
	}
	if err == nil {
		for i, c := range calls {
			c.done <- unreject(errs[i])
		}
		return
	}
	if len(calls) == 1 {
		calls[0].done <- unreject(err)
		return
	}
	for _, c := range calls {
		s.runBatch([]*call{c})
	}
}
