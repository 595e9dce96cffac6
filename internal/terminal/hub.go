package terminal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// Errors returned by the Hub's methods, wrapped with detail.
var (
	ErrUnknownTerminal = errors.New("terminal: unknown terminal id")
	ErrNotConnected    = errors.New("terminal: not connected")
	// ErrNotAcknowledged: the caller's context ended before the terminal
	// acknowledged. The hub keeps delivering until the invoice's deadline;
	// a TerminalAck event follows if it lands.
	ErrNotAcknowledged = errors.New("terminal: not acknowledged yet, still delivering")
	// ErrExpired: the deadline passed before the terminal acknowledged.
	ErrExpired = errors.New("terminal: deadline passed before the terminal acknowledged")
	// ErrWithdrawn: CancelInvoice withdrew the invoice before delivery.
	ErrWithdrawn           = errors.New("terminal: invoice withdrawn before delivery")
	ErrBusy                = errors.New("terminal: busy with another payment")
	ErrUnknownTransaction  = errors.New("terminal: does not have that transaction")
	ErrAlreadyCompleted    = errors.New("terminal: payment already completed")
	ErrRefused             = errors.New("terminal: refused the message")
	ErrClosed              = errors.New("terminal: hub closed")
	errInvalidInvoicePush  = errors.New("terminal: invalid invoice")
	maxUnknownTerminals    = 100
	maintainTick           = 100 * time.Millisecond
	silentAfterPings       = 3
	offlineProbes          = 3 // identifies sent after an offline MQTT presence
	unknownTerminalWarning = "a terminal that is not in the config is talking on the broker"
)

// Hub is the terminal registry and the bridge's end of every terminal link.
type Hub struct {
	cfg Config
	log *slog.Logger
	ids *protocol.IDGen
	// handled remembers inbound reliable message ids per terminal that were
	// acted on, so a resent copy is only acknowledged again.
	handled *protocol.Seen

	mu       sync.Mutex
	terms    map[string]*term
	outbox   map[string]*pending // by message id
	byTx     map[string]*pending // unacknowledged invoices by terminal/transaction
	pings    map[string]chan error
	inflight map[string]bool // results queued for or inside OnEvent
	unknown  int
	mqttUp   bool
	state    int // 0 new, 1 open, 2 closed

	bridge *mqtt.Bridge
	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	stateNew = iota
	stateOpen
	stateClosed
)

// term is one terminal's registry entry. Fields below mu are guarded by
// Hub.mu; the send queue has its own lock.
type term struct {
	id    string
	kind  LinkKind
	known bool
	slink *serial.Link

	linkUp, identified, silent bool
	busy                       bool
	tx                         string
	lastSeen, connectedSince   time.Time
	lastPing                   time.Time
	hello                      protocol.Hello
	everUp                     bool
	reconnects, badMessages    uint64
	lastErr                    string

	// probes: identify messages still to send to an MQTT terminal whose
	// presence said offline (see mqttPresence).
	probes int

	// pend holds t's outbox entries in the order they were made.
	pend []*pending

	qmu  sync.Mutex
	q    []outMsg
	qsig chan struct{}

	// events waits for t's dispatcher (configured terminals only: one
	// not in the config makes no events).
	events *eventQueue
}

type outMsg struct {
	kind    protocol.Kind
	payload []byte
}

func (t *term) connected(mqttUp bool) bool {
	up := t.linkUp && t.identified && !t.silent
	if t.kind == LinkMQTT {
		up = up && mqttUp
	}
	return up
}

// New checks cfg and returns a Hub; Open starts it.
func New(cfg Config) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	h := &Hub{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "terminal"),
		ids:      protocol.NewIDGen("b"),
		handled:  protocol.NewSeen(512),
		terms:    make(map[string]*term),
		outbox:   make(map[string]*pending),
		byTx:     make(map[string]*pending),
		pings:    make(map[string]chan error),
		inflight: make(map[string]bool),
		kick:     make(chan struct{}, 1),
	}
	for _, tc := range cfg.Terminals {
		t := &term{id: tc.ID, known: true, kind: LinkMQTT, qsig: make(chan struct{}, 1), events: newEventQueue()}
		if tc.Serial != nil {
			t.kind = LinkSerial
			t.slink = h.newSerialLink(t, *tc.Serial)
		}
		h.terms[tc.ID] = t
	}
	return h, nil
}

func (h *Hub) newSerialLink(t *term, spec serial.PortSpec) *serial.Link {
	cc := h.cfg.Serial.Conn
	cc.OnData = func(p []byte) { h.inbound(t, p) }
	if h.cfg.Trace != nil {
		cc.Trace = func(dir serial.Direction, typ byte, n int) {
			if typ == serial.TypeData {
				return // traced as a protocol message
			}
			kind := "frame-ack"
			if typ == serial.TypeNak {
				kind = "frame-nak"
			}
			h.trace(Direction(dir), t, kind, n)
		}
	}
	return serial.NewLink(serial.LinkConfig{
		Name:        t.id,
		Logger:      h.log,
		Port:        spec,
		Conn:        cc,
		ListPorts:   h.cfg.Serial.ListPorts,
		OpenPort:    h.cfg.Serial.OpenPort,
		ReopenDelay: h.cfg.Serial.ReopenDelay,
		MaxBackoff:  h.cfg.Serial.MaxBackoff,
		OnUp:        func(*serial.Conn) { h.linkUp(t) },
		OnDown: func(err error) {
			h.log.Info("serial link down", "terminal", t.id, "err", err)
			h.linkDown(t, err)
		},
	})
}

// Open starts every link, the MQTT client and the hub's loops. It never
// waits for a terminal, a serial port or the broker: those connect in the
// background and show up in Terminals and as events.
func (h *Hub) Open(ctx context.Context) error {
	h.mu.Lock()
	if h.state != stateNew {
		h.mu.Unlock()
		return errors.New("terminal: hub opened twice")
	}
	h.state = stateOpen
	h.mu.Unlock()
	h.ctx, h.cancel = context.WithCancel(context.Background())

	usesMQTT := false
	for _, t := range h.terms {
		usesMQTT = usesMQTT || t.kind == LinkMQTT
	}
	if usesMQTT {
		b, err := mqtt.NewBridge(*h.cfg.MQTT, mqtt.BridgeHandler{
			OnMessage:  h.mqttMessage,
			OnPresence: h.mqttPresence,
			OnConnect:  h.mqttConnected,
			OnLost:     h.mqttLost,
			OnConnectFailed: func(err error) {
				if mqtt.AuthRefused(err) {
					h.log.Error("the MQTT broker refuses posbridge's username or password; check mqtt.username and mqtt.password (still retrying)", "err", err)
					return
				}
				h.log.Warn("cannot connect to the MQTT broker; still retrying", "err", err)
			},
		})
		if err != nil {
			h.cancel()
			return fmt.Errorf("terminal: %w", err)
		}
		h.bridge = b
	}
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.maintain() }()
	for _, t := range h.terms {
		h.startTerm(t)
	}
	if h.bridge != nil {
		if err := h.bridge.Open(ctx); err != nil {
			h.Close(ctx)
			return fmt.Errorf("terminal: %w", err)
		}
	}
	return nil
}

func (h *Hub) startTerm(t *term) {
	h.wg.Add(2)
	go func() { defer h.wg.Done(); h.txLoop(t) }()
	go func() { defer h.wg.Done(); h.dispatch(t) }()
	if t.slink != nil {
		h.wg.Add(1)
		go func() { defer h.wg.Done(); t.slink.Run(h.ctx) }()
	}
}

// Close stops everything: links, the MQTT client (publishing the bridge's
// offline presence), the loops and the event dispatchers. It ends the
// context OnEvent runs with, and forgets events not yet handled (their
// results stay unacknowledged, so the terminals send them again). It
// waits for every goroutine, at most until ctx ends: a handler that
// ignores its context's end can make Close return ctx's error. Waiting
// callers get ErrClosed.
func (h *Hub) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.state != stateOpen {
		h.state = stateClosed
		h.mu.Unlock()
		return nil
	}
	h.state = stateClosed
	h.mu.Unlock()
	var first error
	if h.bridge != nil {
		if err := h.bridge.Close(ctx); err != nil {
			first = err
		}
	}
	h.cancel()
	h.mu.Lock()
	for _, t := range h.terms {
		if t.events != nil {
			t.events.close()
		}
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if first == nil {
			first = fmt.Errorf("terminal: close: %w", ctx.Err())
		}
	}
	h.mu.Lock()
	for id, p := range h.outbox {
		h.settleLocked(id, p, ErrClosed)
	}
	for id, ch := range h.pings {
		delete(h.pings, id)
		ch <- ErrClosed
	}
	h.mu.Unlock()
	return first
}

// Terminals returns every terminal's status, sorted by id: the configured
// ones and any unknown terminal heard on the broker.
func (h *Hub) Terminals() []Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Status, 0, len(h.terms))
	for _, t := range h.terms {
		out = append(out, h.statusLocked(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TerminalID < out[j].TerminalID })
	return out
}

// Terminal returns one terminal's status.
func (h *Hub) Terminal(id string) (Status, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.terms[id]
	if t == nil {
		return Status{}, false
	}
	return h.statusLocked(t), true
}

// statusLocked builds t's status.
func (h *Hub) statusLocked(t *term) Status {
	s := Status{
		TerminalID: t.id, Known: t.known, Link: t.kind,
		Connected: t.connected(h.mqttUp), Busy: t.busy, TransactionID: t.tx,
		LastSeen: t.lastSeen, ConnectedSince: t.connectedSince,
		Model: t.hello.Model, SerialNumber: t.hello.SerialNumber, AppVersion: t.hello.AppVersion,
		Reconnects: t.reconnects, FrameErrors: t.badMessages, LastError: t.lastErr,
		Pending: len(t.pend),
	}
	if t.events != nil {
		s.DroppedEvents = t.events.droppedCount()
	}
	if !s.Connected {
		s.ConnectedSince = time.Time{}
	}
	if t.slink != nil {
		ls := t.slink.Stats()
		s.Port = ls.Path
		s.Reconnects = ls.Reconnects
		s.FrameErrors += ls.FrameErrors
		if ls.LastError != "" {
			s.LastError = ls.LastError
		}
	}
	return s
}

// change applies f to t under the lock and emits connected/disconnected
// events when f changed whether t counts as connected.
func (h *Hub) change(t *term, f func()) {
	h.mu.Lock()
	before := t.connected(h.mqttUp)
	f()
	after := t.connected(h.mqttUp)
	if after && !before {
		t.connectedSince = time.Now()
	}
	h.mu.Unlock()
	h.connEvent(t, before, after)
}

func (h *Hub) connEvent(t *term, before, after bool) {
	if before == after || !t.known {
		return
	}
	kind := pos.TerminalDisconnected
	if after {
		kind = pos.TerminalConnected
		h.log.Info("terminal connected", "terminal", t.id, "link", t.kind)
	} else {
		h.log.Info("terminal disconnected", "terminal", t.id, "link", t.kind)
	}
	h.pushEvent(t, event{ev: pos.TerminalEvent{Kind: kind, TerminalID: t.id, At: time.Now()}})
}

func (h *Hub) trace(dir Direction, t *term, kind string, n int) {
	if h.cfg.Trace != nil {
		h.cfg.Trace(Trace{At: time.Now(), Dir: dir, TerminalID: t.id, Link: t.kind, Kind: kind, Bytes: n})
	}
}

// linkUp: a serial port opened or a terminal's MQTT presence went online.
// Ask who is there and resend what waits.
func (h *Hub) linkUp(t *term) {
	h.change(t, func() {
		if t.everUp && !t.linkUp && t.kind == LinkMQTT {
			t.reconnects++
		}
		t.everUp = true
		if !t.linkUp {
			// A fresh link: who is there must be asked again. A presence
			// replayed while the terminal is already up (its hello can
			// overtake it) keeps the identification, so it does not flap.
			t.identified = false
		}
		t.linkUp = true
		t.probes = 0
		t.lastPing = time.Now()
	})
	h.send(t, h.ids.New(protocol.KindIdentify, t.id))
	h.resendNow(t)
}

func (h *Hub) linkDown(t *term, err error) {
	h.change(t, func() {
		t.linkUp = false
		t.identified = false
		if err != nil {
			t.lastErr = err.Error()
		}
	})
}
