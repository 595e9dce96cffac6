package terminal

import (
	"sync"

	"github.com/posbridge/posbridge/internal/pos"
)

// maxQueuedEvents bounds one terminal's event queue. A terminal that
// follows the protocol makes a few events per payment, so the queue only
// fills when OnEvent has been stuck on that terminal's events for long
// (a store that stopped answering) or the terminal floods the bridge.
// A result that finds the queue full is not queued and so not
// acknowledged: the terminal sends it again. Other events are dropped
// and counted (Status.DroppedEvents): an ack is also learned by polling,
// and Terminals reports connection and busy state itself.
const maxQueuedEvents = 256

// event is one queued TerminalEvent; done (if set) learns how OnEvent
// took it.
type event struct {
	ev   pos.TerminalEvent
	done func(err error)
}

// eventQueue is one terminal's events waiting for OnEvent, in order.
// Links never wait for it: push returns at once.
type eventQueue struct {
	mu      sync.Mutex
	items   []event
	sig     chan struct{}
	closed  bool
	full    bool   // dropped since the queue last emptied
	dropped uint64 // events dropped because the queue was full
}

func newEventQueue() *eventQueue { return &eventQueue{sig: make(chan struct{}, 1)} }

type pushResult int

const (
	pushed pushResult = iota
	pushClosed
	pushFull
)

// push queues e unless the queue is closed or full. firstDrop reports
// the first event dropped since the queue last emptied.
func (q *eventQueue) push(e event) (r pushResult, firstDrop bool) {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return pushClosed, false
	case len(q.items) >= maxQueuedEvents:
		firstDrop = !q.full
		q.full = true
		q.dropped++
		q.mu.Unlock()
		return pushFull, firstDrop
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.sig <- struct{}{}:
	default:
	}
	return pushed, false
}

// next takes the oldest event. One at a time, so the events being
// handled count against the bound until their turn comes.
func (q *eventQueue) next() (event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		q.items = nil // let a grown backing array go
		q.full = false
		return event{}, false
	}
	e := q.items[0]
	q.items[0] = event{}
	q.items = q.items[1:]
	return e, true
}

// close refuses further events and forgets the queued ones: the results
// among them stay unacknowledged, so their terminals send them again.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.mu.Unlock()
}

func (q *eventQueue) droppedCount() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// pushEvent queues e for t's dispatcher. It reports whether e was
// queued; a caller whose event was not queued must not act as if
// OnEvent took it.
func (h *Hub) pushEvent(t *term, e event) bool {
	if t.events == nil {
		return false // not configured: no dispatcher
	}
	r, firstDrop := t.events.push(e)
	if firstDrop {
		h.log.Warn("terminal events are not being taken: dropping its new events until OnEvent catches up (results stay unacknowledged and are sent again)",
			"terminal", t.id, "queued", maxQueuedEvents, "kind", e.ev.Kind)
	}
	return r == pushed
}

// dispatch calls OnEvent for t's events, one at a time in the order they
// were queued. Each configured terminal has its own, so a handler that is
// slow for one terminal (its result being stored) holds up no other. The
// context passed to OnEvent ends when the hub closes.
func (h *Hub) dispatch(t *term) {
	defer t.events.close()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.events.sig:
		}
		for {
			if h.ctx.Err() != nil {
				return
			}
			e, ok := t.events.next()
			if !ok {
				break
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
