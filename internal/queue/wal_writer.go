package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// The accept log's writer: it groups Create calls, settles them, writes
// and flushes each group, then hands its checkouts to the committer
// (wal.go describes the log).

// create hands a new checkout to the log writer and waits until it is
// flushed (or found to exist).
func (w *wal) create(ctx context.Context, r *record, enc []byte) (*record, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	c := &walCall{rec: r, enc: enc, done: make(chan error, 1)}
	if !w.inbox.put(c) {
		return nil, false, ErrClosed
	}
	select {
	case err := <-c.done:
		return c.out, c.existing, err
	case <-ctx.Done():
		if c.state.CompareAndSwap(callQueued, callDropped) {
			return nil, false, ctx.Err()
		}
		<-c.done // taken: its group is flushed within about one fdatasync
		return nil, false, ctx.Err()
	}
}

// walInbox is where Create calls wait for the log writer: a slice under a
// mutex rather than a channel, so that the writer is woken once when as
// many calls as it wants have arrived, not once per call (64 callers
// would otherwise hand the CPU back and forth with the writer 64 times
// per group).
type walInbox struct {
	mu     sync.Mutex
	calls  []*walCall
	want   int           // wake the writer when this many wait (0: do not)
	wake   chan struct{} // cap 1
	closed bool
}

// put queues a call; false once the inbox is closed.
func (in *walInbox) put(c *walCall) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return false
	}
	in.calls = append(in.calls, c)
	if in.want > 0 && len(in.calls) >= in.want {
		in.want = 0
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// take moves up to limit waiting calls to buf. When none wait and arm is
// positive, the writer is woken once arm calls have arrived (or at
// close). closed reports that nothing more will come.
func (in *walInbox) take(buf []*walCall, limit, arm int) (_ []*walCall, closed bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := min(len(in.calls), limit)
	buf = append(buf, in.calls[:n]...)
	rest := copy(in.calls, in.calls[n:])
	clear(in.calls[rest:])
	in.calls = in.calls[:rest]
	in.want = 0
	if n == 0 && !in.closed {
		in.want = arm
	}
	return buf, in.closed && rest == 0
}

// close stops put and wakes the writer to finish.
func (in *walInbox) close() {
	in.mu.Lock()
	in.closed = true
	in.mu.Unlock()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// loop is the log writer: it groups waiting Creates like the committer
// does (take what waits; then wait, up to four flushes' time, for the
// callers it just answered and those that queued during the flush, woken
// by the inbox once they are all there), writes them as one append and
// flushes it.
func (w *wal) loop() {
	defer close(w.exited)
	debug.SetPanicOnFault(true) // a fault reading the mapped file is a damaged page (damage.go)
	in := &w.inbox
	maxBatch := w.s.opt.MaxBatch
	calls := make([]*walCall, 0, maxBatch)
	errs := make([]error, 0, maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var want int
	var wait time.Duration
	for {
		calls, errs = calls[:0], errs[:0]
		calls, closed := in.take(calls, maxBatch, 1)
		if len(calls) == 0 {
			if closed {
				return
			}
			<-in.wake
			continue
		}
		start := time.Now()
		w.forgetApplied()
		g := walGroup{w: w, from: w.nextSeq}
		w.buf = w.buf[:0]
		n := 0 // calls settled
		for {
			for ; n < len(calls); n++ {
				errs = append(errs, g.settle(calls[n]))
			}
			if len(calls) >= maxBatch {
				break
			}
			got := len(calls)
			arm := 0 // wait for this many more (0: take what waits and go)
			if need, left := want-got, wait-time.Since(start); need > 0 && left > 0 && !closed {
				arm = need
				timer.Reset(left)
			}
			calls, closed = in.take(calls, maxBatch-got, arm)
			if len(calls) > got || arm == 0 {
				timer.Stop()
				if len(calls) > got {
					continue
				}
				break
			}
			select {
			case <-in.wake:
				timer.Stop()
			case <-timer.C:
				want = 0 // time is up: take what waits, then flush
			}
		}
		g.end()
		var err error
		if len(g.logged) > 0 {
			t0 := time.Now()
			err = w.flush()
			if errors.Is(err, errLogGrow) && w.off > 0 && w.restart(g.from-1) {
				// The disk takes no more: what the log holds is applied,
				// so the group goes at offset 0, inside the file.
				err = w.flush()
			}
			d := time.Since(t0)
			w.flushing.Add(int64(d))
			wait = min(4*d, maxFillWait)
		}
		// The next group waits for the callers answered now (they tend to
		// come back) and for those that queued during this flush: two
		// cohorts that would otherwise keep alternating in half groups.
		want = len(calls) + in.waiting()
		if err != nil {
			g.undo()
			for i, c := range calls {
				if errs[i] != errDropped {
					c.done <- err
				}
			}
		} else {
			w.publish(g.logged)
			for i, c := range calls {
				if errs[i] != errDropped {
					c.done <- unreject(errs[i])
				}
			}
		}
		clear(calls)
		if w.off >= walCap {
			w.restart(w.nextSeq - 1)
		}
	}
}

// waiting is how many calls wait in the inbox.
func (in *walInbox) waiting() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.calls)
}

// errDropped marks a call its caller gave up on before the writer took
// it: it gets no answer.
var errDropped = errors.New("queue: call dropped by its caller")

// walGroup is the group being filled.
type walGroup struct {
	w      *wal
	from   uint64
	rtx    *bolt.Tx // read transaction for idempotency keys, opened on first need
	b      *buckets // its buckets
	logged []*walEntry
}

// settle takes one call into the group (errDropped if its caller gave
// up first) and settles it.
func (g *walGroup) settle(c *walCall) error {
	if !c.state.CompareAndSwap(callQueued, callTaken) {
		return errDropped
	}
	if b := g.w.broken; b != nil {
		return b
	}
	return g.add(c)
}

// add settles one call: a known key answers it (or rejects it); a new
// checkout gets the next sequence and its frame.
func (g *walGroup) add(c *walCall) error {
	w := g.w
	r := c.rec
	if key := r.IdempotencyKey; key != "" {
		old, err := g.lookup(key)
		if err != nil {
			return err
		}
		if old != nil {
			if old.Checkout.RequestHash != r.RequestHash {
				return reject(pos.FieldErrorf(pos.EConflict, "idempotency_key",
					"key %q was already used for a different request (checkout %s)", key, old.ID))
			}
			c.out, c.existing = old, true
			return nil
		}
	}
	seq := w.nextSeq
	w.nextSeq++
	// The record is this call's own (its caller waits): it becomes the
	// logged checkout.
	r.Seq, r.ID, r.InvoiceNumber = seq, w.s.formatID(seq), w.s.formatInvoice(seq)
	e := &walEntry{rec: r, enc: c.enc}
	if r.IdempotencyKey != "" {
		w.pending[r.IdempotencyKey] = e
	}
	g.logged = append(g.logged, e)
	w.appendFrame(seq, c.enc)
	c.out, c.existing = r, false
	return nil
}

// lookup finds a checkout by idempotency key: logged ones first, then
// the database. The applied entries were forgotten before the read
// transaction began, so every key is in one of the two.
func (g *walGroup) lookup(key string) (_ *record, err error) {
	defer g.w.s.catchDamage(&err)
	if e := g.w.pending[key]; e != nil {
		return e.rec, nil
	}
	if g.rtx == nil {
		tx, err := g.w.s.db.Begin(false)
		if err != nil {
			return nil, fmt.Errorf("queue: begin read: %w", err)
		}
		g.rtx = tx
	}
	if g.b == nil {
		g.b = g.w.s.openTx(g.rtx)
	}
	b := g.b
	v := b.idem.Get([]byte(key))
	if v == nil {
		return nil, nil
	}
	old, err := b.load(seqOf(v))
	if err != nil {
		return nil, err
	}
	if old == nil {
		return nil, errIndex("idempotency key %q points to missing checkout #%d", key, seqOf(v))
	}
	return old, nil
}

// end closes the group's read transaction and pads its frames to a page.
func (g *walGroup) end() {
	if g.rtx != nil {
		_ = g.rtx.Rollback()
		g.rtx, g.b = nil, nil
	}
	if n := len(g.w.buf) % walPage; n != 0 {
		g.w.buf = append(g.w.buf, make([]byte, walPage-n)...)
	}
}

// undo forgets a group that was not flushed.
func (g *walGroup) undo() {
	w := g.w
	for _, e := range g.logged {
		if k := e.rec.IdempotencyKey; k != "" && w.pending[k] == e {
			delete(w.pending, k)
		}
	}
	w.nextSeq = g.from
}

func (w *wal) appendFrame(seq uint64, enc []byte) {
	n := walFixed + len(enc)
	b := w.buf
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	crcAt := len(b)
	b = binary.BigEndian.AppendUint32(b, 0)
	start := len(b)
	b = append(b, w.inst...)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = append(b, enc...)
	binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[start:], castagnoli))
	w.buf = b
}

// errLogGrow: the log file could not be extended (disk full); only the
// group being written fails.
var errLogGrow = errors.New("queue: grow accept log")

// flush writes the group at the log's end and fdatasyncs it. A failure
// to grow the file rejects the group only (errLogGrow); a failed write or
// flush breaks the log (what the kernel did with the pages is unknown).
func (w *wal) flush() error {
	end := w.off + int64(len(w.buf))
	if end > w.size {
		if err := w.grow(end); err != nil {
			w.s.opt.Logger.Error("queue: grow accept log", "log", w.path, "err", err)
			return fmt.Errorf("%w: %w", errLogGrow, err)
		}
	}
	if _, err := w.f.WriteAt(w.buf, w.off); err != nil {
		return w.fail(fmt.Errorf("write: %w", err))
	}
	if err := datasync(w.f); err != nil {
		return w.fail(fmt.Errorf("fdatasync: %w", err))
	}
	w.off = end
	w.batches.Add(1)
	return nil
}

// grow extends the file with written zeros to a chunk past end, or, when
// the disk will not take a chunk, to end (a page boundary).
func (w *wal) grow(end int64) error {
	size := (end/walChunk + 1) * walChunk
	_, err := w.f.WriteAt(make([]byte, size-w.size), w.size)
	if err != nil {
		size = end
		_, err = w.f.WriteAt(make([]byte, size-w.size), w.size)
	}
	if err != nil {
		return err
	}
	w.size = size
	return nil
}

func (w *wal) fail(err error) error {
	w.s.opt.Logger.Error("queue: accept log failed; no more checkouts are accepted until posbridge restarts",
		"log", w.path, "err", err)
	w.broken = fmt.Errorf("%w: %w", ErrLogFailed, err)
	return w.broken
}

// publish hands a flushed group to the committer.
func (w *wal) publish(es []*walEntry) {
	if len(es) == 0 {
		return
	}
	w.inLog = append(w.inLog, es...)
	w.mu.Lock()
	w.queue = append(w.queue, es...)
	w.mu.Unlock()
	w.logged.Add(int64(len(es)))
	last := es[len(es)-1].rec.Seq
	w.durable.Store(last)
	if last-w.applied.Load() >= applyBatch {
		w.poke()
	} else {
		select {
		case w.later <- struct{}{}:
		default:
		}
	}
}

// poke wakes the committer to apply the log now: somebody waits for it,
// or applyBatch checkouts are waiting.
func (w *wal) poke() {
	select {
	case w.nudge <- struct{}{}:
	default:
	}
}
