package mqtt_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

// failSubscribe is a broker hook that spoils the first SUBSCRIBE of the
// named clients: "drop" closes the client's connection (a broker that
// restarts right after accepting it), "stall" never answers it (a broker
// too busy to send the SUBACK in time).
type failSubscribe struct {
	mochi.HookBase
	mode    string
	release chan struct{}

	mu   sync.Mutex
	left map[string]int
}

func (h *failSubscribe) ID() string { return "fail-subscribe" }

func (h *failSubscribe) Provides(b byte) bool { return b == mochi.OnSubscribe }

func (h *failSubscribe) OnSubscribe(cl *mochi.Client, pk packets.Packet) packets.Packet {
	h.mu.Lock()
	spoil := h.left[cl.ID] > 0
	if spoil {
		h.left[cl.ID]--
	}
	h.mu.Unlock()
	if spoil {
		switch h.mode {
		case "drop":
			cl.Stop(errors.New("dropped by the test broker"))
		case "stall":
			<-h.release
		}
	}
	return pk
}

// startSpoilingBroker runs a real mochi broker on a loopback port with the
// failSubscribe hook for the given client ids.
func startSpoilingBroker(t *testing.T, mode string, clientIDs ...string) string {
	t.Helper()
	h := &failSubscribe{mode: mode, release: make(chan struct{}), left: map[string]int{}}
	for _, id := range clientIDs {
		h.left[id] = 1
	}
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	// The embedded broker's wait for a dropped connection's cleanup
	// (without it, about 1 in 300 drop cases lost the reconnected client).
	if err := srv.AddHook(mqtt.NewTakeoverHook(srv), nil); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddHook(h, nil); err != nil {
		t.Fatal(err)
	}
	ln := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(ln); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		close(h.release)
		srv.Close()
	})
	return "tcp://" + ln.Address()
}

func testConf(url, clientID string) mqtt.Config {
	return mqtt.Config{BrokerURL: url, ClientID: clientID, KeepAlive: 5 * time.Second,
		ConnectTimeout: 500 * time.Millisecond, MaxReconnectInterval: 200 * time.Millisecond}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s never happened", what)
	}
}

// TestBridgeResubscribesAfterFailedSubscribe: the bridge's subscription
// after a connect fails (the connection drops during it, or the SUBACK
// never comes). The bridge must drop that connection and let the client
// reconnect and subscribe again, not give up on the broker for good.
func TestBridgeResubscribesAfterFailedSubscribe(t *testing.T) {
	for _, mode := range []string{"drop", "stall"} {
		t.Run(mode, func(t *testing.T) {
			url := startSpoilingBroker(t, mode, "bridge")
			connected := make(chan struct{}, 16)
			got := make(chan struct{}, 16)
			br, err := mqtt.NewBridge(testConf(url, "bridge"), mqtt.BridgeHandler{
				OnConnect: func() { connected <- struct{}{} },
				OnMessage: func(id string, p []byte) {
					if id == "T-1" && string(p) == "hello bridge" {
						got <- struct{}{}
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			br.Open(context.Background())
			t.Cleanup(func() { br.Close(context.Background()) })
			waitFor(t, connected, "the bridge's subscription")

			term, err := mqtt.NewTerminal(testConf(url, ""), "T-1", mqtt.TerminalHandler{})
			if err != nil {
				t.Fatal(err)
			}
			term.Open(context.Background())
			t.Cleanup(func() { term.Close(context.Background()) })
			if err := term.WaitConnected(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			for {
				if err := term.Publish(ctxT(t), []byte("hello bridge")); err != nil {
					t.Fatal(err)
				}
				select {
				case <-got:
					return
				case <-time.After(100 * time.Millisecond): // the terminal may have published before it subscribed
				}
			}
		})
	}
}

// TestTerminalResubscribesAfterFailedSubscribe: the same for the terminal
// side (the reference a terminal app follows).
func TestTerminalResubscribesAfterFailedSubscribe(t *testing.T) {
	for _, mode := range []string{"drop", "stall"} {
		t.Run(mode, func(t *testing.T) {
			url := startSpoilingBroker(t, mode, "posbridge-terminal-T-1")
			connected := make(chan struct{}, 16)
			got := make(chan struct{}, 16)
			term, err := mqtt.NewTerminal(testConf(url, ""), "T-1", mqtt.TerminalHandler{
				OnConnect: func() { connected <- struct{}{} },
				OnMessage: func(p []byte) {
					if string(p) == "hello terminal" {
						got <- struct{}{}
					}
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			term.Open(context.Background())
			t.Cleanup(func() { term.Close(context.Background()) })
			waitFor(t, connected, "the terminal's subscription")

			br, err := mqtt.NewBridge(testConf(url, "bridge"), mqtt.BridgeHandler{})
			if err != nil {
				t.Fatal(err)
			}
			br.Open(context.Background())
			t.Cleanup(func() { br.Close(context.Background()) })
			if err := br.WaitConnected(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			for {
				if err := br.Publish(ctxT(t), "T-1", []byte("hello terminal")); err != nil {
					t.Fatal(err)
				}
				select {
				case <-got:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
