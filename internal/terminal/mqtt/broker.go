package mqtt

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// Addr to listen on, e.g. "127.0.0.1:1883", ":1883" or "127.0.0.1:0"
	// (any free port; see Broker.Addr). Default "127.0.0.1:1883".
	Addr string `yaml:"addr,omitempty" json:"addr,omitempty"`
	// Username and Password, when set, are required of every client.
	// Without them the broker accepts anonymous clients: keep it on
	// loopback or a store-only network then.
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"-"`
	// TLS, when set, makes the listener TLS-only (clients use ssl://).
	TLS *tls.Config `yaml:"-" json:"-"`
	// Logger for the broker's own messages; default: warnings and errors
	// only, to the default slog handler.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// Broker is an MQTT broker inside posbridge, so a store without one works
// out of the box. It is mochi-mqtt; retained messages and wills work,
// nothing is persisted (the protocol's resends make that unnecessary).
type Broker struct {
	cfg BrokerConfig

	mu   sync.Mutex
	srv  *mochi.Server
	tcp  *tcpListener
	addr string

	// Hooks added ahead of (testHooks) and after (testHooksLast) the
	// broker's own, by tests that hold or watch what the broker does.
	testHooks, testHooksLast []mochi.Hook
}

// NewBroker returns a broker; Open starts it.
func NewBroker(cfg BrokerConfig) *Broker {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:1883"
	}
	return &Broker{cfg: cfg}
}

// Open listens on the configured address (a busy port fails here) and
// starts serving. A closed broker may be opened again.
func (b *Broker) Open(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return errors.New("mqtt broker: already open")
	}
	if (b.cfg.Username == "") != (b.cfg.Password == "") {
		return errors.New("mqtt broker: username and password go together")
	}
	logger := b.cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if h := slog.Default().Handler(); h != nil {
			logger = slog.New(levelFilter{h, slog.LevelWarn})
		}
	}
	caps := mochi.NewDefaultServerCapabilities()
	// mochi removes every retained message (and in-flight message) a day
	// after it was published unless this is 0. A retained presence must
	// stay until a newer one replaces it, as with mosquitto: a bridge
	// started after a terminal had been connected for a day would see no
	// presence for it, nor a terminal that reconnects one for the bridge.
	// (In-flight messages go with their connection: every client here
	// uses a clean session.)
	caps.MaximumMessageExpiryInterval = 0
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: logger, Capabilities: caps})
	for _, h := range b.testHooks {
		if err := srv.AddHook(h, nil); err != nil {
			return fmt.Errorf("mqtt broker: %w", err)
		}
	}
	if err := srv.AddHook(&authHook{user: b.cfg.Username, pass: b.cfg.Password}, nil); err != nil {
		return fmt.Errorf("mqtt broker: %w", err)
	}
	if err := srv.AddHook(&takeoverHook{srv: srv}, nil); err != nil {
		return fmt.Errorf("mqtt broker: %w", err)
	}
	if err := srv.AddHook(newWillOrderHook(srv), nil); err != nil {
		return fmt.Errorf("mqtt broker: %w", err)
	}
	for _, h := range b.testHooksLast {
		if err := srv.AddHook(h, nil); err != nil {
			return fmt.Errorf("mqtt broker: %w", err)
		}
	}
	// Last of all: it must see the publish or will the broker goes on with.
	if err := srv.AddHook(newRetainedHook(), nil); err != nil {
		return fmt.Errorf("mqtt broker: %w", err)
	}
	tcp := newTCPListener("posbridge", b.cfg.Addr, b.cfg.TLS)
	if err := srv.AddListener(tcp); err != nil {
		return fmt.Errorf("mqtt broker: listen on %s: %w", b.cfg.Addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return fmt.Errorf("mqtt broker: serve: %w", err)
	}
	b.srv, b.tcp, b.addr = srv, tcp, tcp.Address()
	return nil
}

// Addr is the address the broker listens on (with the real port when the
// config said :0). Empty before Open.
func (b *Broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// URL is what a client puts in Config.BrokerURL: tcp://addr or ssl://addr.
func (b *Broker) URL() string {
	addr := b.Addr()
	if b.cfg.TLS != nil {
		return "ssl://" + addr
	}
	return "tcp://" + addr
}

// Close disconnects every client and stops listening. Clients see an
// abrupt end, so their Last Wills fire.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv == nil {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("mqtt broker: close: %w", ctx.Err())
	}
}

// authHook allows everyone when no username is configured, else exactly
// that username and password (compared in constant time). Topic access is
// not restricted, but for $SYS (see retainedHook).
type authHook struct {
	mochi.HookBase
	user, pass string
}

func (h *authHook) ID() string { return "posbridge-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.user == "" {
		return true
	}
	u := subtle.ConstantTimeCompare(pk.Connect.Username, []byte(h.user))
	p := subtle.ConstantTimeCompare(pk.Connect.Password, []byte(h.pass))
	return u&p == 1
}

// OnACLCheck refuses subscriptions to $SYS topics (and their delivery):
// mochi stores them as retained messages every second from its event
// loop, with no hook around the store, so a wildcard $SYS subscription
// would race with it the way retainedHook describes. posbridge does not
// use them.
func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	first, _, _ := strings.Cut(topic, "/")
	return write || !strings.EqualFold(first, mochi.SysPrefix)
}

// takeoverHook makes a client that reconnects at once with its id (paho
// does, after a dropped connection) wait, at most takeoverWait, until the
// broker has finished with the dropped connection. mochi cleans a closed
// connection up by its client id; when that cleanup runs after the new
// connection's CONNECT it deletes the new client from the broker's client
// list, and the broker stops delivering to it: the bridge (or a terminal)
// stays subscribed and hears nothing until its next reconnect. Seen about
// once in 300 drops in the resubscribe tests (subscribe_test.go, whose own
// broker carries the same wait).
type takeoverHook struct {
	mochi.HookBase
	srv *mochi.Server
}

const takeoverWait = 2 * time.Second

func (h *takeoverHook) ID() string { return "posbridge-takeover" }

func (h *takeoverHook) Provides(b byte) bool { return b == mochi.OnConnect }

func (h *takeoverHook) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	for deadline := time.Now().Add(takeoverWait); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		old, ok := h.srv.Clients.Get(cl.ID)
		if !ok || old == cl || !old.Closed() {
			return nil
		}
	}
	return nil
}

// willOrderHook keeps the Last Will of a connection that a newer one with
// the same client id replaced from landing after the newer connection's
// own messages. mochi publishes a will on the old connection's goroutine
// when that connection ends (a network error, or the takeover by the new
// connection), with nothing ordering it against the new connection: on a
// busy machine a terminal's "offline" could become the retained presence
// after its new connection's "online", and the bridge (and every bridge
// that starts later) would report a connected terminal disconnected; the
// same for the bridge's own presence. mosquitto publishes the old will
// before it accepts the new connection; this hook gives the same order:
//
//   - a will whose connection is no longer the broker's client for its id
//     (a newer connection took over) is stale: it is not retained and goes
//     to a topic no one is subscribed to ($posbridge/superseded-will/…,
//     which wildcards do not match), so it changes nothing;
//   - a will that is not stale is being published: a new connection with
//     that id waits (before the broker reads anything from it) until it is
//     through, so the will comes before everything the new one says.
//
// The check and the registration are one step under mu, as is the new
// connection's look: either the new connection sees the will in flight
// and waits, or the will sees the new connection and is set aside.
type willOrderHook struct {
	mochi.HookBase
	srv *mochi.Server

	mu      sync.Mutex
	sending map[string]*willInFlight // by client id
}

type willInFlight struct {
	cl   *mochi.Client
	done chan struct{}
}

// supersededWillPrefix starts the topic a stale Last Will is diverted to.
const supersededWillPrefix = "$posbridge/superseded-will/"

func newWillOrderHook(srv *mochi.Server) *willOrderHook {
	return &willOrderHook{srv: srv, sending: make(map[string]*willInFlight)}
}

func (h *willOrderHook) ID() string { return "posbridge-will-order" }

func (h *willOrderHook) Provides(b byte) bool {
	return b == mochi.OnWill || b == mochi.OnWillSent || b == mochi.OnSessionEstablished
}

// OnWill runs on the ending connection's goroutine, just before the
// broker publishes its will.
func (h *willOrderHook) OnWill(cl *mochi.Client, w mochi.Will) (mochi.Will, error) {
	if cl.Properties.Will.WillDelayInterval > 0 {
		// Held by the broker, which drops it when the id reconnects
		// within the delay; OnWillSent does not follow here.
		return w, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur, ok := h.srv.Clients.Get(cl.ID); ok && cur != cl {
		w.TopicName = supersededWillPrefix + w.TopicName
		w.Retain = false
		return w, nil
	}
	if f := h.sending[cl.ID]; f == nil || f.cl != cl {
		h.sending[cl.ID] = &willInFlight{cl: cl, done: make(chan struct{})}
	}
	return w, nil
}

// OnWillSent: the will is published (or diverted).
func (h *willOrderHook) OnWillSent(cl *mochi.Client, _ packets.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := h.sending[cl.ID]; f != nil && f.cl == cl {
		delete(h.sending, cl.ID)
		close(f.done)
	}
}

// OnSessionEstablished runs on a new connection's goroutine after its
// CONNACK and before the broker reads its first packet.
func (h *willOrderHook) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	h.mu.Lock()
	f := h.sending[cl.ID]
	h.mu.Unlock()
	if f == nil || f.cl == cl {
		return
	}
	// Publishing a will takes microseconds; the bound only keeps a broker
	// whose publishing is stuck from holding the new client for good.
	t := time.NewTimer(takeoverWait)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		h.srv.Log.Warn("a replaced connection's Last Will is slow to publish; not waiting for it", "client", cl.ID)
	}
}

// retainedHook keeps mochi from looking up the retained messages for a new
// subscription while it stores a retained message. mochi (v2.7.9,
// TopicsIndex.scanMessages, run for every wildcard filter a client
// subscribes to, such as the bridge's posbridge/t/+/presence and a
// terminal's posbridge/bridge/+/presence) reads each matching topic's
// retained-message path without the lock under which RetainMessage writes
// it on every retained publish: a data race inside the broker, which
// go test -race reported now and then. mochi's hooks come on both sides of
// both steps, so a lock taken in one hook and released in the next keeps
// them apart:
//
//   - storing: a retained PUBLISH runs OnPublish, stores the message, then
//     OnRetainMessage; a retained Last Will runs OnWill, stores it, then
//     OnRetainMessage. The lock is taken exclusively in OnPublish or
//     OnWill when the broker will store the message (this hook comes last,
//     so it sees the packet or will the broker goes on with) and released
//     in OnRetainMessage. Nothing in between waits on the network.
//   - looking up: a SUBSCRIBE writes its SUBACK (OnPacketSent), looks up
//     and queues the retained messages for each filter, then ends
//     (OnPacketProcessed). The lock is held shared in between; queueing
//     does not wait (the client's own goroutine writes them out).
//
// mochi stores retained messages on two other paths with no hook before
// the store; both are closed instead: an MQTT 5 will delay on a retained
// will is dropped at connect (a delayed will is stored from the event
// loop), so the will goes out when the connection ends, as in MQTT 3.1.1;
// and $SYS, stored every second, cannot be subscribed to (authHook).
type retainedHook struct {
	mochi.HookBase

	mu sync.RWMutex
	// writer is the client whose retained message is being stored, with
	// mu held exclusively.
	writer atomic.Pointer[mochi.Client]

	rmu     sync.Mutex
	readers map[*mochi.Client]bool // subscribes holding mu shared
}

func newRetainedHook() *retainedHook {
	return &retainedHook{readers: make(map[*mochi.Client]bool)}
}

func (h *retainedHook) ID() string { return "posbridge-retained-order" }

func (h *retainedHook) Provides(b byte) bool {
	switch b {
	case mochi.OnConnect, mochi.OnPublish, mochi.OnWill, mochi.OnRetainMessage,
		mochi.OnPacketSent, mochi.OnPacketProcessed:
		return true
	}
	return false
}

func (h *retainedHook) retainAvailable() bool {
	return h.Opts == nil || h.Opts.Capabilities == nil || h.Opts.Capabilities.RetainAvailable != 0
}

// OnConnect drops the will delay of a retained will (see above).
func (h *retainedHook) OnConnect(cl *mochi.Client, _ packets.Packet) error {
	if cl.Properties.Will.Retain {
		cl.Properties.Will.WillDelayInterval = 0
	}
	return nil
}

// OnPublish: mochi's processPublish stores the packet it goes on with when
// it is retained and not ignored.
func (h *retainedHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain && !pk.Ignore && h.retainAvailable() {
		h.mu.Lock()
		h.writer.Store(cl)
	}
	return pk, nil
}

// OnWill: mochi's sendLWT stores a retained will that is not delayed.
func (h *retainedHook) OnWill(cl *mochi.Client, w mochi.Will) (mochi.Will, error) {
	if w.Retain && cl.Properties.Will.WillDelayInterval == 0 && h.retainAvailable() {
		h.mu.Lock()
		h.writer.Store(cl)
	}
	return w, nil
}

func (h *retainedHook) OnRetainMessage(cl *mochi.Client, _ packets.Packet, _ int64) {
	if h.writer.CompareAndSwap(cl, nil) {
		h.mu.Unlock()
	}
}

func (h *retainedHook) OnPacketSent(cl *mochi.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Suback {
		return
	}
	h.mu.RLock()
	h.rmu.Lock()
	h.readers[cl] = true
	h.rmu.Unlock()
}

func (h *retainedHook) OnPacketProcessed(cl *mochi.Client, pk packets.Packet, _ error) {
	if pk.FixedHeader.Type != packets.Subscribe {
		return
	}
	h.rmu.Lock()
	held := h.readers[cl]
	delete(h.readers, cl)
	h.rmu.Unlock()
	if held {
		h.mu.RUnlock()
	}
}

// levelFilter drops records below a level.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (l levelFilter) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.Handler.Enabled(ctx, lv)
}

func (l levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{l.Handler.WithAttrs(a), l.min}
}

func (l levelFilter) WithGroup(n string) slog.Handler {
	return levelFilter{l.Handler.WithGroup(n), l.min}
}
