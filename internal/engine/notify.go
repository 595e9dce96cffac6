package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// subscriberBuffer is each subscriber's channel capacity. A subscriber
// that falls this far behind loses changes (counted in
// Status.DroppedNotifications) rather than slowing the engine; the till
// can always GET the checkout.
const subscriberBuffer = 256

// notifier fans committed changes out to subscribers and to Wait calls.
//
// Changes are committed in order by the store's one committer, but each
// is published by the goroutine that made it, after its commit returned:
// two changes of one checkout made at once (a till's cancel and the
// terminal's result) can reach publish in the other order. publish
// therefore drops a change older than the last one it published for that
// checkout (fewer transitions, or as many and an earlier UpdatedAt: the
// store stamps each change in commit order), so a subscriber's last event
// for a checkout is its latest state, never a stale one after it.
type notifier struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	waiters map[string]map[chan struct{}]struct{} // checkout id → waiting calls
	closed  bool
	dropped atomic.Int64
	stale   atomic.Int64 // changes not published: a later one was already

	// The last change published per checkout, for the recentChanges most
	// recently published checkouts (a reordering is a matter of
	// microseconds; older ones need no memory).
	last  map[string]revision
	order []string // ring of the ids in last, oldest at next
	next  int
}

// recentChanges bounds the notifier's memory of published changes.
const recentChanges = 4096

// revision orders the committed versions of one checkout.
type revision struct {
	transitions int
	updated     time.Time
}

func revisionOf(c pos.Checkout) revision {
	return revision{transitions: len(c.History), updated: c.UpdatedAt}
}

func (r revision) before(o revision) bool {
	if r.transitions != o.transitions {
		return r.transitions < o.transitions
	}
	return r.updated.Before(o.updated)
}

// fresh reports whether c is not older than the last change published for
// its checkout, and remembers it. n.mu is held.
func (n *notifier) fresh(c pos.Checkout) bool {
	rev := revisionOf(c)
	if last, ok := n.last[c.ID]; ok {
		if rev.before(last) {
			return false
		}
		n.last[c.ID] = rev
		return true
	}
	if len(n.order) < recentChanges {
		n.order = append(n.order, c.ID)
	} else {
		delete(n.last, n.order[n.next])
		n.order[n.next] = c.ID
		n.next = (n.next + 1) % recentChanges
	}
	n.last[c.ID] = rev
	return true
}

type subscriber struct {
	ch   chan pos.Checkout
	once sync.Once
}

func (n *notifier) init() {
	n.subs = map[*subscriber]struct{}{}
	n.waiters = map[string]map[chan struct{}]struct{}{}
	n.last = map[string]revision{}
}

// publish is called after a change is committed. It never blocks.
func (n *notifier) publish(c pos.Checkout) {
	n.mu.Lock()
	defer n.mu.Unlock()
	// A Wait reads the store when woken, so it is woken whatever the
	// order (a clock set back can stamp a newer change with an earlier
	// UpdatedAt).
	for ch := range n.waiters[c.ID] {
		close(ch)
	}
	delete(n.waiters, c.ID)
	// Only subscribers see the changes themselves, so without any there
	// is nothing to keep in order.
	if len(n.subs) > 0 && !n.fresh(c) {
		n.stale.Add(1)
		return
	}
	for s := range n.subs {
		select {
		case s.ch <- c:
		default:
			n.dropped.Add(1)
		}
	}
}

// watch registers interest in the next change of id. The returned channel
// is closed on that change (or when the engine closes); stop unregisters.
func (n *notifier) watch(id string) (ch chan struct{}, stop func()) {
	ch = make(chan struct{})
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		close(ch)
		return ch, func() {}
	}
	m := n.waiters[id]
	if m == nil {
		m = map[chan struct{}]struct{}{}
		n.waiters[id] = m
	}
	m[ch] = struct{}{}
	return ch, func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		if m := n.waiters[id]; m != nil {
			delete(m, ch)
			if len(m) == 0 {
				delete(n.waiters, id)
			}
		}
	}
}

func (n *notifier) closeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for s := range n.subs {
		s.once.Do(func() { close(s.ch) })
	}
	clear(n.subs)
	for _, m := range n.waiters {
		for ch := range m {
			close(ch)
		}
	}
	clear(n.waiters)
}

// Subscribe delivers every committed checkout change until cancel is
// called or the engine closes (then the channel is closed). A change older
// than one already delivered for its checkout is dropped, so the last one
// seen is the latest. A subscriber that does not keep up loses changes
// instead of blocking the engine; it should re-read what it cares about.
func (e *Engine) Subscribe() (<-chan pos.Checkout, func()) {
	s := &subscriber{ch: make(chan pos.Checkout, subscriberBuffer)}
	n := &e.notify
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	n.subs[s] = struct{}{}
	n.mu.Unlock()
	return s.ch, func() {
		n.mu.Lock()
		delete(n.subs, s)
		n.mu.Unlock()
		s.once.Do(func() { close(s.ch) })
	}
}

// Wait returns checkout id once its UpdatedAt is after since, or once it
// changed while Wait waited (after the system clock was set back, a
// change can carry an UpdatedAt before since), or the current checkout
// (and no error) when ctx ends or the engine closes. It sleeps on the
// engine's change notifications, never polls.
func (e *Engine) Wait(ctx context.Context, id string, since time.Time) (pos.Checkout, error) {
	var seen *pos.Checkout // as read before the last wait
	for {
		ch, stop := e.notify.watch(id)
		c, err := e.store.Get(ctx, id)
		if err != nil {
			stop()
			if ctx.Err() != nil {
				// The caller gave up; answer with what is stored.
				return e.store.Get(context.Background(), id)
			}
			return c, err
		}
		if c.UpdatedAt.After(since) || e.closed.Load() ||
			seen != nil && (!c.UpdatedAt.Equal(seen.UpdatedAt) || len(c.History) != len(seen.History)) {
			stop()
			return c, nil
		}
		seen = &c
		select {
		case <-ch:
			stop()
		case <-ctx.Done():
			stop()
			return e.store.Get(context.Background(), id)
		}
	}
}
