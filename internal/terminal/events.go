package terminal

import (
	"sync"

	"github.com/posbridge/posbridge/internal/pos"
)

// event is one queued TerminalEvent; done (if set) learns how OnEvent
// took it.
type event struct {
	ev   pos.TerminalEvent
	done func(err error)
}

// eventQueue is unbounded so a link never waits for the subscriber. It is
// bounded in practice by the terminals' own pace (a result per payment).
type eventQueue struct {
	mu     sync.Mutex
	items  []event
	sig    chan struct{}
	closed bool
}

func newEventQueue() *eventQueue { return &eventQueue{sig: make(chan struct{}, 1)} }

func (q *eventQueue) push(e event) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.sig <- struct{}{}:
	default:
	}
}

func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

func (q *eventQueue) take() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// dispatch calls OnEvent for each event in order, on one goroutine.
func (h *Hub) dispatch() {
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.events.sig:
		}
		for _, e := range h.events.take() {
			if h.ctx.Err() != nil {
				return
			}
			var err error
			if h.cfg.OnEvent != nil {
				err = h.safeOnEvent(e.ev)
			}
			if e.done != nil {
				e.done(err)
			}
		}
	}
}

func (h *Hub) safeOnEvent(ev pos.TerminalEvent) (err error) {
	defer func() {
		if r := recover(); r != nil {
			h.log.Error("terminal event handler panicked", "kind", ev.Kind, "terminal", ev.TerminalID, "panic", r)
			err = errPanicked
		}
	}()
	return h.cfg.OnEvent(h.ctx, ev)
}
