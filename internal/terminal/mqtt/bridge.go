package mqtt

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BridgeHandler receives what the bridge client hears. Every method is
// called on paho's goroutines and must not block: hand the data to a queue.
type BridgeHandler struct {
	// OnMessage: a protocol message a terminal published on its up topic.
	OnMessage func(terminalID string, payload []byte)
	// OnPresence: a terminal's retained presence changed (or was replayed
	// after the bridge (re)subscribed).
	OnPresence func(terminalID string, online bool)
	// OnConnect: the bridge is connected and subscribed again; resend
	// whatever is waiting. OnLost: the broker connection dropped.
	OnConnect func()
	OnLost    func(err error)
	// OnConnectFailed: the bridge has not been connected for a while and
	// a connection attempt of its own got err (it goes on retrying):
	// after checkAfter without a connection, then every checkEvery.
	OnConnectFailed func(err error)
}

// How long the bridge waits, disconnected, before it checks why, and how
// often it checks again while still disconnected (variables for tests).
var (
	checkAfter = 10 * time.Second
	checkEvery = time.Minute
)

// Bridge is the bridge's MQTT client: one connection for all terminals.
type Bridge struct {
	cfg    Config
	topics Topics
	h      BridgeHandler
	cl     *client

	stopWatch context.CancelFunc
	watching  sync.WaitGroup
}

// NewBridge checks cfg and prepares a client; Open connects it.
func NewBridge(cfg Config, h BridgeHandler) (*Bridge, error) {
	if cfg.ClientID == "" {
		return nil, fmt.Errorf("mqtt: the bridge needs a client_id")
	}
	cfg.setDefaults()
	b := &Bridge{cfg: cfg, topics: Topics{Prefix: cfg.TopicPrefix}, h: h}
	cl, err := newClient(cfg, clientHooks{
		will:      b.topics.BridgePresence(cfg.ClientID),
		willBody:  PresenceOffline,
		onConnect: b.onConnect,
		onLost:    h.OnLost,
		onMessage: b.onMessage,
	})
	if err != nil {
		return nil, err
	}
	b.cl = cl
	return b, nil
}

// Topics returns the topic names the bridge uses.
func (b *Bridge) Topics() Topics { return b.topics }

// Open starts connecting and returns at once: a broker that is not up yet
// is retried in the background (the daemon must start without it). Use
// WaitConnected to wait.
func (b *Bridge) Open(ctx context.Context) error {
	b.cl.start()
	if b.h.OnConnectFailed != nil {
		wctx, cancel := context.WithCancel(context.Background())
		b.stopWatch = cancel
		b.watching.Add(1)
		go func() {
			defer b.watching.Done()
			b.watch(wctx)
		}()
	}
	return nil
}

// watch reports why the broker cannot be reached: once the bridge has
// been disconnected for checkAfter it makes a connection attempt of its
// own (checkConnect) and reports the error, then again every checkEvery
// while still disconnected. A check that connects reports nothing (the
// client's next retry will too).
func (b *Bridge) watch(ctx context.Context) {
	t := time.NewTicker(checkAfter / 10)
	defer t.Stop()
	var downSince, lastCheck time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		switch {
		case b.cl.connected():
			downSince, lastCheck = time.Time{}, time.Time{}
			continue
		case downSince.IsZero():
			downSince = now
			continue
		case now.Sub(downSince) < checkAfter, !lastCheck.IsZero() && now.Sub(lastCheck) < checkEvery:
			continue
		}
		lastCheck = now
		cctx, cancel := context.WithTimeout(ctx, b.cfg.ConnectTimeout)
		err := checkConnect(cctx, b.cfg)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && !b.cl.connected() {
			b.h.OnConnectFailed(fmt.Errorf("mqtt: connect to %s (disconnected for %s): %w",
				RedactURL(b.cfg.BrokerURL), now.Sub(downSince).Round(time.Second), err))
		}
	}
}

// WaitConnected blocks until the bridge is connected or ctx ends.
func (b *Bridge) WaitConnected(ctx context.Context) error { return b.cl.waitConnected(ctx) }

// Connected reports whether the broker connection is open now.
func (b *Bridge) Connected() bool { return b.cl.connected() }

func (b *Bridge) onConnect() {
	// Resubscribe on every connect: clean sessions keep nothing.
	conn := b.cl.current()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.ConnectTimeout)
	defer cancel()
	if err := b.cl.subscribe(ctx, b.topics.Prefix+"/t/+/up", b.topics.Prefix+"/t/+/presence"); err != nil {
		// The connection is unusable without subscriptions; drop it so
		// paho reconnects and we try again (never Disconnect: that would
		// end the reconnecting for good).
		if b.h.OnLost != nil {
			b.h.OnLost(err)
		}
		b.cl.redial(conn)
		return
	}
	_ = b.cl.publish(ctx, b.topics.BridgePresence(b.cfg.ClientID), true, PresenceOnline)
	if b.h.OnConnect != nil {
		b.h.OnConnect()
	}
}

func (b *Bridge) onMessage(topic string, payload []byte) {
	id, leaf, ok := b.topics.Parse(topic)
	if !ok {
		return
	}
	switch leaf {
	case "up":
		if b.h.OnMessage != nil {
			b.h.OnMessage(id, payload)
		}
	case "presence":
		if b.h.OnPresence != nil {
			b.h.OnPresence(id, IsOnline(payload))
		}
	}
}

// Publish sends one protocol message to a terminal at QoS 1 and waits for
// the broker's PUBACK. It returns ErrNotConnected at once while the broker
// is unreachable: nothing is queued inside the client.
func (b *Bridge) Publish(ctx context.Context, terminalID string, payload []byte) error {
	if err := b.cl.publish(ctx, b.topics.Down(terminalID), false, payload); err != nil {
		return fmt.Errorf("to terminal %s: %w", terminalID, err)
	}
	return nil
}

// Close publishes the bridge's offline presence and disconnects, within
// ctx's deadline (at most about a second).
func (b *Bridge) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if b.stopWatch != nil {
		b.stopWatch()
		b.watching.Wait() // a check under way ends within ConnectTimeout
	}
	b.cl.stop(ctx, b.topics.BridgePresence(b.cfg.ClientID))
	return nil
}
