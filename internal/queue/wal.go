package queue

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The accept log (docs/queue.md, "The accept log").
//
// A bbolt commit costs two fdatasyncs plus every B-tree page it changed;
// an accept needs only its record to be on disk. So Create appends the new
// checkout to a small log file beside the database (path + ".wal") and
// answers once that append is fdatasynced: one flush per group of accepts,
// the cheapest durable write the disk has. The committer then applies the
// logged checkouts to bbolt in the same transaction as its next batch (it
// is nudged after every append), many at a time.
//
// Readers see their writes: every read first waits until everything
// durable in the log when it started is applied (normally at once; under
// a burst of accepts, about one commit). Writes need no wait: the
// committer applies what is durable before it runs each call.
//
// Frames: u32 length, u32 CRC-32C of the payload, payload = 4-byte
// database instance, u64 sequence, the encoded record. Each group starts
// on a 4 KiB boundary and is padded with zeros to the next one, so a torn
// write never touches a page of an acknowledged group. A zero length at a
// page boundary ends the log; a bad CRC, a sequence that does not follow
// the previous frame's, or a frame that overruns the file ends it too (an
// unacknowledged, torn group). Padding of 1-3 bytes is shorter than a
// length field: what is read there as a length takes bytes of the next
// group's first frame, so zeros up to a page boundary that do not start a
// valid frame are padding too. Sequences in the log are consecutive; the
// checkout bucket's sequence says how far the database has applied them.
// Once everything in the log is applied, writing starts again at offset
// 0 (when the log has passed walCap): older frames there have sequences
// below the new ones, so they can never be taken for a continuation. On a
// clean Close the log is removed; after a crash, Open applies what the
// database is missing before anything else runs and then empties the
// log, so that frames a crash left behind its end (never acknowledged)
// cannot meet a later life's sequences.

const (
	walPage     = 4096
	walChunk    = 1 << 20  // the file grows by this much, written as zeros (no holes to allocate at fdatasync)
	walCap      = 4 << 20  // past this, writing restarts at offset 0 once everything is applied
	walFrameHdr = 8        // length, CRC
	walFixed    = 4 + 8    // instance, sequence
	walMaxFrame = 16 << 20 // sanity bound while scanning

	// The committer applies the log when a read or a write needs it, when
	// applyBatch checkouts wait, or applyDelay after the first one: under
	// a burst of accepts and nothing else, few large bbolt commits instead
	// of one per flush, which would compete with the log for the disk.
	applyBatch = 1024
	applyDelay = 10 * time.Millisecond
	// applyMax bounds the checkouts one transaction applies, and with it
	// the memory of a transaction after a long burst; the committer goes
	// on with the rest in its next one.
	applyMax = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrLogFailed: the accept log could not be written or flushed. Nothing
// more is accepted until posbridge restarts (what was acknowledged is
// safe: it was flushed before it was acknowledged).
var ErrLogFailed = errors.New("queue: accept log failed (restart posbridge; see the log for the disk error)")

// ErrAcceptLog: Open found an accept log left by an unclean stop that
// does not fit the database (another database's, or one the database is
// older than). Nothing is applied or dropped; the error says what to do.
var ErrAcceptLog = errors.New("accept log does not match the database")

// walEntry is a logged checkout the committer has not applied yet.
type walEntry struct {
	rec *record // Seq, ID and InvoiceNumber set
	enc []byte
}

// walCall is one Create waiting for the log writer.
type walCall struct {
	rec      *record // the new checkout, without sequence
	enc      []byte
	done     chan error // buffered(1)
	state    atomic.Int32
	out      *record
	existing bool
}

type wal struct {
	s    *Store
	f    *os.File
	path string
	inst []byte

	inbox  walInbox
	exited chan struct{}

	// Owned by the writer goroutine (and by Open before it starts).
	off, size int64
	nextSeq   uint64
	pending   map[string]*walEntry // idempotency key → logged, maybe not yet applied
	inLog     []*walEntry          // logged since the last restart not known applied, oldest first
	buf       []byte
	broken    error

	// Shared with the committer and the readers.
	durable  atomic.Uint64 // highest sequence flushed to the log
	applied  atomic.Uint64 // highest sequence committed to bbolt
	mu       sync.Mutex
	queue    []*walEntry   // flushed, not yet taken by the committer, in order
	advance  chan struct{} // closed (and replaced) when applied moves or applying fails
	applyErr error
	nudge    chan struct{} // cap 1: wakes the committer to apply now
	signal   chan struct{} // cap 1: Store.Applied
	later    chan struct{} // cap 1: there is something to apply within applyDelay
	batches  atomic.Int64  // groups flushed
	logged   atomic.Int64  // checkouts in them
	stalled  atomic.Int64  // nanoseconds the writer waited for the committer to catch up
	flushing atomic.Int64  // nanoseconds in write + fdatasync
	hold     atomic.Bool   // tests: the committer applies nothing (a crash between flush and apply)
}

// openWAL opens (creating) the log and applies what the database lacks,
// in one transaction, before anything else can run.
func (s *Store) openWAL() (*wal, error) {
	path := s.path + ".wal"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open accept log: %w", err)
	}
	w := &wal{
		s: s, f: f, path: path,
		inbox:   walInbox{wake: make(chan struct{}, 1)},
		exited:  make(chan struct{}),
		pending: make(map[string]*walEntry),
		advance: make(chan struct{}),
		nudge:   make(chan struct{}, 1),
		later:   make(chan struct{}, 1),
		signal:  make(chan struct{}, 1),
	}
	inst, err := hex.DecodeString(s.inst)
	if err != nil || len(inst) != 4 {
		_ = f.Close()
		return nil, fmt.Errorf("accept log: bad instance id %q", s.inst)
	}
	w.inst = inst
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("accept log: %w", err)
	}
	w.size = st.Size()
	var seq uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		n, err := w.replay(tx)
		if err != nil {
			return err
		}
		if n > 0 {
			s.opt.Logger.Warn("queue: applied accepted checkouts from the accept log after an unclean stop",
				"checkouts", n, "log", path)
		}
		seq = tx.Bucket(bCheckouts).Sequence()
		return nil
	})
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if st.Size() > 0 {
		// Everything the log held is applied now. What lies behind its
		// end goes too: frames a crash left there (a group the device
		// persisted while an earlier one was lost) were never
		// acknowledged, and a later life's log must not run into them
		// with the sequence they carry.
		if err := f.Truncate(0); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("accept log: empty it after applying it: %w", err)
		}
		if err := datasync(f); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("accept log: empty it after applying it: %w", err)
		}
		w.size = 0
	} else {
		// A new log: owned like the database (root running posbridge or
		// its doctor by hand must not leave a log the service cannot
		// open), and its directory entry durable before relying on it.
		if err := chownLike(f, s.path); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("accept log: %w", err)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("accept log: %w", err)
		}
	}
	w.nextSeq = seq + 1
	w.durable.Store(seq)
	w.applied.Store(seq)
	w.off = 0 // everything in the file is applied now
	return w, nil
}

// applyLeftLog applies and removes an accept log an unclean stop left
// behind, for a store opened without the log (Options.NoAcceptLog): its
// checkouts were acknowledged, and new ones must not take their
// sequences.
func (s *Store) applyLeftLog() error {
	path := s.path + ".wal"
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	w, err := s.openWAL()
	if err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("accept log: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("accept log: %w", err)
	}
	return nil
}

// replay applies the frames the database has not applied yet. It returns
// how many it applied.
func (w *wal) replay(tx *bolt.Tx) (int, error) {
	b := w.s.openTx(tx)
	have := b.checkouts.Sequence()
	var (
		hdr     [walFrameHdr]byte
		payload []byte
		prev    uint64
		off     int64
		n       int
		batch   []*walEntry
	)
	for off+walFrameHdr <= w.size {
		if _, err := w.f.ReadAt(hdr[:], off); err != nil {
			return n, fmt.Errorf("read accept log %s: %w", w.path, err)
		}
		length := int64(binary.BigEndian.Uint32(hdr[:4]))
		if length == 0 {
			if off%walPage == 0 {
				break // the end
			}
			off = (off/walPage + 1) * walPage // padding to the next group
			continue
		}
		valid := length >= walFixed && length <= walMaxFrame && off+walFrameHdr+length <= w.size
		if valid {
			if int64(cap(payload)) < length {
				payload = make([]byte, length)
			}
			payload = payload[:length]
			if _, err := w.f.ReadAt(payload, off+walFrameHdr); err != nil && !errors.Is(err, io.EOF) {
				return n, fmt.Errorf("read accept log %s: %w", w.path, err)
			}
			valid = crc32.Checksum(payload, castagnoli) == binary.BigEndian.Uint32(hdr[4:])
		}
		if !valid {
			// Padding shorter than a length field (a group that ended 1-3
			// bytes before a page boundary): the length read here took
			// bytes of the next group's first frame. Not a frame, so
			// padding; a frame that really starts here, inside a group,
			// was read as one above.
			if pad := walPage - off%walPage; pad < 4 && allZero(hdr[:pad]) {
				off += pad
				continue
			}
			break // a torn frame
		}
		seq := binary.BigEndian.Uint64(payload[4:12])
		if prev != 0 && seq != prev+1 {
			break // an older round of the log
		}
		if string(payload[:4]) != string(w.inst) {
			if seq > have {
				return n, fmt.Errorf("the accept log %s holds checkouts of another database (instance %x, this one is %s); "+
					"if the database was replaced on purpose, move the log away: %w", w.path, payload[:4], w.s.inst, ErrAcceptLog)
			}
			break
		}
		prev = seq
		off += walFrameHdr + length
		if seq <= have {
			continue
		}
		if seq != have+1 {
			return n, fmt.Errorf("the accept log %s continues at checkout #%d but the database ends at #%d "+
				"(was an older copy of the database restored?): %w", w.path, seq, have, ErrAcceptLog)
		}
		enc := append([]byte(nil), payload[walFixed:]...)
		r, err := w.s.decode(seq, enc)
		if err != nil {
			return n, fmt.Errorf("the accept log %s: %w: %w", w.path, err, ErrAcceptLog)
		}
		batch = append(batch, &walEntry{rec: r, enc: enc})
		if len(batch) == applyBatch {
			if err := b.insertNew(batch); err != nil {
				return n, err
			}
			batch = batch[:0]
		}
		have = seq
		n++
	}
	if err := b.insertNew(batch); err != nil {
		return n, err
	}
	return n, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// forgetApplied drops the entries the committer has applied from the
// idempotency map (the database answers for them now).
func (w *wal) forgetApplied() {
	applied := w.applied.Load()
	i := 0
	for ; i < len(w.inLog) && w.inLog[i].rec.Seq <= applied; i++ {
		if k := w.inLog[i].rec.IdempotencyKey; k != "" && w.pending[k] == w.inLog[i] {
			delete(w.pending, k)
		}
		w.inLog[i] = nil
	}
	w.inLog = w.inLog[i:]
	if len(w.inLog) == 0 {
		w.inLog = w.inLog[:0:0] // let the backing array go
	}
}

// restart starts writing at offset 0 again once everything in the log
// (through last) is applied, and reports whether it did. If the database
// cannot apply (a disk error), the log keeps growing instead: accepts
// stay durable.
func (w *wal) restart(last uint64) bool {
	t0 := time.Now()
	defer func() { w.stalled.Add(int64(time.Since(t0))) }()
	for {
		ch, applied, err := w.progress()
		if applied >= last {
			w.forgetApplied()
			w.off = 0
			return true
		}
		if err != nil || w.hold.Load() {
			return false // tests holding the apply: as if it failed
		}
		w.poke()
		<-ch
	}
}

// progress returns a channel closed at the next change, what is applied
// and the last apply error.
func (w *wal) progress() (<-chan struct{}, uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.advance, w.applied.Load(), w.applyErr
}

// take returns up to max flushed entries not yet taken by the committer,
// oldest first.
func (w *wal) take(max int) []*walEntry {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.queue), max)
	es := w.queue[:n:n]
	w.queue = w.queue[n:]
	if len(w.queue) == 0 {
		w.queue = nil
	}
	return es
}

// giveBack returns entries whose transaction did not commit, ahead of
// any taken since.
func (w *wal) giveBack(es []*walEntry, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queue = append(es[:len(es):len(es)], w.queue...)
	w.applyErr = err
	close(w.advance)
	w.advance = make(chan struct{})
}

// applyFailed records that applying cannot go on (a damaged file), so
// that reads waiting for the log return err.
func (w *wal) applyFailed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applyErr = err
	close(w.advance)
	w.advance = make(chan struct{})
}

// appliedTo records a committed transaction that applied through seq.
func (w *wal) appliedTo(seq uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied.Store(seq)
	w.applyErr = nil
	close(w.advance)
	w.advance = make(chan struct{})
	select {
	case w.signal <- struct{}{}:
	default:
	}
	if len(w.queue) > 0 {
		// More than one transaction's worth was waiting: the rest goes
		// in applyDelay, or at once if a read needs it or the next flush
		// finds applyBatch waiting.
		select {
		case w.later <- struct{}{}:
		default:
		}
	}
}

// caughtUp waits until what was durable when it was called is applied.
// When the last apply failed (a full disk), it asks for one more try and
// answers with that try's outcome, so a read recovers once the cause is
// gone without waiting for a write to make the committer apply.
func (w *wal) caughtUp(ctx context.Context, committed <-chan struct{}) error {
	target := w.durable.Load()
	if w.applied.Load() >= target {
		return nil
	}
	retried := false
	for {
		ch, applied, err := w.progress()
		if applied >= target {
			return nil
		}
		if err != nil {
			if retried || w.hold.Load() {
				return fmt.Errorf("queue: apply accepted checkouts: %w", err)
			}
			retried = true
		}
		w.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-committed:
			return ErrClosed
		}
	}
}

// close closes the log and removes it when everything in it is applied:
// after a clean stop there is no log (and none left owned by whoever ran
// posbridge or its doctor by hand).
func (w *wal) close() error {
	done := w.broken == nil && w.applied.Load() == w.nextSeq-1
	err := w.f.Close()
	if err == nil && done {
		err = os.Remove(w.path)
	}
	if err != nil {
		return fmt.Errorf("queue: close accept log: %w", err)
	}
	return nil
}
