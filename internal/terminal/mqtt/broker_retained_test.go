package mqtt_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

// TestRetainedPublishDuringWildcardSubscribe: clients subscribe with
// wildcard filters (as the bridge does to posbridge/t/+/presence and a
// terminal to posbridge/bridge/+/presence) while others publish retained
// presences and connections with retained Last Wills die, all at once
// against the embedded broker.
//
// mochi (v2.7.9) reads a topic's retained-message path while it looks for
// the retained messages matching a new wildcard subscription, without the
// lock under which a retained publish writes that path: a data race
// inside the broker, which go test -race reported here within a second or
// two. The broker wrapper keeps the two apart. Without -race this checks
// that nothing deadlocks and that the retained presences are still right
// afterwards.
func TestRetainedPublishDuringWildcardSubscribe(t *testing.T) {
	b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	brokerURL := b.URL()
	topics := mqtt.Topics{Prefix: "posbridge"}

	const publishers, subscribers, dying = 6, 6, 2
	run := 2 * time.Second
	if testing.Short() {
		run = 500 * time.Millisecond
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var published, subscribed, wills atomic.Int64
	errs := make(chan error, publishers+subscribers+dying)

	connect := func(id string, o *paho.ClientOptions) (paho.Client, error) {
		o.AddBroker(brokerURL).SetClientID(id).SetCleanSession(true).SetAutoReconnect(false).
			SetConnectTimeout(10 * time.Second)
		c := paho.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("%s: connect: %v", id, tok.Error())
		}
		return c, nil
	}
	wait := func(tok paho.Token, what string) error {
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("%s: no answer in 10 s", what)
		}
		return tok.Error()
	}

	// Terminals that keep changing their retained presence.
	last := make([]bool, publishers)
	for i := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := connect(fmt.Sprintf("race-pub-%d", i), paho.NewClientOptions())
			if err != nil {
				errs <- err
				return
			}
			defer c.Disconnect(0)
			topic := topics.Presence(fmt.Sprintf("P-%d", i))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				on := n%2 == 0
				body := mqtt.PresenceOffline
				if on {
					body = mqtt.PresenceOnline
				}
				if err := wait(c.Publish(topic, 1, true, body), "retained publish"); err != nil {
					errs <- err
					return
				}
				last[i] = on
				published.Add(1)
			}
		}()
	}
	// Bridges and terminals subscribing with wildcards, again and again.
	filters := []string{"posbridge/t/+/presence", "posbridge/bridge/+/presence", "posbridge/#", "+/t/+/presence"}
	for i := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := connect(fmt.Sprintf("race-sub-%d", i), paho.NewClientOptions())
			if err != nil {
				errs <- err
				return
			}
			defer c.Disconnect(0)
			f := filters[i%len(filters)]
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := wait(c.Subscribe(f, 1, func(paho.Client, paho.Message) {}), "subscribe"); err != nil {
					errs <- err
					return
				}
				if err := wait(c.Unsubscribe(f), "unsubscribe"); err != nil {
					errs <- err
					return
				}
				subscribed.Add(1)
			}
		}()
	}
	// Terminals whose connection dies: the broker retains their will.
	for i := range dying {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("D-%d", i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var mu sync.Mutex
				var conn net.Conn
				o := paho.NewClientOptions().SetWill(topics.Presence(id), string(mqtt.PresenceOffline), 1, true)
				o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
					c, err := net.Dial("tcp", u.Host)
					mu.Lock()
					conn = c
					mu.Unlock()
					return c, err
				})
				c, err := connect("race-"+id, o)
				if err != nil {
					errs <- err
					return
				}
				if err := wait(c.Publish(topics.Presence(id), 1, true, mqtt.PresenceOnline), "online"); err != nil {
					errs <- err
					c.Disconnect(0)
					return
				}
				mu.Lock()
				conn.Close() // no DISCONNECT: the broker publishes the will
				mu.Unlock()
				c.Disconnect(0)
				wills.Add(1)
			}
		}()
	}

	time.Sleep(run)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("publishers and subscribers still busy 30 s after the stop: is the broker stuck?")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	t.Logf("%d retained publishes, %d wildcard subscribes, %d wills", published.Load(), subscribed.Load(), wills.Load())
	if published.Load() == 0 || subscribed.Load() == 0 || wills.Load() == 0 {
		t.Fatal("the clients made no progress")
	}

	// The retained presences are what was published last.
	for i := range publishers {
		want := last[i]
		if got := mqtt.IsOnline([]byte(retained(t, brokerURL, topics.Presence(fmt.Sprintf("P-%d", i))))); got != want {
			t.Errorf("P-%d: retained online=%v, last published online=%v", i, got, want)
		}
	}
	// The will fires after the online, so the retained presence is offline
	// (the takeover case is TestOldWillAfterNewOnline's).
	deadline := time.Now().Add(10 * time.Second)
	for i := range dying {
		topic := topics.Presence(fmt.Sprintf("D-%d", i))
		for mqtt.IsOnline([]byte(retained(t, brokerURL, topic))) {
			if time.Now().After(deadline) {
				t.Errorf("D-%d: retained presence online after its connection died", i)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestSysTopicsNotServed: mochi stores its $SYS topics as retained
// messages every second with no hook around the store, so the embedded
// broker refuses subscriptions to them instead (the same race as above).
func TestSysTopicsNotServed(t *testing.T) {
	b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("sys-reader").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	for _, f := range []string{"$SYS/#", "$SYS/broker/+", "posbridge/t/+/presence"} {
		tok := c.Subscribe(f, 1, nil)
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
		code := tok.(*paho.SubscribeToken).Result()[f]
		if refused := code == 0x80; refused != strings.HasPrefix(f, "$SYS") {
			t.Errorf("subscribe %s: SUBACK code %#x", f, code)
		}
	}
}
