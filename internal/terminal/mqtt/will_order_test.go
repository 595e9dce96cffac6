package mqtt_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posbridge/posbridge/internal/terminal/internal/testbroker"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

// holdWill is a broker hook that holds the Last Will of one client id
// (the goroutine of the connection being replaced is slow to publish it,
// as on a busy machine) until release says so or for at most max. It
// reports every will of that id the broker is done with on sent.
type holdWill struct {
	mochi.HookBase
	id, clientID string
	release      func() bool
	max          time.Duration
	stop         chan struct{}
	sent         chan struct{}
}

func (h *holdWill) ID() string { return h.id }

func (h *holdWill) Provides(b byte) bool { return b == mochi.OnWill || b == mochi.OnWillSent }

func (h *holdWill) OnWill(cl *mochi.Client, w mochi.Will) (mochi.Will, error) {
	if cl.ID != h.clientID {
		return w, nil
	}
	give := time.After(h.max)
	for !h.release() {
		select {
		case <-h.stop:
			return w, nil
		case <-give:
			return w, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	return w, nil
}

func (h *holdWill) OnWillSent(cl *mochi.Client, _ packets.Packet) {
	if h.sent != nil && cl.ID == h.clientID {
		select {
		case h.sent <- struct{}{}:
		default:
		}
	}
}

// presenceWatch is a plain MQTT subscriber to one presence topic, as the
// bridge (or a terminal) listens to it, recording what arrives in order.
type presenceWatch struct {
	topic, mark string
	c           paho.Client
	marks       chan struct{}

	mu     sync.Mutex
	states []bool // true = online
}

func watchPresence(t *testing.T, url, topic string) *presenceWatch {
	t.Helper()
	w := &presenceWatch{topic: topic, mark: "posbridge-test/mark/" + fmt.Sprint(time.Now().UnixNano()),
		marks: make(chan struct{}, 16)}
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("watch-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetOrderMatters(true).SetAutoReconnect(false)
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		switch m.Topic() {
		case w.topic:
			w.mu.Lock()
			w.states = append(w.states, mqtt.IsOnline(m.Payload()))
			w.mu.Unlock()
		case w.mark:
			w.marks <- struct{}{}
		}
	})
	w.c = paho.NewClient(o)
	if tok := w.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	t.Cleanup(func() { w.c.Disconnect(0) })
	if tok := w.c.SubscribeMultiple(map[string]byte{topic: 1, w.mark: 1}, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	return w
}

// count returns how many presence messages arrived so far.
func (w *presenceWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.states)
}

// onlineSince reports whether an online presence arrived after the
// first n messages.
func (w *presenceWatch) onlineSince(n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, on := range w.states[min(n, len(w.states)):] {
		if on {
			return true
		}
	}
	return false
}

func (w *presenceWatch) waitOnlineSince(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !w.onlineSince(n) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no online presence", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flush makes sure everything the broker queued for the watcher so far
// has arrived: a message of its own comes back after it.
func (w *presenceWatch) flush(t *testing.T) {
	t.Helper()
	if tok := w.c.Publish(w.mark, 1, false, "mark"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("watcher publish: %v", tok.Error())
	}
	select {
	case <-w.marks:
	case <-time.After(20 * time.Second):
		t.Fatal("the watcher's own message never came back")
	}
}

func (w *presenceWatch) last() (online, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.states) == 0 {
		return false, false
	}
	return w.states[len(w.states)-1], true
}

// retained reads the topic's retained presence with a fresh client, as a
// bridge (or terminal) that connects now would.
func retained(t *testing.T, url, topic string) string {
	t.Helper()
	got := make(chan string, 1)
	o := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("late-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("late subscriber connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("late subscriber subscribe: %v", tok.Error())
	}
	select {
	case p := <-got:
		return p
	case <-time.After(10 * time.Second):
		t.Fatalf("no retained presence on %s", topic)
		return ""
	}
}

// presenceClient is the side under test: a terminal or a bridge, each
// with a Last Will of offline on its retained presence topic.
type presenceClient interface {
	Open(context.Context) error
	Close(context.Context) error
	Drop()
	Freeze()
}

type side struct {
	name     string
	clientID string
	topic    string
	start    func(t *testing.T, url string, connected chan<- struct{}) presenceClient
}

func willConf(url, clientID string) mqtt.Config {
	// A connect step slower than the hold below must not make the
	// client give up and redial.
	return mqtt.Config{BrokerURL: url, ClientID: clientID, KeepAlive: 5 * time.Second,
		ConnectTimeout: 10 * time.Second, MaxReconnectInterval: 200 * time.Millisecond}
}

var presenceSides = []side{
	{name: "terminal", clientID: "posbridge-terminal-T-1", topic: mqtt.Topics{Prefix: "posbridge"}.Presence("T-1"),
		start: func(t *testing.T, url string, connected chan<- struct{}) presenceClient {
			c, err := mqtt.NewTerminal(willConf(url, ""), "T-1", mqtt.TerminalHandler{
				OnConnect: func() { connected <- struct{}{} }})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	{name: "bridge", clientID: "bridge-1", topic: mqtt.Topics{Prefix: "posbridge"}.BridgePresence("bridge-1"),
		start: func(t *testing.T, url string, connected chan<- struct{}) presenceClient {
			c, err := mqtt.NewBridge(willConf(url, "bridge-1"), mqtt.BridgeHandler{
				OnConnect: func() { connected <- struct{}{} }})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
}

// TestOldWillAfterNewOnline: a terminal's (or the bridge's) connection
// goes and a new one with the same client id comes at once: the same
// client reconnecting after a network error ("drop"), or a new instance
// (the app restarted, the device rebooted) while the broker still holds
// the old connection ("takeover"). The broker publishes the old
// connection's Last Will, offline; it must not land after the new
// connection's online, or the retained presence says offline while the
// terminal is connected (the bridge reports it disconnected, and so does
// every bridge that starts later).
//
// mosquitto publishes the old will before it accepts the new connection.
// The embedded broker's old connection publishes its will on its own
// goroutine; the hook holdWill makes that goroutine slow, ahead of the
// broker's own hooks ("embedded") or after them ("embedded-late").
func TestOldWillAfterNewOnline(t *testing.T) {
	for _, kind := range []string{"mosquitto", "embedded", "embedded-late"} {
		for _, sd := range presenceSides {
			for _, how := range []string{"drop", "takeover"} {
				t.Run(kind+"/"+sd.name+"/"+how, func(t *testing.T) {
					testOldWill(t, kind, sd, how)
				})
			}
		}
	}
}

func testOldWill(t *testing.T, kind string, sd side, how string) {
	var url string
	var sent chan struct{}
	// The watcher and how many presence messages it had when the old
	// connection went; read by the hook on the broker's goroutines.
	var watch atomic.Pointer[presenceWatch]
	var after atomic.Int64
	after.Store(-1)
	if kind == "mosquitto" {
		url = testbroker.StartMosquitto(t, testbroker.Options{}).URL()
	} else {
		stop := make(chan struct{})
		sent = make(chan struct{}, 16)
		hold := &holdWill{id: "test-hold-will", clientID: sd.clientID, max: time.Second, stop: stop, sent: sent,
			// Released once the new connection said online: the will is
			// then as late as it can be.
			release: func() bool {
				n, w := after.Load(), watch.Load()
				return n >= 0 && w != nil && w.onlineSince(int(n))
			}}
		b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		mqtt.AddTestHook(b, hold, kind == "embedded-late")
		if err := b.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			close(stop)
			b.Close(context.Background())
		})
		url = b.URL()
	}
	w := watchPresence(t, url, sd.topic)
	watch.Store(w)

	connected := make(chan struct{}, 16)
	old := sd.start(t, url, connected)
	old.Open(context.Background())
	t.Cleanup(func() { old.Close(context.Background()) })
	waitFor(t, connected, "the first connection")
	w.waitOnlineSince(t, 0, "first connection")
	w.flush(t)

	n := w.count()
	switch how {
	case "drop":
		after.Store(int64(n))
		old.Drop()
		waitFor(t, connected, "the reconnect")
	case "takeover":
		old.Freeze()
		after.Store(int64(n))
		next := sd.start(t, url, connected)
		next.Open(context.Background())
		t.Cleanup(func() { next.Close(context.Background()) })
		waitFor(t, connected, "the new instance's connection")
	}
	w.waitOnlineSince(t, n, "the new connection")
	if sent != nil {
		select {
		case <-sent: // the old connection's will is through the broker
		case <-time.After(20 * time.Second):
			t.Fatal("the broker never published the old connection's will")
		}
	}
	w.flush(t)
	w.mu.Lock()
	t.Logf("presence after the old connection went, in order (true = online): %v", w.states[n:])
	w.mu.Unlock()
	if on, _ := w.last(); !on {
		w.mu.Lock()
		t.Errorf("the last presence a subscriber got is offline while the %s is connected (in order: %v)", sd.name, w.states[n:])
		w.mu.Unlock()
	}
	if p := retained(t, url, sd.topic); !mqtt.IsOnline([]byte(p)) {
		t.Errorf("the retained presence is %s while the %s is connected", p, sd.name)
	}
}
