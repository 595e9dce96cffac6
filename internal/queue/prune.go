package queue

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Prune removes up to Options.PruneBatch checkouts that became final before
// now minus Options.Retention, with their idempotency keys, in one durable
// transaction. more reports that further records are due for removal: the
// engine calls Prune periodically and again at once while more is true.
// bbolt reuses the freed pages; the file does not shrink (docs/queue.md).
func (s *Store) Prune(ctx context.Context, now time.Time) (removed int, more bool, err error) {
	limit := timeBytes(now.Add(-s.opt.Retention))
	err = s.update(ctx, func(tx *bolt.Tx) error {
		removed, more = 0, false
		b := s.open(tx)
		c := b.done.Cursor()
		var stats *counters
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			if bytes.Compare(k[:8], limit) >= 0 {
				return b.flushCounters(stats)
			}
			if removed == s.opt.PruneBatch {
				more = true
				return b.flushCounters(stats)
			}
			seq := seqOf(k)
			r, err := b.load(seq)
			if err != nil {
				return err
			}
			if r != nil {
				if r.IdempotencyKey != "" {
					// Only if the key still points here (it always should).
					if v := b.idem.Get([]byte(r.IdempotencyKey)); v != nil && seqOf(v) == seq {
						if err := b.idem.Delete([]byte(r.IdempotencyKey)); err != nil {
							return fmt.Errorf("queue: prune idempotency key: %w", err)
						}
					}
				}
				if err := b.checkouts.Delete(seqKey(seq)); err != nil {
					return fmt.Errorf("queue: prune checkout %s: %w", r.ID, err)
				}
				if stats == nil {
					cs := b.counters()
					stats = &cs
				}
				stats.byState[slot(r.State)]--
			}
			if err := c.Delete(); err != nil {
				return fmt.Errorf("queue: prune done entry: %w", err)
			}
			removed++
		}
		return b.flushCounters(stats)
	})
	if err != nil {
		return 0, false, err
	}
	return removed, more, nil
}

func (b *buckets) flushCounters(c *counters) error {
	if c == nil {
		return nil
	}
	return b.putCounters(*c)
}
