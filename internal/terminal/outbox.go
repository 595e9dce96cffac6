package terminal

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// pending is a reliable message waiting for the terminal's ack.
type pending struct {
	msg      protocol.Message
	payload  []byte
	term     *term
	txKey    string // invoices: terminal/transaction, for byTx
	deadline time.Time
	nextSend time.Time
	done     chan struct{}
	err      error // set before done is closed
}

// addPending puts a reliable message in the outbox and sends it now if the
// link is up. For an invoice (txKey set) whose transaction already has an
// undelivered invoice in the outbox, it returns that one instead: the
// terminal must get one message for it, not one per caller. The look-up
// and the insert are one step under the lock, so callers pushing the same
// transaction at the same time share a message too. Called without the
// lock.
//
// A terminal gets its reliable messages in the order they were made, also
// when they are sent again after a reconnect (a cancel of the payment on
// screen before the next invoice, which the terminal would otherwise
// refuse as busy). So the message is sent here only when none of the
// terminal's older ones is due to be sent; otherwise it is made due and
// maintain sends them all in order.
func (h *Hub) addPending(t *term, m protocol.Message, deadline time.Time, txKey string) (*pending, error) {
	b, err := protocol.Encode(m)
	if err != nil {
		return nil, err
	}
	p := &pending{msg: m, payload: b, term: t, txKey: txKey, deadline: deadline, done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateOpen {
		return nil, ErrClosed
	}
	if old := h.byTx[txKey]; txKey != "" && old != nil {
		return old, nil
	}
	now := time.Now()
	up := t.linkUp && (t.kind != LinkMQTT || h.mqttUp)
	waiting := false
	for _, q := range t.pend {
		waiting = waiting || !now.Before(q.nextSend)
	}
	h.outbox[m.ID] = p
	if txKey != "" {
		h.byTx[txKey] = p
	}
	t.pend = append(t.pend, p)
	switch {
	case up && !waiting:
		p.nextSend = now.Add(h.cfg.ResendInterval)
		// Under the lock, as maintain's sends: the queue's order is the
		// order the messages were made.
		h.enqueue(t, outMsg{kind: m.Kind, payload: b})
	default:
		// Sent by maintain, after the older ones: at once when the link
		// is up, else when it comes up.
		p.nextSend = now
		if up {
			h.kickMaintain()
		}
	}
	return p, nil
}

// settleLocked removes p from the outbox and wakes its waiters.
func (h *Hub) settleLocked(id string, p *pending, err error) {
	if h.outbox[id] != p {
		return
	}
	delete(h.outbox, id)
	if i := slices.Index(p.term.pend, p); i >= 0 {
		p.term.pend = slices.Delete(p.term.pend, i, i+1)
	}
	if p.txKey != "" && h.byTx[p.txKey] == p {
		delete(h.byTx, p.txKey)
	}
	p.err = err
	close(p.done)
}

// wait blocks until p is settled or ctx ends.
func (h *Hub) wait(ctx context.Context, p *pending) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return errors.Join(ErrNotAcknowledged, ctx.Err())
	}
}

// send queues a one-shot (not reliable) message.
func (h *Hub) send(t *term, m protocol.Message) {
	b, err := protocol.Encode(m)
	if err != nil {
		h.log.Error("encode message", "terminal", t.id, "kind", m.Kind, "err", err)
		return
	}
	h.enqueue(t, outMsg{kind: m.Kind, payload: b})
}

func (h *Hub) enqueue(t *term, m outMsg) {
	if !t.known {
		// A terminal heard on the broker but not configured has no
		// txLoop: the hub does not talk to it, and a queued message
		// would stay in memory for good (one per message it sends).
		return
	}
	t.qmu.Lock()
	t.q = append(t.q, m)
	t.qmu.Unlock()
	select {
	case t.qsig <- struct{}{}:
	default:
	}
}

// txLoop sends a terminal's queued messages in order. A failed send is
// not retried here: reliable messages stay in the outbox and maintain
// resends them; one-shot messages are lost like a lost frame would be.
func (h *Hub) txLoop(t *term) {
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.qsig:
		}
		t.qmu.Lock()
		q := t.q
		t.q = nil
		t.qmu.Unlock()
		for _, m := range q {
			if h.ctx.Err() != nil {
				return
			}
			if err := h.transmit(t, m); err != nil {
				h.log.Debug("send failed", "terminal", t.id, "kind", m.kind, "err", err)
				h.mu.Lock()
				t.lastErr = err.Error()
				h.mu.Unlock()
			}
		}
	}
}

func (h *Hub) transmit(t *term, m outMsg) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.SendTimeout)
	defer cancel()
	var err error
	switch t.kind {
	case LinkSerial:
		err = t.slink.Send(ctx, m.payload)
	case LinkMQTT:
		err = h.bridge.Publish(ctx, t.id, m.payload)
	}
	if err == nil {
		h.trace(Out, t, string(m.kind), len(m.payload))
	}
	return err
}

// resendNow makes every message waiting for t (every terminal's for nil)
// due at once.
func (h *Hub) resendNow(t *term) {
	h.mu.Lock()
	now := time.Now()
	for _, x := range h.terms {
		if t == nil || x == t {
			for _, p := range x.pend {
				p.nextSend = now
			}
		}
	}
	h.mu.Unlock()
	h.kickMaintain()
}

func (h *Hub) kickMaintain() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// maintain resends due messages, expires old ones, pings quiet terminals
// and declares silent ones disconnected.
func (h *Hub) maintain() {
	tick := time.NewTicker(maintainTick)
	defer tick.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		case <-h.kick:
		}
		now := time.Now()
		type send struct {
			t *term
			m outMsg
		}
		var sends []send
		var silent []*term
		h.mu.Lock()
		for _, t := range h.terms {
			up := t.linkUp && (t.kind != LinkMQTT || h.mqttUp)
			// In the order they were made (settling one removes it from
			// t.pend, so walk a copy), and queued under the lock, as
			// addPending does: a terminal gets them in that order.
			for _, p := range slices.Clone(t.pend) {
				if now.After(p.deadline) {
					h.settleLocked(p.msg.ID, p, ErrExpired)
					continue
				}
				if up && !now.Before(p.nextSend) {
					p.nextSend = now.Add(h.cfg.ResendInterval)
					h.enqueue(t, outMsg{kind: p.msg.Kind, payload: p.payload})
				}
			}
		}
		for _, t := range h.terms {
			if t.known && !t.linkUp && t.probes > 0 && h.mqttUp && now.Sub(t.lastPing) > h.cfg.ResendInterval {
				// Its presence said offline: is it there after all?
				t.probes--
				t.lastPing = now
				if b, err := protocol.Encode(h.ids.New(protocol.KindIdentify, t.id)); err == nil {
					sends = append(sends, send{t, outMsg{kind: protocol.KindIdentify, payload: b}})
				}
			}
			if !t.known || !t.linkUp || (t.kind == LinkMQTT && !h.mqttUp) {
				continue
			}
			if !t.identified {
				// The identify sent when the link came up may be lost.
				if now.Sub(t.lastPing) > h.cfg.ResendInterval {
					t.lastPing = now
					if b, err := protocol.Encode(h.ids.New(protocol.KindIdentify, t.id)); err == nil {
						sends = append(sends, send{t, outMsg{kind: protocol.KindIdentify, payload: b}})
					}
				}
				continue
			}
			quiet := now.Sub(t.lastSeen)
			if quiet > time.Duration(silentAfterPings)*h.cfg.PingInterval && !t.silent {
				silent = append(silent, t)
				continue
			}
			if quiet > h.cfg.PingInterval && now.Sub(t.lastPing) > h.cfg.PingInterval {
				t.lastPing = now
				b, err := protocol.Encode(h.ids.New(protocol.KindPing, t.id))
				if err == nil {
					sends = append(sends, send{t, outMsg{kind: protocol.KindPing, payload: b}})
				}
			}
		}
		h.mu.Unlock()
		for _, s := range sends {
			h.enqueue(s.t, s.m)
		}
		for _, t := range silent {
			h.log.Warn("terminal stopped answering", "terminal", t.id, "link", t.kind)
			h.change(t, func() { t.silent = true; t.lastErr = "terminal stopped answering pings" })
			if t.slink != nil {
				t.slink.Reset()
			}
		}
	}
}
