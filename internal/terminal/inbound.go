package terminal

import (
	"errors"
	"fmt"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

var errPanicked = errors.New("terminal: event handler panicked")

// inbound handles one message from a terminal. It runs on a link's
// goroutine (the serial reader, paho's router) and never blocks: replies
// go to the terminal's send queue, events to its event queue.
func (h *Hub) inbound(t *term, payload []byte) {
	now := time.Now()
	m, err := protocol.Decode(payload)
	kind := string(m.Kind)
	if err != nil {
		kind = "invalid"
	}
	h.trace(In, t, kind, len(payload))
	h.change(t, func() {
		t.lastSeen = now
		t.silent = false
		if err != nil {
			t.badMessages++
		}
	})
	if err != nil {
		h.log.Warn("bad message from terminal", "terminal", t.id, "err", err)
		if m.Kind.Refusable() {
			h.send(t, h.ids.Refusal(m, t.id, err))
		}
		return
	}
	if m.TerminalID != t.id {
		h.log.Warn("message names another terminal: is a cable in the wrong port?", "terminal", t.id, "named", m.TerminalID)
		if m.Kind.Refusable() {
			h.send(t, h.ids.Refusal(m, t.id, &protocol.RefusalError{Code: protocol.ErrCodeWrongTerminal,
				Message: fmt.Sprintf("this link serves terminal %s", t.id)}))
		}
		return
	}
	if !t.known {
		return // tracked for diagnostics only
	}
	switch m.Kind {
	case protocol.KindHello:
		h.change(t, func() {
			t.hello = *m.Hello
			t.identified = true
			t.linkUp = true // over MQTT a hello proves the terminal is there
			t.probes = 0
		})
		h.send(t, h.ids.Reply(protocol.KindAck, m))
		h.resendNow(t)
	case protocol.KindAck, protocol.KindError:
		h.settle(t, m)
	case protocol.KindPong:
		h.mu.Lock()
		ch := h.pings[m.Ref]
		delete(h.pings, m.Ref)
		h.mu.Unlock()
		if ch != nil {
			ch <- nil
		}
	case protocol.KindPing:
		h.send(t, h.ids.Reply(protocol.KindPong, m))
	case protocol.KindStatus:
		busy := m.Status.State == protocol.StateBusy
		h.change(t, func() {
			t.busy = busy
			t.tx = m.Status.TransactionID
		})
		h.pushEvent(t, event{ev: pos.TerminalEvent{Kind: pos.TerminalStatus, TerminalID: t.id,
			TransactionID: m.Status.TransactionID, Busy: busy, At: now}})
	case protocol.KindResult:
		h.result(t, m, now)
	default:
		// identify, invoice, cancel: bridge → terminal only.
		h.send(t, h.ids.Refusal(m, t.id, &protocol.RefusalError{Code: protocol.ErrCodeUnsupportedKind,
			Message: "a bridge does not accept " + string(m.Kind)}))
	}
}

// result queues a payment result for OnEvent once, and acknowledges it to
// the terminal only when OnEvent took it. A result that cannot be queued
// (the hub is closing, or t's event queue is full) is not acknowledged.
func (h *Hub) result(t *term, m protocol.Message, now time.Time) {
	// A result proves the terminal had the transaction's invoice, even if
	// its ack was lost: stop offering the invoice (a terminal app that
	// restarted after the payment would show it again, and the customer
	// pay twice) and let PushInvoice return.
	h.mu.Lock()
	p := h.byTx[t.id+"/"+m.Result.TransactionID]
	if p != nil {
		h.settleLocked(p.msg.ID, p, nil)
	}
	h.mu.Unlock()
	if p != nil {
		h.invoiceAcked(t, p)
	}
	if h.handled.Has(t.id, m.ID) {
		h.send(t, h.ids.Reply(protocol.KindAck, m)) // our ack was lost: again
		return
	}
	key := t.id + "\x00" + m.ID
	h.mu.Lock()
	if h.inflight[key] {
		h.mu.Unlock()
		return // a resend of a result still queued
	}
	h.inflight[key] = true
	h.mu.Unlock()
	r := m.Result
	ev := pos.TerminalEvent{Kind: pos.TerminalResult, TerminalID: t.id, TransactionID: r.TransactionID,
		InvoiceNumber: r.InvoiceNumber, Outcome: r.Outcome, Reference: r.Reference, Reason: r.Reason, At: now}
	queued := h.pushEvent(t, event{ev: ev, done: func(err error) {
		if err == nil {
			// Handled before it stops being in flight: a resend arriving
			// in between is answered as handled, not delivered again.
			h.handled.Add(t.id, m.ID)
		}
		h.mu.Lock()
		delete(h.inflight, key)
		h.mu.Unlock()
		if err != nil {
			h.log.Warn("result not taken; the terminal will send it again", "terminal", t.id,
				"transaction", r.TransactionID, "err", err)
			return
		}
		h.send(t, h.ids.Reply(protocol.KindAck, m))
	}})
	if !queued {
		// Closing, or t's queue is full: not acknowledged, so the
		// terminal sends it again and it is queued then.
		h.mu.Lock()
		delete(h.inflight, key)
		h.mu.Unlock()
	}
}

// settle matches an ack or error to what it answers.
func (h *Hub) settle(t *term, m protocol.Message) {
	var refusal error
	if m.Kind == protocol.KindError {
		refusal = refusalError(m.Error)
	}
	h.mu.Lock()
	if ch := h.pings[m.Ref]; ch != nil {
		delete(h.pings, m.Ref)
		h.mu.Unlock()
		ch <- refusal
		return
	}
	p := h.outbox[m.Ref]
	if p == nil || p.term != t {
		h.mu.Unlock()
		if refusal != nil {
			h.log.Warn("terminal refused a message", "terminal", t.id, "ref", m.Ref, "err", refusal)
		}
		return // a late or repeated answer
	}
	h.settleLocked(m.Ref, p, refusal)
	h.mu.Unlock()
	if refusal == nil && p.msg.Kind == protocol.KindInvoice {
		h.invoiceAcked(t, p)
	}
}

// invoiceAcked reports an invoice the terminal took.
func (h *Hub) invoiceAcked(t *term, p *pending) {
	in := p.msg.Invoice
	h.pushEvent(t, event{ev: pos.TerminalEvent{Kind: pos.TerminalAck, TerminalID: t.id,
		TransactionID: in.TransactionID, InvoiceNumber: in.InvoiceNumber, At: time.Now()}})
}

// refusalError maps a protocol error to the hub's sentinel errors.
func refusalError(e *protocol.Error) error {
	r := &protocol.RefusalError{Code: e.Code, Message: e.Message}
	switch e.Code {
	case protocol.ErrCodeBusy:
		return fmt.Errorf("%w: %w", ErrBusy, r)
	case protocol.ErrCodeUnknownTransaction:
		return fmt.Errorf("%w: %w", ErrUnknownTransaction, r)
	case protocol.ErrCodeAlreadyCompleted:
		return fmt.Errorf("%w: %w", ErrAlreadyCompleted, r)
	}
	return fmt.Errorf("%w: %w", ErrRefused, r)
}

// MQTT handlers: called on paho's goroutines; never block.

func (h *Hub) mqttTerm(id string) *term {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.terms[id]
	if t != nil {
		if t.kind != LinkMQTT {
			return nil // a serial terminal's id on the broker: ignore
		}
		return t
	}
	if !protocol.ValidID(id) || h.unknown >= maxUnknownTerminals {
		return nil
	}
	h.unknown++
	h.log.Warn(unknownTerminalWarning, "terminal", id)
	t = &term{id: id, kind: LinkMQTT, qsig: make(chan struct{}, 1)}
	h.terms[id] = t
	return t
}

func (h *Hub) mqttMessage(id string, payload []byte) {
	if t := h.mqttTerm(id); t != nil {
		if t.known {
			h.mu.Lock()
			up := t.linkUp
			h.mu.Unlock()
			if !up {
				h.change(t, func() { t.linkUp = true })
			}
		}
		h.inbound(t, payload)
	}
}

func (h *Hub) mqttPresence(id string, online bool) {
	t := h.mqttTerm(id)
	if t == nil {
		return
	}
	if !t.known {
		h.change(t, func() { t.linkUp = online; t.lastSeen = time.Now() })
		return
	}
	if online {
		h.linkUp(t)
		return
	}
	h.linkDown(t, errors.New("terminal went offline (MQTT presence)"))
	// An offline presence may be stale: a broker can deliver an old
	// connection's Last Will after the new connection's online (and keep
	// it as the retained presence). A terminal that is there answers
	// identify with hello, which shows it connected again; one that is
	// gone costs a few messages no one reads. Asked now and, in case
	// that is lost, by maintain a few more times.
	h.mu.Lock()
	t.probes = offlineProbes - 1
	t.lastPing = time.Now()
	h.mu.Unlock()
	h.send(t, h.ids.New(protocol.KindIdentify, t.id))
}

func (h *Hub) mqttConnected() {
	h.log.Info("connected to MQTT broker")
	h.setMQTTUp(true)
	// Retained presences arrive after the subscription and mark each
	// terminal up; resend to those already up at once.
	h.resendNow(nil)
}

func (h *Hub) mqttLost(err error) {
	h.log.Warn("lost the MQTT broker; reconnecting", "err", err)
	h.setMQTTUp(false)
}

// setMQTTUp flips the broker state and reports the terminals whose
// connected state changed with it. A lost broker makes every MQTT terminal
// unknown again: presence and hello are replayed after reconnect.
func (h *Hub) setMQTTUp(up bool) {
	type flip struct {
		t             *term
		before, after bool
	}
	var flips []flip
	h.mu.Lock()
	for _, t := range h.terms {
		if t.kind != LinkMQTT || !t.known {
			continue
		}
		before := t.connected(h.mqttUp)
		flips = append(flips, flip{t: t, before: before})
	}
	h.mqttUp = up
	for i := range flips {
		t := flips[i].t
		if !up {
			t.linkUp = false
			t.identified = false
		}
		flips[i].after = t.connected(up)
		if flips[i].after && !flips[i].before {
			t.connectedSince = time.Now()
		}
	}
	h.mu.Unlock()
	for _, f := range flips {
		h.connEvent(f.t, f.before, f.after)
	}
}
