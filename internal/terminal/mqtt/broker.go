package mqtt

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
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
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: logger})
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
// not restricted.
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

func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool { return true }

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
