package terminal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

func (h *Hub) knownTerm(id string) (*term, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateOpen {
		return nil, ErrClosed
	}
	t := h.terms[id]
	if t == nil || !t.known {
		return nil, fmt.Errorf("%w %q", ErrUnknownTerminal, id)
	}
	return t, nil
}

// PushInvoice shows an invoice on a terminal. It returns nil once the
// terminal acknowledged it (it is on screen; a TerminalAck event is sent
// too) or sent the transaction's result (its ack was lost), an error wrapping ErrBusy (or ErrRefused) if the terminal refused
// it, or, when ctx ends first, an error wrapping ErrNotAcknowledged: the
// hub then keeps delivering it, across reconnects, until p.Deadline
// (default: now + DefaultInvoiceTTL) or CancelInvoice. Pushing the same
// transaction again while it is undelivered reuses the same message, so
// the terminal sees it once.
func (h *Hub) PushInvoice(ctx context.Context, terminalID string, p InvoicePush) error {
	t, err := h.knownTerm(terminalID)
	if err != nil {
		return err
	}
	m := h.ids.New(protocol.KindInvoice, terminalID)
	m.Invoice = p.message()
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errInvalidInvoicePush, err)
	}
	deadline := p.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(h.cfg.DefaultInvoiceTTL)
	}
	pend, err := h.addPending(t, m, deadline, terminalID+"/"+p.TransactionID)
	if err != nil {
		return fmt.Errorf("push invoice to %s: %w", terminalID, err)
	}
	if err := h.wait(ctx, pend); err != nil {
		return fmt.Errorf("push invoice %s to %s: %w", p.TransactionID, terminalID, err)
	}
	return nil
}

// CancelInvoice takes an invoice off a terminal. An invoice still waiting
// for delivery is withdrawn (its PushInvoice returns ErrWithdrawn), and a
// cancel is sent anyway in case it did arrive. It returns nil once the
// terminal acknowledged the cancel (a TerminalResult with outcome canceled
// follows), an error wrapping ErrAlreadyCompleted when the payment ended
// first (its result is or will be delivered), ErrUnknownTransaction when
// the terminal never had it, or ErrNotAcknowledged when ctx ends first
// (the cancel is still delivered in the background). Its reason is
// CancelReasonTill.
func (h *Hub) CancelInvoice(ctx context.Context, terminalID, transactionID string) error {
	return h.cancelInvoice(ctx, terminalID, transactionID, CancelReasonTill)
}

// The reasons a cancel carries to the terminal, which shows it and may
// pass it on in its result.
const (
	CancelReasonTill     = "canceled by the till"
	CancelReasonDeadline = "timeout" // as a terminal's own result after the deadline
)

func (h *Hub) cancelInvoice(ctx context.Context, terminalID, transactionID, reason string) error {
	t, err := h.knownTerm(terminalID)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if p := h.byTx[terminalID+"/"+transactionID]; p != nil {
		h.settleLocked(p.msg.ID, p, ErrWithdrawn)
	}
	h.mu.Unlock()
	m := h.ids.New(protocol.KindCancel, terminalID)
	m.Cancel = &protocol.Cancel{TransactionID: transactionID, Reason: reason}
	pend, err := h.addPending(t, m, time.Now().Add(h.cfg.DefaultInvoiceTTL), "")
	if err != nil {
		return fmt.Errorf("cancel %s on %s: %w", transactionID, terminalID, err)
	}
	if err := h.wait(ctx, pend); err != nil {
		return fmt.Errorf("cancel %s on %s: %w", transactionID, terminalID, err)
	}
	return nil
}

// Ping checks a terminal answers: nil when its pong arrives,
// ErrNotConnected when its link is down, ctx's error on silence.
func (h *Hub) Ping(ctx context.Context, terminalID string) error {
	t, err := h.knownTerm(terminalID)
	if err != nil {
		return err
	}
	m := h.ids.New(protocol.KindPing, terminalID)
	ch := make(chan error, 1)
	h.mu.Lock()
	up := t.linkUp && (t.kind != LinkMQTT || h.mqttUp)
	if up {
		h.pings[m.ID] = ch
	}
	h.mu.Unlock()
	if !up {
		return fmt.Errorf("ping %s: %w", terminalID, ErrNotConnected)
	}
	h.send(t, m)
	select {
	case err := <-ch:
		if err != nil {
			return fmt.Errorf("ping %s: %w", terminalID, err)
		}
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		delete(h.pings, m.ID)
		h.mu.Unlock()
		return fmt.Errorf("ping %s: no pong: %w", terminalID, ctx.Err())
	}
}

// CheckoutLink adapts the Hub to callers that speak in checkouts (the
// engine's TerminalLink).
type CheckoutLink struct{ Hub *Hub }

// PushInvoice pushes a checkout's invoice to its terminal. A busy
// refusal (ErrBusy) is also pos.ErrTerminalBusy, which the engine knows.
func (l CheckoutLink) PushInvoice(ctx context.Context, c pos.Checkout) error {
	err := l.Hub.PushInvoice(ctx, c.TerminalID, InvoicePush{
		TransactionID: c.TransactionID, InvoiceNumber: c.InvoiceNumber, Amount: c.Amount,
		Description: c.Description, CustomerName: c.Customer.Name, Deadline: c.Deadline,
	})
	if errors.Is(err, ErrBusy) {
		return busyError{err}
	}
	return err
}

// busyError is a busy refusal: ErrBusy and pos.ErrTerminalBusy both, with
// the hub's message.
type busyError struct{ err error }

func (e busyError) Error() string   { return e.err.Error() }
func (e busyError) Unwrap() []error { return []error{e.err, pos.ErrTerminalBusy} }

// CancelInvoice cancels a checkout's invoice on its terminal. A cancel
// asked at or after the checkout's deadline (the engine's, not the
// till's) says "timeout", as the terminal's own result would.
func (l CheckoutLink) CancelInvoice(ctx context.Context, c pos.Checkout) error {
	reason := CancelReasonTill
	if c.CancelRequested && !c.Deadline.After(c.CancelRequestedAt) {
		reason = CancelReasonDeadline
	}
	return l.Hub.cancelInvoice(ctx, c.TerminalID, c.TransactionID, reason)
}
