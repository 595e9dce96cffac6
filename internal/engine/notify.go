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
type notifier struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	waiters map[string]map[chan struct{}]struct{} // checkout id → waiting calls
	closed  bool
	dropped atomic.Int64
}

type subscriber struct {
	ch   chan pos.Checkout
	once sync.Once
}

func (n *notifier) init() {
	n.subs = map[*subscriber]struct{}{}
	n.waiters = map[string]map[chan struct{}]struct{}{}
}

// publish is called after a change is committed. It never blocks.
func (n *notifier) publish(c pos.Checkout) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs {
		select {
		case s.ch <- c:
		default:
			n.dropped.Add(1)
		}
	}
	for ch := range n.waiters[c.ID] {
		close(ch)
	}
	delete(n.waiters, c.ID)
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

// Subscribe delivers every committed checkout change, in commit order,
// until cancel is called or the engine closes (then the channel is
// closed). A subscriber that does not keep up loses changes instead of
// blocking the engine; it should re-read what it cares about.
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

// Wait returns checkout id once its UpdatedAt is after since, or the
// current checkout (and no error) when ctx ends or the engine closes. It
// sleeps on the engine's change notifications, never polls.
func (e *Engine) Wait(ctx context.Context, id string, since time.Time) (pos.Checkout, error) {
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
		if c.UpdatedAt.After(since) || e.closed.Load() {
			stop()
			return c, nil
		}
		select {
		case <-ch:
			stop()
		case <-ctx.Done():
			stop()
			return e.store.Get(context.Background(), id)
		}
	}
}
