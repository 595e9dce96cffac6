package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
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
	if err := s.refuseDamaged(); err != nil {
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

	applying []*walEntry // accept log entries applied in this transaction
	upTo     uint64      // the last sequence applied, in this transaction or before
}

// commitLoop is the committer. It exits when Close closes reqs, after
// committing every call already in the channel and applying the whole
// accept log. Besides calls, a nudge from the accept log starts a batch:
// every batch first applies what the log has flushed (applyLog), and
// again before each further call, so a call never misses a checkout whose
// accept returned before the call was made. A transaction applies at most
// applyMax: when more waits, a call's batch is preceded by transactions
// that apply the rest (catchUp), and a call that arrives in a batch that
// cannot take it all is left for the next batch.
func (s *Store) commitLoop() {
	defer close(s.committed)
	debug.SetPanicOnFault(true) // a fault reading the mapped file is a damaged page (damage.go)
	calls := make([]*call, 0, s.opt.MaxBatch)
	errs := make([]error, 0, s.opt.MaxBatch)
	fill := newFiller[*call]()
	var nudge, later <-chan struct{}
	if s.wal != nil {
		nudge, later = s.wal.nudge, s.wal.later
	}
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	delayed := false        // delay runs for something in the log
	var lastApply time.Time // when the last transaction that applied the log ended
	var want int            // calls in the last batch
	var wait time.Duration  // the last commit's duration: the longest a batch waits for more
	var carry *call         // taken for the last batch but left for this one (the log was too far ahead)
	for {
		var first *call
		if carry != nil {
			first, carry = carry, nil
		} else {
			select {
			case c, ok := <-s.reqs:
				if !ok {
					if err := s.applyAlone(); err != nil {
						s.opt.Logger.Error("queue: apply the accept log at close; it is applied at the next start", "err", err)
					}
					return
				}
				if !c.state.CompareAndSwap(callQueued, callTaken) {
					continue // its caller gave up before it ran
				}
				first = c
			case <-nudge:
			case <-later:
				// The first apply after a quiet spell goes at once (a lone
				// checkout reaches its terminal without delay); under a
				// burst, applies come at most every applyDelay.
				if since := time.Since(lastApply); since < applyDelay {
					if !delayed {
						delay.Reset(applyDelay - since)
						delayed = true
					}
					continue
				}
			case <-delay.C:
			}
		}
		if delayed {
			delay.Stop()
			delayed = false
		}
		if d := s.refuseDamaged(); d != nil {
			// Nothing more is written to a damaged file: the call is
			// refused, and readers waiting for the log learn why.
			if first != nil {
				first.done <- d
			}
			if s.wal != nil {
				s.wal.applyFailed(d)
			}
			continue
		}
		if first != nil {
			// A call must see every checkout accepted before it was made;
			// the batch's transaction applies at most applyMax of them.
			if err := s.catchUp(); err != nil {
				first.done <- err
				continue
			}
		}
		start := time.Now()
		calls, errs = calls[:0], errs[:0]
		tx, err := s.db.Begin(true)
		if err != nil {
			if first != nil {
				first.done <- fmt.Errorf("queue: begin: %w", err)
			}
			want, wait = 0, 0
			continue
		}
		s.cur = s.newBatch(tx)
		failed := false
		if err := s.applyLog(); err != nil {
			failed = true
			if first != nil {
				calls, errs = append(calls, first), append(errs, err)
			}
		} else if first != nil {
			calls = append(calls, first)
			errs = append(errs, s.run(first))
			failed = isFailure(errs[0])
		}
		for !failed && len(calls) < s.opt.MaxBatch {
			c, ok := fill.next(s.reqs, len(calls), want, start, wait)
			if !ok {
				break // full enough, or closed: commit what we have; the next receive ends the loop
			}
			if !c.state.CompareAndSwap(callQueued, callTaken) {
				continue
			}
			if s.logBeyondBatch() {
				carry = c // first in the next batch, after the rest of the log
				break
			}
			calls = append(calls, c)
			if err := s.applyLog(); err != nil {
				errs = append(errs, err)
				failed = true
				break
			}
			errs = append(errs, s.run(c))
			failed = isFailure(errs[len(errs)-1])
		}
		fill.stop()
		if !failed {
			err = s.flush(s.cur)
			if err == nil {
				t0 := time.Now()
				err = s.commit(tx)
				wait = min(time.Since(t0), maxFillWait)
			} else {
				s.rollback(tx)
			}
		} else {
			s.rollback(tx)
		}
		bt := s.cur
		s.cur = nil
		ok := err == nil && !failed
		if s.wal != nil && len(bt.applying) > 0 {
			lastApply = time.Now()
			if ok {
				s.wal.appliedTo(bt.upTo)
			} else {
				cause := err
				if cause == nil {
					cause = errors.New("the batch with them failed")
				}
				s.wal.giveBack(bt.applying, cause)
			}
		}
		if len(calls) == 0 {
			continue
		}
		s.batches.Add(1)
		s.batched.Add(int64(len(calls)))
		want = len(calls)
		switch {
		case ok:
			for i, c := range calls {
				c.done <- unreject(errs[i])
			}
		case len(calls) == 1 && len(bt.applying) == 0:
			if err == nil {
				err = errs[0]
			} else {
				err = fmt.Errorf("queue: commit: %w", err)
			}
			calls[0].done <- unreject(err)
		default:
			// Apart: the log first, then each call in a transaction of
			// its own.
			if aerr := s.applyAlone(); aerr != nil {
				for _, c := range calls {
					c.done <- aerr
				}
				break
			}
			for _, c := range calls {
				s.runAlone(c)
			}
		}
		clear(calls) // drop references to finished calls
	}
}

// newBatch starts the committer's batch on tx.
func (s *Store) newBatch(tx *bolt.Tx) *batch {
	bt := &batch{tx: tx}
	if s.wal != nil {
		bt.upTo = s.wal.applied.Load()
	}
	return bt
}

// applyLog applies, in the open batch, the checkouts the accept log has
// flushed since the batch last looked.
func (s *Store) applyLog() (err error) {
	defer s.catchDamage(&err)
	w := s.wal
	if w == nil || w.durable.Load() <= s.cur.upTo || w.hold.Load() {
		return nil
	}
	room := applyMax - len(s.cur.applying)
	if room <= 0 {
		return nil // the next transaction goes on (see appliedTo)
	}
	es := w.take(room)
	if len(es) == 0 {
		return nil
	}
	s.cur.applying = append(s.cur.applying, es...)
	for i, e := range es {
		if e.rec.Seq != s.cur.upTo+1+uint64(i) {
			return errIndex("accept log entry #%d does not follow #%d", e.rec.Seq, s.cur.upTo+uint64(i))
		}
	}
	if err := s.open(s.cur.tx).insertNew(es); err != nil {
		return fmt.Errorf("queue: apply %d accepted checkouts: %w", len(es), err)
	}
	s.cur.upTo = es[len(es)-1].rec.Seq
	return nil
}

// catchUp applies the accept log in transactions of its own until what
// was flushed to it when catchUp was called is at most applyMax ahead of
// the database: a batch's first applyLog then takes all of it, so the
// call run after it sees every checkout whose accept returned before the
// call was made.
func (s *Store) catchUp() error {
	w := s.wal
	if w == nil {
		return nil
	}
	target := w.durable.Load()
	for target > w.applied.Load()+applyMax && !w.hold.Load() {
		if err := s.applyOnce(); err != nil {
			return err
		}
	}
	return nil
}

// logBeyondBatch reports that the open batch cannot apply everything
// flushed to the accept log so far (it would pass applyMax): a call taken
// now must wait for the next batch, which catches up first.
func (s *Store) logBeyondBatch() bool {
	w := s.wal
	if w == nil || w.hold.Load() {
		return false
	}
	room := uint64(applyMax - min(len(s.cur.applying), applyMax))
	return w.durable.Load() > s.cur.upTo+room
}

// applyAlone applies the whole accept log in transactions of its own.
func (s *Store) applyAlone() error {
	w := s.wal
	for w != nil && w.durable.Load() > w.applied.Load() && !w.hold.Load() {
		if err := s.applyOnce(); err != nil {
			return err
		}
	}
	return nil
}

// applyOnce applies up to applyMax logged checkouts in one transaction.
func (s *Store) applyOnce() error {
	w := s.wal
	if d := s.refuseDamaged(); d != nil {
		w.applyFailed(d)
		return d
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("queue: begin: %w", err)
	}
	s.cur = s.newBatch(tx)
	bt := s.cur
	defer func() { s.cur = nil }()
	err = s.applyLog()
	if err == nil {
		err = s.flush(bt)
	}
	if err == nil {
		if err = s.commit(tx); err != nil {
			err = fmt.Errorf("queue: commit: %w", err)
		}
	} else {
		s.rollback(tx)
	}
	if len(bt.applying) > 0 {
		if err != nil {
			w.giveBack(bt.applying, err)
		} else {
			w.appliedTo(bt.upTo)
		}
	}
	return err
}

// filler gives a batch its further calls: whatever already waits, and,
// while the batch has fewer than it wants, what arrives until wait after
// the batch started (one timer, armed at most once per batch).
type filler[T any] struct {
	timer *time.Timer
	armed bool
}

func newFiller[T any]() *filler[T] {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &filler[T]{timer: t}
}

// next returns the next call for a batch that has have calls and wants
// want, or false when the batch should close: nothing more is worth
// waiting for, or reqs is closed.
func (f *filler[T]) next(reqs <-chan T, have, want int, start time.Time, wait time.Duration) (T, bool) {
	select {
	case c, ok := <-reqs:
		return c, ok
	default:
	}
	var zero T
	if have >= want {
		return zero, false
	}
	if !f.armed {
		left := wait - time.Since(start)
		if left <= 0 {
			return zero, false
		}
		f.timer.Reset(left)
		f.armed = true
	}
	select {
	case c, ok := <-reqs:
		return c, ok
	case <-f.timer.C:
		f.armed = false
		return zero, false
	}
}

// stop ends the batch's wait.
func (f *filler[T]) stop() {
	if f.armed {
		f.timer.Stop()
		f.armed = false
	}
}

// isFailure: the operation failed outside its check phase; its
// transaction must be rolled back.
func isFailure(err error) bool {
	var r *rejection
	return err != nil && !errors.As(err, &r)
}

// run runs one operation in the open batch.
func (s *Store) run(c *call) (err error) {
	defer s.catchDamage(&err)
	return c.fn(s.cur.tx)
}

// flush is bt.flush, commit tx.Commit and rollback tx.Rollback, each
// turning a panic in bbolt into ErrDamaged (damage.go). A commit that
// panicked is rolled back, so the write lock is free again.
func (s *Store) flush(bt *batch) (err error) {
	defer s.catchDamage(&err)
	return bt.flush()
}

func (s *Store) commit(tx *bolt.Tx) (err error) {
	defer func() {
		if errors.Is(err, ErrDamaged) {
			s.rollback(tx)
		}
	}()
	defer s.catchDamage(&err)
	return tx.Commit()
}

func (s *Store) rollback(tx *bolt.Tx) {
	var err error
	defer s.catchDamage(&err)
	_ = tx.Rollback()
}

// runAlone runs c in a transaction of its own (after its batch failed).
func (s *Store) runAlone(c *call) {
	if d := s.refuseDamaged(); d != nil {
		c.done <- d
		return
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		c.done <- fmt.Errorf("queue: begin: %w", err)
		return
	}
	s.cur = s.newBatch(tx)
	defer func() { s.cur = nil }()
	opErr := s.run(c)
	if isFailure(opErr) {
		s.rollback(tx)
		c.done <- opErr
		return
	}
	if err := s.flush(s.cur); err != nil {
		s.rollback(tx)
		c.done <- err
		return
	}
	if err := s.commit(tx); err != nil {
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
