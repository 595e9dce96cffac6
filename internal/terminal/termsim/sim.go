package termsim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

const maxRemembered = 256

// maxPayments bounds the past transactions remembered (ended, and
// swallowed by a silent step): a simulator may run for days.
const maxPayments = 2048

// sim is one simulated terminal. All its state belongs to the run loop;
// link callbacks only post to channels.
type sim struct {
	cfg Config
	log interface {
		Info(string, ...any)
		Warn(string, ...any)
	}
	ids *protocol.IDGen
	tr  transport

	in    chan []byte
	hello chan struct{}
	due   chan string // transaction whose delay ended

	step      int
	current   *payment
	completed map[string]bool // transactions that ended here (the last maxPayments)
	ignored   map[string]bool // invoices a silent step swallowed (likewise)
	// The keys of completed and ignored, oldest first.
	completedOrder, ignoredOrder []string
	replies                      map[string][]byte // our answer to each message id, for resends
	order                        []string
	// outbox: reliable messages until the bridge acks them, in the order
	// they were made, which is the order they are resent in.
	outbox []*outItem
}

type payment struct {
	inv    terminal.InvoicePush
	action Action
	timer  *time.Timer
}

type outItem struct {
	id      string
	kind    protocol.Kind
	payload []byte
	next    time.Time
}

func newSim(cfg Config) *sim {
	return &sim{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "termsim", "terminal", cfg.TerminalID),
		ids:       protocol.NewIDGen("t"),
		in:        make(chan []byte, 1024),
		hello:     make(chan struct{}, 1),
		due:       make(chan string, 16),
		completed: make(map[string]bool),
		ignored:   make(map[string]bool),
		replies:   make(map[string][]byte),
	}
}

func (s *sim) receive(p []byte) {
	select {
	case s.in <- p:
	default:
		s.log.Warn("inbound queue full; message dropped (the bridge will resend)")
	}
}

func (s *sim) sayHello() {
	select {
	case s.hello <- struct{}{}:
	default:
	}
}

func (s *sim) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	switch {
	case s.cfg.SerialPath != "":
		l := serial.NewLink(serial.LinkConfig{
			Port: serial.PortSpec{Path: s.cfg.SerialPath, Baud: s.cfg.Baud},
			Conn: serial.ConnConfig{OnData: s.receive},
			OnUp: func(*serial.Conn) { s.sayHello() },
		})
		s.tr = serialLink{l}
		wg.Add(1)
		go func() { defer wg.Done(); l.Run(ctx) }()
	case s.cfg.Port != nil:
		cc := serial.ConnConfig{Baud: s.cfg.Baud, OnData: s.receive}
		sc := &swapConn{c: serial.NewConn(s.cfg.Port, cc)}
		defer sc.close()
		s.tr = sc
		s.sayHello()
		if s.cfg.NextPort != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-ctx.Done():
						return
					case p, ok := <-s.cfg.NextPort:
						if !ok {
							return
						}
						sc.set(serial.NewConn(p, cc))
						s.sayHello()
					}
				}
			}()
		}
	case s.cfg.MQTT != nil:
		t, err := mqtt.NewTerminal(*s.cfg.MQTT, s.cfg.TerminalID, mqtt.TerminalHandler{
			OnMessage:      s.receive,
			OnConnect:      s.sayHello,
			OnBridgeOnline: s.sayHello,
		})
		if err != nil {
			return fmt.Errorf("termsim: %w", err)
		}
		if err := t.Open(ctx); err != nil {
			return fmt.Errorf("termsim: %w", err)
		}
		defer func() {
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer ccancel()
			t.Close(cctx)
		}()
		s.tr = mqttLink{t}
	}
	s.loop(ctx)
	if s.current != nil {
		s.current.timer.Stop()
	}
	return nil
}

func (s *sim) loop(ctx context.Context) {
	tick := time.NewTicker(s.cfg.ResendInterval / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.hello:
			// A new hello replaces any unacknowledged one.
			s.outbox = slices.DeleteFunc(s.outbox, func(o *outItem) bool { return o.kind == protocol.KindHello })
			m := s.ids.New(protocol.KindHello, s.cfg.TerminalID)
			m.Hello = &protocol.Hello{Model: s.cfg.Model, SerialNumber: s.cfg.SerialNumber, AppVersion: s.cfg.AppVersion, Protocol: []int{protocol.Version}}
			s.sendReliable(ctx, m)
			s.resendAll(ctx)
		case p := <-s.in:
			s.handle(ctx, p)
		case tx := <-s.due:
			if s.current != nil && s.current.inv.TransactionID == tx {
				s.decide(ctx)
			}
		case <-tick.C:
			now := time.Now()
			for _, o := range s.outbox {
				if !now.Before(o.next) {
					o.next = now.Add(s.cfg.ResendInterval)
					s.send(ctx, o.payload)
				}
			}
		}
	}
}

func (s *sim) resendAll(ctx context.Context) {
	now := time.Now()
	for _, o := range s.outbox {
		o.next = now.Add(s.cfg.ResendInterval)
		s.send(ctx, o.payload)
	}
}

func (s *sim) send(ctx context.Context, payload []byte) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.tr.send(sctx, payload); err != nil && ctx.Err() == nil {
		s.log.Info("send failed; will retry", "err", err)
	}
}

func (s *sim) encode(m protocol.Message) []byte {
	b, err := protocol.Encode(m)
	if err != nil {
		panic(fmt.Sprintf("termsim: encoding our own %s: %v", m.Kind, err)) // a bug here
	}
	return b
}

func (s *sim) sendReliable(ctx context.Context, m protocol.Message) {
	b := s.encode(m)
	s.outbox = append(s.outbox, &outItem{id: m.ID, kind: m.Kind, payload: b, next: time.Now().Add(s.cfg.ResendInterval)})
	s.send(ctx, b)
}

// reply sends an answer to m and remembers it, so a resent m gets the
// same answer and is not acted on again.
func (s *sim) reply(ctx context.Context, m protocol.Message, r protocol.Message) {
	b := s.encode(r)
	if _, ok := s.replies[m.ID]; !ok {
		s.order = append(s.order, m.ID)
		if len(s.order) > maxRemembered {
			delete(s.replies, s.order[0])
			s.order = s.order[1:]
		}
	}
	s.replies[m.ID] = b
	s.send(ctx, b)
}

func (s *sim) refuse(ctx context.Context, m protocol.Message, code protocol.ErrorCode, msg string) {
	s.reply(ctx, m, s.ids.Refusal(m, s.cfg.TerminalID, &protocol.RefusalError{Code: code, Message: msg}))
}

func (s *sim) handle(ctx context.Context, p []byte) {
	m, err := protocol.Decode(p)
	if err != nil {
		if m.Kind.Refusable() {
			s.send(ctx, s.encode(s.ids.Refusal(m, s.cfg.TerminalID, err)))
		}
		return
	}
	if s.cfg.Mode == Silent && s.cfg.Script == nil {
		return // a hung app answers nothing
	}
	if m.TerminalID != s.cfg.TerminalID {
		if m.Kind.Refusable() {
			s.refuse(ctx, m, protocol.ErrCodeWrongTerminal, "this is terminal "+s.cfg.TerminalID)
		}
		return
	}
	if b, ok := s.replies[m.ID]; ok {
		s.send(ctx, b) // a resend: same answer, no action
		return
	}
	switch m.Kind {
	case protocol.KindIdentify:
		s.sayHello()
	case protocol.KindPing:
		s.send(ctx, s.encode(s.ids.Reply(protocol.KindPong, m)))
	case protocol.KindAck, protocol.KindError:
		s.outbox = slices.DeleteFunc(s.outbox, func(o *outItem) bool { return o.id == m.Ref })
	case protocol.KindInvoice:
		s.invoice(ctx, m)
	case protocol.KindCancel:
		s.cancel(ctx, m)
	default:
		s.refuse(ctx, m, protocol.ErrCodeUnsupportedKind, "a terminal does not accept "+string(m.Kind))
	}
}

func (s *sim) nextAction() Action {
	if len(s.cfg.Script) == 0 {
		return s.cfg.Mode
	}
	a := s.cfg.Script[s.step%len(s.cfg.Script)]
	s.step++
	return a
}

func (s *sim) invoice(ctx context.Context, m protocol.Message) {
	inv := terminal.InvoicePushFrom(m.Invoice)
	tx := inv.TransactionID
	switch {
	case s.ignored[tx]:
		return
	case s.current != nil && s.current.inv.TransactionID == tx, s.completed[tx]:
		// The same invoice under a new message id: it is already here.
		s.reply(ctx, m, s.ids.Reply(protocol.KindAck, m))
		return
	case s.current != nil:
		s.refuse(ctx, m, protocol.ErrCodeBusy, "another payment is in progress")
		return
	}
	a := s.nextAction()
	if a == Silent {
		remember(s.ignored, &s.ignoredOrder, tx)
		s.log.Info("invoice ignored (silent)", "transaction", tx)
		return
	}
	s.reply(ctx, m, s.ids.Reply(protocol.KindAck, m))
	s.log.Info("invoice on screen", "transaction", tx, "amount", inv.Amount.String(), "action", string(a))
	if s.cfg.OnInvoice != nil {
		s.cfg.OnInvoice(inv)
	}
	s.current = &payment{inv: inv, action: a, timer: time.AfterFunc(s.cfg.Delay, func() {
		select {
		case s.due <- tx:
		case <-ctx.Done():
		}
	})}
	st := s.ids.New(protocol.KindStatus, s.cfg.TerminalID)
	st.Status = &protocol.Status{State: protocol.StateBusy, TransactionID: tx}
	s.send(ctx, s.encode(st))
}

func (s *sim) cancel(ctx context.Context, m protocol.Message) {
	tx := m.Cancel.TransactionID
	switch {
	case s.current != nil && s.current.inv.TransactionID == tx:
		s.current.timer.Stop()
		s.reply(ctx, m, s.ids.Reply(protocol.KindAck, m))
		reason := m.Cancel.Reason // "canceled by the till", or "timeout" at the deadline
		if reason == "" {
			reason = "canceled by the bridge"
		}
		s.finish(ctx, pos.OutcomeCanceled, "", reason)
	case s.completed[tx]:
		s.refuse(ctx, m, protocol.ErrCodeAlreadyCompleted, "the payment already ended")
	default:
		s.refuse(ctx, m, protocol.ErrCodeUnknownTransaction, "no such invoice on this terminal")
	}
}

// decide ends the current payment the way its action says.
func (s *sim) decide(ctx context.Context) {
	switch s.current.action {
	case Approve:
		s.finish(ctx, pos.OutcomeApproved, fmt.Sprintf("SIM-AUTH-%06d", time.Now().UnixNano()%1_000_000), "")
	case Decline:
		s.finish(ctx, pos.OutcomeDeclined, "", "declined by issuer (simulated)")
	case Timeout:
		s.finish(ctx, pos.OutcomeCanceled, "", "timeout")
	}
}

func (s *sim) finish(ctx context.Context, outcome pos.Outcome, ref, reason string) {
	p := s.current
	s.current = nil
	tx := p.inv.TransactionID
	remember(s.completed, &s.completedOrder, tx)
	if s.cfg.OnPayment != nil {
		if err := s.cfg.OnPayment(ctx, p.inv, outcome); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("OnPayment failed", "transaction", tx, "err", err)
		}
	}
	r := s.ids.New(protocol.KindResult, s.cfg.TerminalID)
	r.Result = &protocol.Result{TransactionID: tx, InvoiceNumber: p.inv.InvoiceNumber, Outcome: outcome,
		Reference: ref, Reason: reason, Amount: p.inv.Amount}
	s.log.Info("payment ended", "transaction", tx, "outcome", string(outcome))
	s.sendReliable(ctx, r)
	st := s.ids.New(protocol.KindStatus, s.cfg.TerminalID)
	st.Status = &protocol.Status{State: protocol.StateIdle}
	s.send(ctx, s.encode(st))
}

// remember adds tx to set, forgetting the oldest beyond maxPayments.
func remember(set map[string]bool, order *[]string, tx string) {
	if set[tx] {
		return
	}
	set[tx] = true
	*order = append(*order, tx)
	if len(*order) > maxPayments {
		delete(set, (*order)[0])
		*order = (*order)[1:]
	}
}
