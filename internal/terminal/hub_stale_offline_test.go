package terminal_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/internal/testbroker"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// TestMQTTStaleOfflineAfterOnline: a broker that delivers a terminal's
// old connection's Last Will ("offline", retained) after its new
// connection's "online" (mosquitto and the embedded broker order them,
// others may not) makes the hub report a connected terminal
// disconnected, and send it nothing. The hub must find out at once that
// the terminal is there, by asking it to identify itself, not wait for
// the terminal's next message (which may never come: a terminal with
// nothing to say waits for invoices).
//
// The late will is played by a retained publish of "offline" on the
// terminal's presence topic while the terminal is connected and quiet.
// In "identify-lost" the terminal misses the first identify after it.
func TestMQTTStaleOfflineAfterOnline(t *testing.T) {
	forEachBroker(t, testbroker.Options{}, func(t *testing.T, b testbroker.Broker) {
		for _, lost := range []int32{0, 1} {
			t.Run(map[int32]string{0: "answered", 1: "identify-lost"}[lost], func(t *testing.T) {
				testStaleOffline(t, b, lost)
			})
		}
	})
}

func testStaleOffline(t *testing.T, b testbroker.Broker, lost int32) {
	rec := newRecorder()
	h := mqttHub(t, b, rec, "T-1")
	ignore := startQuietTerminal(t, b, "T-1")
	rec.wait(t, pos.TerminalConnected, "T-1")
	// The pong comes after the answers to everything the hub sent
	// before the ping: the terminal has nothing more to say.
	if err := h.Ping(ctxT(t, 20*time.Second), "T-1"); err != nil {
		t.Fatalf("ping: %v", err)
	}

	ignore.Store(lost)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).
		SetClientID(fmt.Sprintf("late-will-%d", time.Now().UnixNano())).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	topic := mqtt.Topics{Prefix: mqtt.DefaultTopicPrefix}.Presence("T-1")
	if tok := c.Publish(topic, 1, true, mqtt.PresenceOffline); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish the late offline: %v", tok.Error())
	}

	rec.wait(t, pos.TerminalDisconnected, "T-1")
	rec.wait(t, pos.TerminalConnected, "T-1")
	if st, _ := h.Terminal("T-1"); !st.Connected {
		t.Fatalf("T-1 answered but is not shown connected: %+v", st)
	}
	if err := h.Ping(ctxT(t, 20*time.Second), "T-1"); err != nil {
		t.Fatalf("ping after the late offline: %v", err)
	}
}

// startQuietTerminal runs a terminal on the MQTT transport that says
// hello when it connects, when a bridge comes online and when asked
// (identify), answers pings, and says nothing else: no resends. It
// publishes from one goroutine, in the order it decided to. Storing n in
// the returned counter makes it ignore the next n identifies.
func startQuietTerminal(t *testing.T, b testbroker.Broker, id string) *atomic.Int32 {
	t.Helper()
	ids := protocol.NewIDGen("t")
	out := make(chan protocol.Message, 64)
	ignore := new(atomic.Int32)
	hello := func() {
		m := ids.New(protocol.KindHello, id)
		m.Hello = &protocol.Hello{Model: "quiet"}
		out <- m
	}
	term, err := mqtt.NewTerminal(*mqttConf(b, ""), id, mqtt.TerminalHandler{
		OnConnect:      hello,
		OnBridgeOnline: hello,
		OnMessage: func(p []byte) {
			m, err := protocol.Decode(p)
			if err != nil {
				return
			}
			switch m.Kind {
			case protocol.KindIdentify:
				if ignore.Add(-1) >= 0 {
					return
				}
				ignore.Store(0)
				hello()
			case protocol.KindPing:
				out <- ids.Reply(protocol.KindPong, m)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-out:
				p, err := protocol.Encode(m)
				if err != nil {
					panic(err)
				}
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				_ = term.Publish(pctx, p) // lost while disconnected, like a frame
				pcancel()
			}
		}
	}()
	term.Open(ctx)
	t.Cleanup(func() {
		cancel()
		<-done
		term.Close(context.Background())
	})
	return ignore
}
