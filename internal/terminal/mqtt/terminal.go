package mqtt

import (
	"context"
	"fmt"
	"time"
)

// TerminalHandler receives what a terminal client hears. Methods are
// called on paho's goroutines and must not block.
type TerminalHandler struct {
	// OnMessage: a protocol message from the bridge.
	OnMessage func(payload []byte)
	// OnConnect: connected, subscribed and presence published; send hello
	// and resend what is waiting.
	OnConnect func()
	// OnBridgeOnline: a bridge announced itself (it restarted, or this
	// terminal just subscribed): say hello again.
	OnBridgeOnline func()
	OnLost         func(err error)
}

// Terminal is the terminal side of the MQTT transport, as a terminal app
// implements it. The simulator uses it; it is also the reference for
// terminal developers.
type Terminal struct {
	cfg        Config
	topics     Topics
	terminalID string
	h          TerminalHandler
	cl         *client
}

// NewTerminal prepares a terminal client. cfg.ClientID defaults to
// "posbridge-terminal-{terminalID}". Its Last Will marks the terminal
// offline (retained) if the connection dies without a clean close.
func NewTerminal(cfg Config, terminalID string, h TerminalHandler) (*Terminal, error) {
	if cfg.ClientID == "" {
		cfg.ClientID = "posbridge-terminal-" + terminalID
	}
	cfg.setDefaults()
	t := &Terminal{cfg: cfg, topics: Topics{Prefix: cfg.TopicPrefix}, terminalID: terminalID, h: h}
	cl, err := newClient(cfg, clientHooks{
		will:      t.topics.Presence(terminalID),
		willBody:  PresenceOffline,
		onConnect: t.onConnect,
		onLost:    h.OnLost,
		onMessage: t.onMessage,
	})
	if err != nil {
		return nil, err
	}
	t.cl = cl
	return t, nil
}

// Open starts connecting in the background and returns at once.
func (t *Terminal) Open(ctx context.Context) error {
	t.cl.start()
	return nil
}

// WaitConnected blocks until the terminal is connected or ctx ends.
func (t *Terminal) WaitConnected(ctx context.Context) error { return t.cl.waitConnected(ctx) }

// Connected reports whether the broker connection is open now.
func (t *Terminal) Connected() bool { return t.cl.connected() }

func (t *Terminal) onConnect() {
	conn := t.cl.current()
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.ConnectTimeout)
	defer cancel()
	if err := t.cl.subscribe(ctx, t.topics.Down(t.terminalID), t.topics.Prefix+"/bridge/+/presence"); err != nil {
		if t.h.OnLost != nil {
			t.h.OnLost(err)
		}
		t.cl.redial(conn)
		return
	}
	_ = t.cl.publish(ctx, t.topics.Presence(t.terminalID), true, PresenceOnline)
	if t.h.OnConnect != nil {
		t.h.OnConnect()
	}
}

func (t *Terminal) onMessage(topic string, payload []byte) {
	if topic == t.topics.Down(t.terminalID) {
		if t.h.OnMessage != nil {
			t.h.OnMessage(payload)
		}
		return
	}
	if IsOnline(payload) && t.h.OnBridgeOnline != nil {
		t.h.OnBridgeOnline()
	}
}

// Publish sends one protocol message to the bridge (QoS 1, waits for the
// PUBACK). ErrNotConnected while the broker is unreachable.
func (t *Terminal) Publish(ctx context.Context, payload []byte) error {
	if err := t.cl.publish(ctx, t.topics.Up(t.terminalID), false, payload); err != nil {
		return fmt.Errorf("terminal %s: %w", t.terminalID, err)
	}
	return nil
}

// Close marks the terminal offline (a clean close sends no Last Will, so
// the terminal clears its own presence) and disconnects.
func (t *Terminal) Close(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	t.cl.stop(ctx, t.topics.Presence(t.terminalID))
	return nil
}

// Abort drops the connection without a clean DISCONNECT, so the broker
// publishes the Last Will, as when a terminal loses power. For tests and
// the simulator's "die" command.
func (t *Terminal) Abort() {
	t.cl.abort()
}
