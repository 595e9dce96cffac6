package queue

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// Salvage (docs/queue.md, "A damaged file").
//
// A database whose pages bbolt cannot all read (ErrDamaged) is copied
// record by record into a new file: the damaged file is opened read-only
// and every sequence number from 1 to the highest ever issued is looked
// up in a read of its own, guarded against bbolt's panics, so a page that
// cannot be read loses only the records on it. The new file keeps the
// old one's instance id (ids and invoice numbers stay what the till and
// Hesabe know) and its sequences (a new checkout never reuses a number),
// and every index and counter is rebuilt from the records. Checkouts the
// accept log holds beyond what the database applied are taken too.

// Salvage copies every checkout and request that can still be read from
// the database at oldPath (and the checkouts its accept log, oldPath +
// ".wal", holds beyond it) into a new database at newPath, which must not
// exist. The old files are only read. The new file passes Check and
// CheckRequests and opens with Open. See the package comment above.
//
// It fails with an error matching ErrLocked while posbridge holds the
// file, ErrSchema for a newer schema, ErrAcceptLog for a log of another
// database, and ErrDamaged when not even the file's meta, or the
// checkout bucket itself, can be read.
func Salvage(ctx context.Context, oldPath, newPath string, opt SalvageOptions) (_ *SalvageReport, err error) {
	start := time.Now()
	if opt.LockTimeout <= 0 {
		opt.LockTimeout = time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if !opt.DryRun {
		if _, err := os.Lstat(newPath); err == nil {
			return nil, fmt.Errorf("queue: salvage: %s already exists", newPath)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("queue: salvage: %w", err)
		}
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	var ro *bolt.DB
	if gerr := guard(func() error {
		ro, err = bolt.Open(oldPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: opt.LockTimeout})
		return nil
	}); gerr != nil {
		return nil, fmt.Errorf("queue: salvage: %s cannot be opened at all: %w", oldPath, gerr)
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("queue: database %s is %w", oldPath, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: salvage: open %s: %w", oldPath, err)
	}
	defer ro.Close()
	sv := &salvager{ctx: ctx, opt: opt, ro: ro,
		src: &Store{db: ro, path: oldPath, opt: Options{Logger: opt.Logger}.withDefaults()},
		rep: &SalvageReport{Copied: map[pos.State]int{}}}
	if err := sv.readMeta(); err != nil {
		return nil, err
	}
	sv.checkOld()
	if err := sv.readLog(oldPath + ".wal"); err != nil {
		return nil, err
	}
	if !opt.DryRun {
		if sv.dst, err = bolt.Open(newPath, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType}); err != nil {
			return nil, fmt.Errorf("queue: salvage: create %s: %w", newPath, err)
		}
		defer func() {
			if cerr := sv.dst.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("queue: salvage: close %s: %w", newPath, cerr)
			}
			if err == nil {
				err = sv.finishFile(oldPath, newPath)
			}
		}()
		if err := sv.dst.Update(sv.initNew); err != nil {
			return nil, fmt.Errorf("queue: salvage: %s: %w", newPath, err)
		}
	}
	if err := sv.copyCheckouts(); err != nil {
		return nil, err
	}
	if err := sv.copyRequests(); err != nil {
		return nil, err
	}
	sv.rep.Elapsed = time.Since(start)
	return sv.rep, nil
}

// guard runs fn, turning a panic raised by bbolt (or a fault reading the
// mapped file) into an error matching ErrDamaged.
func guard(fn func() error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		where := panicOrigin()
		re, isRuntime := r.(runtime.Error)
		if !strings.HasPrefix(where, "go.etcd.io/bbolt") && !(isRuntime && strings.Contains(re.Error(), "fault")) {
			panic(r)
		}
		err = &damageError{what: fmt.Sprint(r), where: where}
	}()
	return fn()
}

type salvager struct {
	ctx      context.Context
	opt      SalvageOptions
	ro, dst  *bolt.DB
	src      *Store // the damaged file, read-only: decode, Check
	rep      *SalvageReport
	inst     []byte
	dbSeq    uint64               // the checkout bucket's sequence: applied through here
	reqSeq   uint64               // the request bucket's sequence
	logged   map[uint64]*walEntry // the accept log's frames of this database
	logMax   uint64
	counters counters
}

func (sv *salvager) initNew(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bMeta)
	if err := meta.Put(kSchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
		return err
	}
	return meta.Put(kInstance, sv.inst)
}

// salvageChunk is how many records one transaction of the new file takes.
const salvageChunk = 4096

type queuedRef struct {
	seq  uint64
	term string
	at   []byte
}

// copyCheckouts reads every sequence number and writes what it reads to
// the new file, then the indexes.
func (sv *salvager) copyCheckouts() error {
	highest := max(sv.dbSeq, sv.logMax)
	sv.rep.HighestSeq = highest
	var (
		chunk    []*walEntry
		idem     = map[string]uint64{}
		deadline [][]byte
		done     [][]byte
		queued   []queuedRef
		actives  = map[string][]*walEntry{} // terminal → its active checkouts
		missing  = map[uint64]string{}      // seq → why it is not copied ("" : nothing read)
	)
	flush := func() error {
		if sv.dst == nil || len(chunk) == 0 {
			chunk = chunk[:0]
			return nil
		}
		err := sv.dst.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bCheckouts)
			bk.FillPercent = appendFill
			for _, e := range chunk {
				if err := bk.Put(seqKey(e.rec.Seq), e.enc); err != nil {
					return fmt.Errorf("put checkout %s: %w", e.rec.ID, err)
				}
			}
			return nil
		})
		chunk = chunk[:0]
		if err != nil {
			return fmt.Errorf("queue: salvage: write: %w", err)
		}
		return nil
	}
	take := func(e *walEntry) error {
		r := e.rec
		if r.IdempotencyKey != "" {
			if first, ok := idem[r.IdempotencyKey]; ok {
				// Keep the key on the first checkout (a retry of the
				// till finds the original); this one loses it.
				sv.resolve(r, r.State, fmt.Sprintf("idempotency key %q is also #%d's; kept there, removed here", r.IdempotencyKey, first))
				r.IdempotencyKey = ""
				e.enc = nil
			} else {
				idem[r.IdempotencyKey] = r.Seq
			}
		}
		if (isActive(r.State) || r.State == pos.StateQueued) && r.TerminalID == "" {
			to := pos.StateFailed
			sv.resolve(r, to, "no terminal id: it cannot be queued or followed")
			sv.move(r, to, "salvage: no terminal id")
			e.enc = nil
		}
		if isActive(r.State) {
			actives[r.TerminalID] = append(actives[r.TerminalID], e)
			return nil // indexed once the terminal's actives are settled
		}
		if e.enc == nil {
			var err error
			if e.enc, err = encodeRecord(r); err != nil {
				return err
			}
		}
		sv.index(r, &deadline, &done, &queued)
		chunk = append(chunk, e)
		if len(chunk) == salvageChunk {
			return flush()
		}
		return nil
	}

	tx, err := sv.ro.Begin(false)
	if err != nil {
		return fmt.Errorf("queue: salvage: read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var bk *bolt.Bucket
	if err := guard(func() error { bk = tx.Bucket(bCheckouts); return nil }); err != nil || bk == nil {
		return fmt.Errorf("queue: salvage %s: the checkout bucket cannot be read: %w", sv.src.path, errors.Join(err, ErrDamaged))
	}
	for seq := uint64(1); seq <= highest; seq++ {
		if seq%4096 == 0 {
			if err := sv.ctx.Err(); err != nil {
				return err
			}
		}
		var v []byte
		if err := guard(func() error { v = bytes.Clone(bk.Get(seqKey(seq))); return nil }); err != nil {
			sv.rep.Damaged = true
			missing[seq] = "its page in the database cannot be read"
			continue
		}
		if v == nil {
			if e := sv.logged[seq]; e != nil && seq > sv.dbSeq {
				sv.rep.FromLog++
				if err := take(e); err != nil {
					return err
				}
				continue
			}
			missing[seq] = ""
			continue
		}
		r, err := sv.src.decode(seq, v)
		if err != nil {
			sv.rep.Damaged = true
			missing[seq] = "its record does not decode: " + err.Error()
			continue
		}
		if err := take(&walEntry{rec: r, enc: v}); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// One active checkout per terminal: keep the one changed last.
	var settled []*walEntry
	for term, es := range actives {
		slices.SortFunc(es, func(a, b *walEntry) int {
			if c := a.rec.UpdatedAt.Compare(b.rec.UpdatedAt); c != 0 {
				return c
			}
			return cmp.Compare(a.rec.Seq, b.rec.Seq)
		})
		keep := es[len(es)-1]
		for _, e := range es[:len(es)-1] {
			r := e.rec
			// Its invoice may exist: expired keeps a late payment
			// adoptable (expired → paid); without one, failed.
			to := pos.StateFailed
			if r.InvoiceID != 0 {
				to = pos.StateExpired
			}
			why := fmt.Sprintf("terminal %s had two active checkouts; #%d (changed later) stays %s", term, keep.rec.Seq, keep.rec.State)
			sv.resolve(r, to, why)
			sv.move(r, to, "salvage: "+why)
			e.enc = nil
		}
		settled = append(settled, es...)
	}
	slices.SortFunc(settled, func(a, b *walEntry) int { return cmp.Compare(a.rec.Seq, b.rec.Seq) })
	for _, e := range settled {
		if e.enc == nil {
			if e.enc, err = encodeRecord(e.rec); err != nil {
				return err
			}
		}
		sv.index(e.rec, &deadline, &done, &queued)
		chunk = append(chunk, e)
	}
	if err := flush(); err != nil {
		return err
	}
	sv.describeMissing(tx, missing)
	if sv.dst == nil {
		return nil
	}
	return sv.writeIndexes(idem, deadline, done, queued, settled, highest)
}

// index notes r's index entries and counts it.
func (sv *salvager) index(r *record, deadline, done *[][]byte, queued *[]queuedRef) {
	sv.rep.Copied[r.State]++
	sv.counters.byState[slot(r.State)]++
	if isUnsent(r.State) {
		sv.counters.unsentAmount += int64(r.Amount)
	}
	if r.State.Final() {
		*done = append(*done, timeSeqKey(r.UpdatedAt, r.Seq))
	} else {
		*deadline = append(*deadline, timeSeqKey(r.Deadline, r.Seq))
	}
	if r.State == pos.StateQueued {
		*queued = append(*queued, queuedRef{seq: r.Seq, term: r.TerminalID, at: timeBytes(r.NextAttemptAt)})
	}
}

func (sv *salvager) resolve(r *record, to pos.State, why string) {
	sv.rep.Resolved = append(sv.rep.Resolved, Resolution{Seq: r.Seq, ID: r.ID, InvoiceNumber: r.InvoiceNumber, From: r.State, To: to, Why: why})
}

// move puts r in state to with a history entry, as a transition would.
func (sv *salvager) move(r *record, to pos.State, reason string) {
	now := sv.opt.Now().UTC().Round(0)
	r.History = append(r.History[:len(r.History):len(r.History)], pos.Transition{At: now, From: r.State, To: to, Reason: reason})
	r.State, r.UpdatedAt = to, now
}

// copyRequests copies the request outbox the same way, in one
// transaction (it is small).
func (sv *salvager) copyRequests() error {
	if sv.rep.Schema < SchemaVersion && sv.reqSeq == 0 {
		return nil
	}
	tx, err := sv.ro.Begin(false)
	if err != nil {
		return fmt.Errorf("queue: salvage: read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var bk *bolt.Bucket
	if err := guard(func() error { bk = tx.Bucket(bReq); return nil }); err != nil {
		return fmt.Errorf("queue: salvage %s: the request bucket cannot be read: %w", sv.src.path, errors.Join(err, ErrDamaged))
	}
	if bk == nil {
		return nil
	}
	var recs []*reqRecord
	missing := map[uint64]string{}
	for seq := uint64(1); seq <= sv.reqSeq; seq++ {
		var v []byte
		if err := guard(func() error { v = bytes.Clone(bk.Get(seqKey(seq))); return nil }); err != nil {
			sv.rep.Damaged = true
			missing[seq] = "its page in the database cannot be read"
			continue
		}
		if v == nil {
			missing[seq] = ""
			continue
		}
		r, err := sv.src.decodeRequest(seq, v)
		if err == nil && !r.State.Valid() {
			err = fmt.Errorf("unknown state %q", r.State)
		}
		if err != nil {
			sv.rep.Damaged = true
			missing[seq] = "its record does not decode: " + err.Error()
			continue
		}
		r.encoded = v
		recs = append(recs, r)
	}
	// What the request indexes name.
	named := map[uint64]bool{}
	for _, name := range [][]byte{bReqIdem, bReqDue, bReqOpen, bReqDone} {
		err := guard(func() error {
			ib := tx.Bucket(name)
			if ib == nil {
				return nil
			}
			return ib.ForEach(func(k, v []byte) error {
				switch {
				case bytes.Equal(name, bReqIdem) && len(v) == 8:
					named[seqOf(v)] = true
				case len(k) >= 8 && !bytes.Equal(name, bReqIdem):
					named[seqOf(k)] = true
				}
				return nil
			})
		})
		if err != nil {
			sv.rep.Damaged = true
			sv.rep.UnreadableIndexes = append(sv.rep.UnreadableIndexes, string(name))
		}
	}
	for seq := uint64(1); seq <= sv.reqSeq; seq++ {
		why, ok := missing[seq]
		switch {
		case !ok:
		case why == "" && !named[seq]:
			sv.rep.Requests.Absent++
		default:
			if why == "" {
				why = "not in the database, but its indexes name it"
			}
			sv.rep.Requests.Lost = append(sv.rep.Requests.Lost, LostRequest{Seq: seq, ID: sv.src.formatReqID(seq), Why: why})
		}
	}
	sv.rep.Requests.Copied = len(recs)
	if sv.dst == nil {
		return nil
	}
	err = sv.dst.Update(func(tx *bolt.Tx) error {
		b := (&Store{inst: sv.src.inst}).openReq(tx)
		keys := map[string]uint64{}
		for _, r := range recs {
			var ik []byte
			if r.IdempotencyKey != "" {
				ik = reqIdemKey(r.Kind, r.IdempotencyKey)
				if first, ok := keys[string(ik)]; ok {
					sv.rep.Requests.Resolved = append(sv.rep.Requests.Resolved,
						fmt.Sprintf("%s: idempotency key %q is also #%d's; kept there, removed here", r.ID, r.IdempotencyKey, first))
					r.IdempotencyKey, r.encoded, ik = "", nil, nil
				} else {
					keys[string(ik)] = r.Seq
				}
			}
			if err := b.put(nil, r); err != nil {
				return err
			}
			if ik != nil {
				if err := b.idem.Put(ik, seqKey(r.Seq)); err != nil {
					return err
				}
			}
		}
		return b.recs.SetSequence(sv.reqSeq)
	})
	if err != nil {
		return fmt.Errorf("queue: salvage: write requests: %w", err)
	}
	return nil
}

// finishFile gives the new file the old one's owner, checks it as the
// store does, and makes it durable.
func (sv *salvager) finishFile(oldPath, newPath string) error {
	f, err := os.Open(newPath)
	if err != nil {
		return fmt.Errorf("queue: salvage: %w", err)
	}
	err = chownLike(f, oldPath)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("queue: salvage: %s: %w", newPath, err)
	}
	s, err := Open(newPath, Options{NoAcceptLog: true, Logger: sv.opt.Logger})
	if err != nil {
		return fmt.Errorf("queue: salvage: the new file does not open: %w", err)
	}
	err = s.Check(sv.ctx)
	if err == nil {
		err = s.CheckRequests(sv.ctx)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("queue: salvage: the new file %s fails its check (a bug: keep both files and report it): %w", newPath, err)
	}
	return nil
}
