package mqtt_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

// ageHook makes every publish look two days old to the broker, as a
// terminal's or the bridge's retained presence is after two days of
// uptime.
type ageHook struct{ mochi.HookBase }

func (ageHook) ID() string           { return "test-age" }
func (ageHook) Provides(b byte) bool { return b == mochi.OnPublish }
func (ageHook) OnPublish(_ *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	pk.Created -= 2 * 24 * 3600
	return pk, nil
}

// TestRetainedPresenceDoesNotAgeOut: a retained presence stays as long as
// no newer one replaces it, however long ago it was published, as with
// mosquitto. mochi's default removes every retained message a day after
// it was published: a bridge (re)started after a terminal had been
// connected for a day saw no presence for it, and a terminal that
// reconnected after the bridge had run for a day saw none for the bridge.
func TestRetainedPresenceDoesNotAgeOut(t *testing.T) {
	b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	mqtt.AddTestHook(b, &ageHook{}, false)
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("presence-writer").SetAutoReconnect(false))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	const topic = "posbridge/t/29708454/presence"
	if tok := pub.Publish(topic, 1, true, "online"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	// The broker looks for expired retained messages every second.
	time.Sleep(2500 * time.Millisecond)
	got := make(chan string, 1)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("presence-reader").SetAutoReconnect(false))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer sub.Disconnect(0)
	if tok := sub.Subscribe("posbridge/t/+/presence", 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- string(m.Payload()):
		default:
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case p := <-got:
		if p != "online" {
			t.Fatalf("retained presence %q, want online", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retained presence published (as if) two days ago is gone")
	}
}
