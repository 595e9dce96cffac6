package queue

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
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
	c := &walCall{rec: r, enc: enc, done: make(chan error, 1)}
	s := w.s
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, false, ErrClosed
	}
	select {
	case w.reqs <- c:
	case <-s.closing:
		s.mu.RUnlock()
		return nil, false, ErrClosed
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, false, ctx.Err()
	}
	s.mu.RUnlock()
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

// loop is the log writer: it groups waiting Creates like the committer
// does (take what waits; then wait, up to four flushes' time, for the
// callers it just answered and those that queued during the flush),
// writes them as one append and flushes it.
func (w *wal) loop() {
	defer close(w.exited)
	calls := make([]*walCall, 0, w.s.opt.MaxBatch)
	errs := make([]error, 0, w.s.opt.MaxBatch)
	fill := newFiller[*walCall]()
	var want int
	var wait time.Duration
	for first := range w.reqs {
		if !first.state.CompareAndSwap(callQueued, callTaken) {
			continue
		}
		if w.broken != nil {
			first.done <- w.broken
			continue
		}
		start := time.Now()
		w.forgetApplied()
		g := walGroup{w: w, from: w.nextSeq}
		w.buf = w.buf[:0]
		calls = append(calls[:0], first)
		errs = append(errs[:0], g.add(first))
		for len(calls) < w.s.opt.MaxBatch {
			c, ok := fill.next(w.reqs, len(calls), want, start, wait)
			if !ok {
				break
			}
			if !c.state.CompareAndSwap(callQueued, callTaken) {
				continue
			}
			calls = append(calls, c)
			errs = append(errs, g.add(c))
		}
		fill.stop()
		g.end()
		var err error
		if len(g.logged) > 0 {
			t0 := time.Now()
			err = w.flush()
			d := time.Since(t0)
			w.flushing.Add(int64(d))
			wait = min(4*d, maxFillWait)
		}
		// The next group waits for the callers answered now (they tend to
		// come back) and for those that queued during this flush: two
		// cohorts that would otherwise keep alternating in half groups.
		want = len(calls) + len(w.reqs)
		if err != nil {
			g.undo()
			for _, c := range calls {
				c.done <- err
			}
		} else {
			w.publish(g.logged)
			for i, c := range calls {
				c.done <- unreject(errs[i])
			}
		}
		clear(calls)
		if w.off >= walCap {
			w.restart()
		}
	}
}

// walGroup is the group being filled.
type walGroup struct {
	w      *wal
	from   uint64
	rtx    *bolt.Tx // read transaction for idempotency keys, opened on first need
	b      *buckets // its buckets
	logged []*walEntry
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
func (g *walGroup) lookup(key string) (*record, error) {
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

// flush writes the group at the log's end and fdatasyncs it. A failure
// to grow the file rejects the group only; a failed write or flush
// breaks the log (what the kernel did with the pages is unknown).
func (w *wal) flush() error {
	end := w.off + int64(len(w.buf))
	if end > w.size {
		size := (end/walChunk + 1) * walChunk
		if _, err := w.f.WriteAt(make([]byte, size-w.size), w.size); err != nil {
			w.s.opt.Logger.Error("queue: grow accept log", "log", w.path, "err", err)
			return fmt.Errorf("queue: grow accept log: %w", err)
		}
		w.size = size
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
