// Package queue is posbridge's durable checkout store: every checkout the till
// asked for, on a bbolt file, with the indexes the engine drains it by.
//
// Nothing is acknowledged before it is on disk: each call's writes happen in
// one bbolt transaction that is committed (fsynced) before the call returns.
// Concurrent calls are group-committed by one committer goroutine, so many
// tills share an fsync instead of queueing behind one another; a call's
// writes are never split across transactions.
//
// Per terminal there is at most one active checkout (submitting, sent or
// on_terminal); the other queued checkouts of that terminal wait in FIFO
// order. The "due" index holds only what the engine may start now or later:
// the head of each terminal's FIFO while that terminal has no active
// checkout, keyed by its next-attempt time. See docs/queue.md.
package queue

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout of the database this package writes. A file
// with a newer version is refused (ErrSchema); a version 1 file is
// upgraded at Open, in one transaction (migrate.go).
const SchemaVersion = 2

// Errors returned by Open and by calls on a closed Store. They are wrapped
// with the database path; test them with errors.Is.
var (
	// ErrLocked: another process (or another Open in this one) holds the file.
	ErrLocked = errors.New("locked by another process (is posbridge already running?)")
	// ErrSchema: the file was written by a newer posbridge.
	ErrSchema = errors.New("unsupported schema version")
	// ErrClosed: the Store is closed or closing.
	ErrClosed = errors.New("queue: store is closed")
)

// Options tune a Store. The zero value is usable: Open fills in defaults.
type Options struct {
	// LockTimeout is how long Open waits for another holder of the file to
	// let go before it fails with ErrLocked. Default 1s.
	LockTimeout time.Duration
	// Retention is how long a finished checkout is kept before Prune may
	// remove it (and its idempotency key). Default 30 days.
	Retention time.Duration
	// PruneBatch bounds how many records one Prune call removes, so a
	// prune never holds the writer for long. Default 1000.
	PruneBatch int
	// MaxBatch bounds how many calls share one group commit. Default 512.
	MaxBatch int
	// Now is the clock; tests set it. Default time.Now.
	Now func() time.Time
	// NoAcceptLog makes Create commit each group of new checkouts straight
	// to bbolt (two fdatasyncs and every page the group changed) instead
	// of appending it to the accept log (one fdatasync; wal.go). For
	// comparisons; the log is the default.
	NoAcceptLog bool
	// Logger receives the store's rare notices (an accept log applied
	// after an unclean stop, a disk error). Default slog.Default().
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.PruneBatch <= 0 {
		o.PruneBatch = 1000
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Store is an open checkout database. Its methods are safe for concurrent
// use. Close it to stop its committer and release the file lock.
type Store struct {
	db   *bolt.DB
	path string
	opt  Options
	inst string // 8 hex digits, random per database file: keeps ids unique across re-created files

	reqs      chan *call
	closing   chan struct{}
	committed chan struct{} // closed when the committer has exited
	mu        sync.RWMutex  // held for reading while sending to reqs
	closed    bool
	closeOnce sync.Once
	closeErr  error

	wal     *wal                  // the accept log; nil with Options.NoAcceptLog
	damaged atomic.Pointer[error] // set when bbolt met a damaged page (damage.go)
	cur     *batch                // the committer's open transaction; only the committer touches it
	batches atomic.Int64          // transactions the committer ran, and the calls in them
	batched atomic.Int64
}

// Bucket names. Keys are documented in docs/queue.md.
var (
	bMeta       = []byte("meta")       // schema, instance, stats
	bCheckouts  = []byte("checkout")   // seq → record
	bIdem       = []byte("idem")       // idempotency key → seq
	bLine       = []byte("line")       // seq → FIFO links and next-attempt time (queued)
	bSubmitting = []byte("submitting") // seq → nil (submitting)
	bTerm       = []byte("term")       // terminal → active seq, FIFO head and tail, due time
	bDue        = []byte("due")        // next-attempt time, seq → terminal (actionable heads)
	bDeadline   = []byte("deadline")   // deadline, seq → nil (non-final)
	bDone       = []byte("done")       // finished-at, seq → nil (final)

	checkoutBuckets = [][]byte{bMeta, bCheckouts, bIdem, bLine, bSubmitting, bTerm, bDue, bDeadline, bDone}
	// allBuckets: the checkout buckets and the request outbox's (requests.go).
	allBuckets = append(checkoutBuckets[:len(checkoutBuckets):len(checkoutBuckets)], requestBuckets...)

	kSchema   = []byte("schema")
	kInstance = []byte("instance")
	kStats    = []byte("stats")
)

// Open opens (creating if needed) the checkout database at path. It waits
// up to Options.LockTimeout for the file lock and fails with an error
// matching ErrLocked when another process holds it, or ErrSchema when the
// file is from a newer posbridge.
func Open(path string, opt Options) (s *Store, err error) {
	opt = opt.withDefaults()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	s = &Store{path: path, opt: opt}
	opening := s
	// A damaged page met while opening closes the file before the error
	// is returned (catchDamage, deferred last, runs first).
	defer func() {
		if errors.Is(err, ErrDamaged) {
			if opening.db != nil {
				_ = opening.db.Close()
			}
			s = nil
		}
	}()
	defer opening.catchDamage(&err)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opt.LockTimeout,
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("queue: database %s is %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", path, err)
	}
	s.db, s.reqs, s.closing, s.committed = db, make(chan *call, opt.MaxBatch), make(chan struct{}), make(chan struct{})
	if err := db.Update(s.initSchema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("queue: database %s: %w", path, err)
	}
	if !opt.NoAcceptLog {
		if s.wal, err = s.openWAL(); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("queue: database %s: %w", path, err)
		}
		go s.wal.loop()
	} else if err := s.applyLeftLog(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("queue: database %s: %w", path, err)
	}
	go s.commitLoop()
	return s, nil
}

func (s *Store) initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bMeta)
	if meta != nil {
		v := meta.Get(kSchema)
		if len(v) != 4 {
			return fmt.Errorf("meta bucket has no schema version: %w", ErrSchema)
		}
		got := binary.BigEndian.Uint32(v)
		if got > SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this posbridge's %d (written by a newer release; upgrade posbridge): %w",
				got, SchemaVersion, ErrSchema)
		}
		inst := meta.Get(kInstance)
		if len(inst) != 4 {
			return errors.New("meta bucket has no instance id")
		}
		s.inst = hex.EncodeToString(inst)
		if got < 2 {
			if err := migrateV1(tx); err != nil {
				return fmt.Errorf("upgrade schema version %d to %d: %w", got, SchemaVersion, err)
			}
			if err := meta.Put(kSchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
				return err
			}
		}
		// Buckets added by a later build of this version are created here.
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	}
	if tx.Bucket(bCheckouts) != nil {
		return fmt.Errorf("checkout bucket without meta: not a posbridge queue file: %w", ErrSchema)
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	inst := make([]byte, 4)
	if _, err := rand.Read(inst); err != nil {
		return fmt.Errorf("instance id: %w", err)
	}
	s.inst = hex.EncodeToString(inst)
	meta = tx.Bucket(bMeta)
	if err := meta.Put(kSchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
		return err
	}
	return meta.Put(kInstance, inst)
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close stops accepting calls, commits the calls already handed to the
// committer, waits for it and closes the file. It is safe to call twice;
// later calls return the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing) // wakes senders blocked on a full channel
		s.mu.Lock()
		s.closed = true
		if s.wal != nil {
			s.wal.inbox.close()
		}
		s.mu.Unlock()
		if s.wal != nil {
			<-s.wal.exited // its last group is flushed and handed to the committer
		}
		close(s.reqs) // no sender is left: each checks closed first
		<-s.committed // which applied the whole log before it exited
		if s.wal != nil {
			s.closeErr = s.wal.close()
		}
		if err := s.db.Close(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("queue: close %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// view runs fn in a read transaction, failing fast on a done context or a
// closed store. It first waits until every checkout whose accept was
// flushed to the log before the call is applied, so a read sees every
// write that returned before it.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.wal != nil {
		if err := s.wal.caughtUp(ctx, s.committed); err != nil {
			return err
		}
	}
	return s.viewApplied(ctx, fn)
}

// viewApplied is view without the wait: it sees the checkouts applied
// from the accept log, not those still only in it (which Applied signals
// when they are).
func (s *Store) viewApplied(ctx context.Context, fn func(tx *bolt.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer s.catchDamage(&err)
	return s.db.View(fn)
}
