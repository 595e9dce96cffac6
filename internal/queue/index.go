package queue

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// The indexes (docs/queue.md, "Layout").
//
// Every commit writes each B-tree page it changed, and on these disks the
// pages written, not the number of puts, set a commit's cost. So the
// indexes a new checkout touches are keyed to append: the record by
// sequence, the line of queued checkouts by sequence (each terminal's FIFO
// is a doubly linked list through it, so N terminals do not mean N
// insertion points), deadlines by time. The per-terminal state (active
// checkout, FIFO head and tail, due entry) is one small entry per terminal,
// and the submitting checkouts (at most one per terminal) have a small
// bucket of their own. A transition of a FIFO head, whose neighbours are
// spread over the whole backlog, writes as few other pages as possible.

// buckets are one transaction's handles on every bucket.
type buckets struct {
	s                                                                  *Store
	tx                                                                 *bolt.Tx
	bt                                                                 *batch // the committer's open batch, nil in a read
	meta, checkouts, idem, line, submitting, term, due, deadline, done *bolt.Bucket
}

// open returns tx's bucket handles. In the committer's batch they are
// opened once and shared by the batch's operations.
func (s *Store) open(tx *bolt.Tx) *buckets {
	if tx.Writable() {
		// Only the committer runs write transactions once the store is
		// open, so s.cur is read on the goroutine that writes it.
		if bt := s.cur; bt != nil && bt.tx == tx {
			if bt.b == nil {
				bt.b = s.openTx(tx)
				bt.b.bt = bt
			}
			return bt.b
		}
	}
	return s.openTx(tx)
}

// appendFill is the fill of pages in buckets whose new keys come last:
// bbolt's default (half) would leave every page it splits half empty.
const appendFill = 0.95

func (s *Store) openTx(tx *bolt.Tx) *buckets {
	b := &buckets{
		s:          s,
		tx:         tx,
		meta:       tx.Bucket(bMeta),
		checkouts:  tx.Bucket(bCheckouts),
		idem:       tx.Bucket(bIdem),
		line:       tx.Bucket(bLine),
		submitting: tx.Bucket(bSubmitting),
		term:       tx.Bucket(bTerm),
		due:        tx.Bucket(bDue),
		deadline:   tx.Bucket(bDeadline),
		done:       tx.Bucket(bDone),
	}
	if tx.Writable() {
		for _, bk := range []*bolt.Bucket{b.checkouts, b.line, b.deadline, b.done} {
			bk.FillPercent = appendFill
		}
	}
	return b
}

func (b *buckets) load(seq uint64) (*record, error) {
	v := b.checkouts.Get(seqKey(seq))
	if v == nil {
		return nil, nil
	}
	return b.s.decode(seq, v)
}

// isActive: the state that holds its terminal (at most one per terminal).
func isActive(s pos.State) bool {
	return s == pos.StateSubmitting || s == pos.StateSent || s == pos.StateOnTerminal
}

// isUnsent: counted against the offline limits (stored, not yet at Hesabe).
func isUnsent(s pos.State) bool { return s == pos.StateQueued || s == pos.StateSubmitting }

// A line entry (key: seq) exists for every queued checkout and links it
// into its terminal's FIFO: previous and next sequence (0: none) and its
// next-attempt time, so the due entry can be computed without decoding the
// record. The head's previous pointer is not kept up to date (taking the
// head out would otherwise write its successor's entry too, usually a
// page of its own): it means nothing while the entry is the head.
type lineEntry struct {
	prev, next uint64
	at         []byte // 8 bytes, timeBytes
}

const lineLen = 24

func (b *buckets) lineGet(seq uint64) (lineEntry, bool) {
	v := b.line.Get(seqKey(seq))
	if len(v) != lineLen {
		return lineEntry{}, false
	}
	return lineEntry{prev: binary.BigEndian.Uint64(v), next: binary.BigEndian.Uint64(v[8:]), at: v[16:24:24]}, true
}

func (b *buckets) linePut(seq uint64, e lineEntry) error {
	v := make([]byte, 0, lineLen)
	v = binary.BigEndian.AppendUint64(v, e.prev)
	v = binary.BigEndian.AppendUint64(v, e.next)
	v = append(v, e.at...)
	if err := b.line.Put(seqKey(seq), v); err != nil {
		return fmt.Errorf("queue: put line entry: %w", err)
	}
	return nil
}

// setLink changes one neighbour pointer of a queued entry.
func (b *buckets) setLink(seq uint64, next bool, to uint64) error {
	e, ok := b.lineGet(seq)
	if !ok {
		return errIndex("FIFO neighbour #%d is not queued", seq)
	}
	if next {
		e.next = to
	} else {
		e.prev = to
	}
	return b.linePut(seq, e)
}

// termState is a terminal's entry (key: terminal id): its active checkout
// and the head and tail of its FIFO (0: none), and the time of its due
// entry, which exists iff the terminal has no active checkout and a head:
// key (dueAt, head). The entry is removed when active and head are both 0.
type termState struct {
	active, head, tail uint64
	dueAt              []byte
}

const termLen = 32

// moveDue moves terminal's due entry from key have to key want (nil: none).
func (b *buckets) moveDue(terminal, have, want []byte) error {
	if string(want) == string(have) {
		return nil
	}
	if have != nil {
		if err := b.due.Delete(have); err != nil {
			return fmt.Errorf("queue: delete due entry: %w", err)
		}
	}
	if want != nil {
		if err := b.due.Put(want, terminal); err != nil {
			return fmt.Errorf("queue: put due entry: %w", err)
		}
	}
	return nil
}

func (b *buckets) termGet(terminal []byte) (termState, error) {
	v := b.term.Get(terminal)
	if v == nil {
		return termState{}, nil
	}
	if len(v) != termLen {
		return termState{}, errIndex("terminal %s: malformed entry", terminal)
	}
	return termState{active: binary.BigEndian.Uint64(v), head: binary.BigEndian.Uint64(v[8:]),
		tail: binary.BigEndian.Uint64(v[16:]), dueAt: v[24:32:32]}, nil
}

// dueKey is the terminal's due entry, or nil.
func (t *termState) dueKey() []byte {
	if t.active != 0 || t.head == 0 {
		return nil
	}
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 16), t.dueAt...), t.head)
}

func (b *buckets) termPut(terminal []byte, t termState) error {
	if t.active == 0 && t.head == 0 {
		if err := b.term.Delete(terminal); err != nil {
			return fmt.Errorf("queue: delete terminal entry: %w", err)
		}
		return nil
	}
	v := make([]byte, 0, termLen)
	v = binary.BigEndian.AppendUint64(v, t.active)
	v = binary.BigEndian.AppendUint64(v, t.head)
	v = binary.BigEndian.AppendUint64(v, t.tail)
	if len(t.dueAt) == 8 {
		v = append(v, t.dueAt...)
	} else {
		v = append(v, make([]byte, 8)...)
	}
	if err := b.term.Put(terminal, v); err != nil {
		return fmt.Errorf("queue: put terminal entry: %w", err)
	}
	return nil
}

// put writes r (v is its encoding, or nil to encode it here) and brings
// every index from old (nil for a new checkout) to r, all in the caller's
// transaction.
func (b *buckets) put(old, r *record, v []byte) error {
	if v == nil {
		var err error
		if v, err = encodeRecord(r); err != nil {
			return err
		}
	}
	seq := seqKey(r.Seq)
	if err := b.checkouts.Put(seq, v); err != nil {
		return fmt.Errorf("queue: put checkout %s: %w", r.ID, err)
	}
	var was pos.State
	if old != nil {
		was = old.State
	} else if r.IdempotencyKey != "" {
		if err := b.idem.Put([]byte(r.IdempotencyKey), seq); err != nil {
			return fmt.Errorf("queue: put idempotency key: %w", err)
		}
	}
	now := r.State
	if err := b.putTerminal(old, r); err != nil {
		return err
	}
	dk := timeSeqKey(r.Deadline, r.Seq)
	if err := index(b.deadline, dk, nil, old != nil && !was.Final(), !now.Final()); err != nil {
		return err
	}
	if now.Final() && old != nil && was.Final() && !old.UpdatedAt.Equal(r.UpdatedAt) {
		// expired → paid: the done entry moves to the new finishing time.
		if err := b.done.Delete(timeSeqKey(old.UpdatedAt, r.Seq)); err != nil {
			return fmt.Errorf("queue: delete done entry: %w", err)
		}
		was = "" // and is put again below
	}
	if now.Final() && !was.Final() {
		if err := b.done.Put(timeSeqKey(r.UpdatedAt, r.Seq), nil); err != nil {
			return fmt.Errorf("queue: put done entry: %w", err)
		}
	}
	return b.addStats(old, r)
}

// putTerminal brings the line, the submitting bucket and the terminal's
// entry (FIFO, active, due) from old to r.
func (b *buckets) putTerminal(old, r *record) error {
	var was pos.State
	if old != nil {
		was = old.State
	}
	now := r.State
	at := timeBytes(r.NextAttemptAt)
	requeued := was == pos.StateQueued && now == pos.StateQueued && !old.NextAttemptAt.Equal(r.NextAttemptAt)
	if was == now && !requeued {
		return nil // sent → on_terminal, field updates: nothing here changes
	}
	if now == pos.StateSubmitting && was != pos.StateQueued {
		return errIndex("checkout %s enters submitting from %s", r.ID, was)
	}
	if err := index(b.submitting, seqKey(r.Seq), nil, was == pos.StateSubmitting, now == pos.StateSubmitting); err != nil {
		return err
	}
	term := []byte(r.TerminalID)
	t, err := b.termGet(term)
	if err != nil {
		return err
	}
	haveDue := t.dueKey()
	switch {
	case requeued:
		e, ok := b.lineGet(r.Seq)
		if !ok {
			return errIndex("queued checkout %s has no line entry", r.ID)
		}
		e.at = at
		if err := b.linePut(r.Seq, e); err != nil {
			return err
		}
	case was == pos.StateQueued:
		if err := b.unlink(&t, r); err != nil {
			return err
		}
	case now == pos.StateQueued:
		if err := b.link(&t, r.Seq, at); err != nil {
			return err
		}
	}
	if isActive(was) && !isActive(now) {
		if t.active != r.Seq {
			return errIndex("checkout %s leaves %s but terminal %s's active entry is #%d", r.ID, was, r.TerminalID, t.active)
		}
		t.active = 0
	}
	if isActive(now) && !isActive(was) {
		if t.active != 0 {
			return errIndex("checkout %s becomes %s but terminal %s is active with #%d", r.ID, now, r.TerminalID, t.active)
		}
		t.active = r.Seq
	}
	// The due entry: the head of a free terminal.
	if t.active == 0 && t.head != 0 {
		if t.head == r.Seq {
			t.dueAt = at
		} else if h, ok := b.lineGet(t.head); ok {
			t.dueAt = h.at
		} else {
			return errIndex("terminal %s's FIFO head #%d is not queued", r.TerminalID, t.head)
		}
	}
	if err := b.moveDue(term, haveDue, t.dueKey()); err != nil {
		return err
	}
	return b.termPut(term, t)
}

// link puts queued checkout seq into t's FIFO in sequence order: at the
// tail when it is new, at the head when a submission returns it (it is
// older than everything that waited behind it).
func (b *buckets) link(t *termState, seq uint64, at []byte) error {
	e := lineEntry{at: at}
	switch {
	case t.head == 0:
		t.head, t.tail = seq, seq
	case seq > t.tail:
		if err := b.setLink(t.tail, true, seq); err != nil {
			return err
		}
		e.prev, t.tail = t.tail, seq
	default:
		// Before the first entry that comes after seq: the head, unless
		// the FIFO was not in sequence order, which link never makes.
		next, prev := t.head, uint64(0)
		for next < seq {
			n, ok := b.lineGet(next)
			if !ok {
				return errIndex("FIFO entry #%d is not queued", next)
			}
			prev, next = next, n.next
		}
		if next == seq {
			return errIndex("checkout #%d is already in its FIFO", seq)
		}
		e.prev, e.next = prev, next
		if err := b.setLink(next, false, seq); err != nil {
			return err
		}
		if prev == 0 {
			t.head = seq
		} else if err := b.setLink(prev, true, seq); err != nil {
			return err
		}
	}
	return b.linePut(seq, e)
}

// unlink takes queued checkout r out of t's FIFO and the line.
func (b *buckets) unlink(t *termState, r *record) error {
	e, ok := b.lineGet(r.Seq)
	if !ok {
		return errIndex("queued checkout %s missing from terminal %s's FIFO", r.ID, r.TerminalID)
	}
	if t.head == r.Seq {
		// The successor's stale previous pointer is left as it is.
		t.head = e.next
	} else if e.prev == 0 {
		return errIndex("checkout %s has no predecessor but terminal %s's head is #%d", r.ID, r.TerminalID, t.head)
	} else if err := b.setLink(e.prev, true, e.next); err != nil {
		return err
	}
	if e.next == 0 {
		if t.tail != r.Seq {
			return errIndex("checkout %s has no successor but terminal %s's tail is #%d", r.ID, r.TerminalID, t.tail)
		}
		t.tail = 0
		if t.head != 0 {
			t.tail = e.prev
		}
	} else if t.head != e.next {
		if err := b.setLink(e.next, false, e.prev); err != nil {
			return err
		}
	}
	if err := b.line.Delete(seqKey(r.Seq)); err != nil {
		return fmt.Errorf("queue: delete line entry: %w", err)
	}
	return nil
}

// index adds or removes key as membership changes from was to is.
func index(bk *bolt.Bucket, key, val []byte, was, is bool) error {
	switch {
	case was && !is:
		if err := bk.Delete(key); err != nil {
			return fmt.Errorf("queue: delete index entry: %w", err)
		}
	case is && !was:
		if err := bk.Put(key, val); err != nil {
			return fmt.Errorf("queue: put index entry: %w", err)
		}
	}
	return nil
}

// stateSlots fixes the order of the per-state counters on disk (and the
// state codes of binary records). Append only: the position of a state is
// part of the schema.
var stateSlots = []pos.State{pos.StateQueued, pos.StateSubmitting, pos.StateSent, pos.StateOnTerminal,
	pos.StatePaid, pos.StateDeclined, pos.StateCanceled, pos.StateExpired, pos.StateFailed}

const numSlots = 9 // len(stateSlots); a test keeps them equal

// counters are kept in the meta bucket and changed in the same transaction
// as the records they count, so reading them costs one Get.
type counters struct {
	byState      [numSlots]int64
	unsentAmount int64
}

func slot(s pos.State) int {
	for i, v := range stateSlots {
		if v == s {
			return i
		}
	}
	return -1
}

// counters returns the stored counters, or the batch's pending ones.
func (b *buckets) counters() counters {
	if b.bt != nil && b.bt.stats != nil {
		return *b.bt.stats
	}
	var c counters
	v := b.meta.Get(kStats)
	for i := range c.byState {
		if len(v) >= 8*(i+1) {
			c.byState[i] = int64(binary.BigEndian.Uint64(v[8*i:]))
		}
	}
	if off := 8 * len(c.byState); len(v) >= off+8 {
		c.unsentAmount = int64(binary.BigEndian.Uint64(v[off:]))
	}
	return c
}

func (b *buckets) addStats(old, r *record) error {
	c := b.counters()
	if old != nil {
		c.byState[slot(old.State)]--
		if isUnsent(old.State) {
			c.unsentAmount -= int64(old.Amount)
		}
	}
	c.byState[slot(r.State)]++
	if isUnsent(r.State) {
		c.unsentAmount += int64(r.Amount)
	}
	return b.putCounters(c)
}

// putCounters stores c, or keeps it in the batch until its commit.
func (b *buckets) putCounters(c counters) error {
	if b.bt != nil {
		b.bt.stats = &c
		return nil
	}
	return b.writeCounters(c)
}

func (b *buckets) writeCounters(c counters) error {
	v := make([]byte, 0, 8*(len(c.byState)+1))
	for _, n := range c.byState {
		v = binary.BigEndian.AppendUint64(v, uint64(n))
	}
	v = binary.BigEndian.AppendUint64(v, uint64(c.unsentAmount))
	if err := b.meta.Put(kStats, v); err != nil {
		return fmt.Errorf("queue: put counters: %w", err)
	}
	return nil
}
