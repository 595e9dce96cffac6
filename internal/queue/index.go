package queue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// buckets are one transaction's handles on every bucket.
type buckets struct {
	s                                                                         *Store
	tx                                                                        *bolt.Tx
	meta, checkouts, idem, fifo, unsent, due, dueTerm, active, deadline, done *bolt.Bucket
}

func (s *Store) open(tx *bolt.Tx) *buckets {
	return &buckets{
		s:         s,
		tx:        tx,
		meta:      tx.Bucket(bMeta),
		checkouts: tx.Bucket(bCheckouts),
		idem:      tx.Bucket(bIdem),
		fifo:      tx.Bucket(bFIFO),
		unsent:    tx.Bucket(bUnsent),
		due:       tx.Bucket(bDue),
		dueTerm:   tx.Bucket(bDueTerm),
		active:    tx.Bucket(bActive),
		deadline:  tx.Bucket(bDeadline),
		done:      tx.Bucket(bDone),
	}
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
	if err := b.checkouts.Put(seqKey(r.Seq), v); err != nil {
		return fmt.Errorf("queue: put checkout %s: %w", r.ID, err)
	}
	var was pos.State
	if old != nil {
		was = old.State
	} else if r.IdempotencyKey != "" {
		if err := b.idem.Put([]byte(r.IdempotencyKey), seqKey(r.Seq)); err != nil {
			return fmt.Errorf("queue: put idempotency key: %w", err)
		}
	}
	now := r.State
	seq := seqKey(r.Seq)
	if err := index(b.unsent, seq, nil, isUnsent(was), isUnsent(now)); err != nil {
		return err
	}
	// The FIFO entry's value is the next-attempt time, so the due index
	// can be refreshed without decoding the head's record.
	fk := fifoKey(r.TerminalID, r.Seq)
	if was == pos.StateQueued {
		if err := b.fifo.Delete(fk); err != nil {
			return fmt.Errorf("queue: delete fifo entry: %w", err)
		}
	}
	if now == pos.StateQueued {
		if err := b.fifo.Put(fk, timeBytes(r.NextAttemptAt)); err != nil {
			return fmt.Errorf("queue: put fifo entry: %w", err)
		}
	}
	term := []byte(r.TerminalID)
	if isActive(was) && !isActive(now) {
		if err := b.active.Delete(term); err != nil {
			return fmt.Errorf("queue: delete active entry: %w", err)
		}
	}
	if isActive(now) && !isActive(was) {
		if err := b.active.Put(term, seq); err != nil {
			return fmt.Errorf("queue: put active entry: %w", err)
		}
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
	if err := b.refreshDue(r.TerminalID); err != nil {
		return err
	}
	return b.addStats(old, r)
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

// refreshDue makes the due index hold terminal's FIFO head iff the terminal
// has no active checkout.
func (b *buckets) refreshDue(terminal string) error {
	term := []byte(terminal)
	var want []byte
	if b.active.Get(term) == nil {
		prefix := fifoPrefix(terminal)
		k, v := b.fifo.Cursor().Seek(prefix)
		if k != nil && bytes.HasPrefix(k, prefix) {
			want = append(slices.Clone(v[:8]), k[len(k)-8:]...)
		}
	}
	have := b.dueTerm.Get(term)
	if bytes.Equal(have, want) {
		return nil
	}
	if have != nil {
		if err := b.due.Delete(have); err != nil {
			return fmt.Errorf("queue: delete due entry: %w", err)
		}
	}
	if want == nil {
		if err := b.dueTerm.Delete(term); err != nil {
			return fmt.Errorf("queue: delete due entry: %w", err)
		}
		return nil
	}
	if err := b.due.Put(want, term); err != nil {
		return fmt.Errorf("queue: put due entry: %w", err)
	}
	if err := b.dueTerm.Put(term, want); err != nil {
		return fmt.Errorf("queue: put due entry: %w", err)
	}
	return nil
}

// stateSlots fixes the order of the per-state counters on disk. Append
// only: the position of a state is part of the schema.
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

func (b *buckets) counters() counters {
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

func (b *buckets) putCounters(c counters) error {
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
