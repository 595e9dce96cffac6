package terminal_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/internal/testbroker"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// mqttConf is a client config for tests: fast reconnects and keepalive.
func mqttConf(b testbroker.Broker, clientID string) *mqtt.Config {
	return &mqtt.Config{BrokerURL: b.URL(), ClientID: clientID, KeepAlive: 5 * time.Second,
		MaxReconnectInterval: 200 * time.Millisecond, ConnectTimeout: 2 * time.Second, CAFile: b.CAFile()}
}

func mqttHub(t *testing.T, b testbroker.Broker, rec *recorder, ids ...string) *terminal.Hub {
	cfg := terminal.Config{MQTT: mqttConf(b, "bridge-"+strings.ReplaceAll(t.Name(), "/", "-")), OnEvent: rec.onEvent,
		ResendInterval: 300 * time.Millisecond}
	for _, id := range ids {
		cfg.Terminals = append(cfg.Terminals, terminal.TerminalConfig{ID: id, MQTT: true})
	}
	return openHub(t, cfg)
}

// forEachBroker runs f against a real mosquitto and the embedded broker.
func forEachBroker(t *testing.T, o testbroker.Options, f func(t *testing.T, b testbroker.Broker)) {
	for _, k := range testbroker.Kinds {
		t.Run(string(k), func(t *testing.T) {
			f(t, testbroker.Start(t, k, o))
		})
	}
}

func TestMQTTRoundTrip(t *testing.T) {
	forEachBroker(t, testbroker.Options{}, func(t *testing.T, b testbroker.Broker) {
		rec := newRecorder()
		h := mqttHub(t, b, rec, "T-1", "T-2")
		runSim(t, termsim.Config{TerminalID: "T-1", MQTT: mqttConf(b, ""), Mode: termsim.Approve})
		runSim(t, termsim.Config{TerminalID: "T-2", MQTT: mqttConf(b, ""), Mode: termsim.Decline})
		rec.wait(t, pos.TerminalConnected, "T-1")
		rec.wait(t, pos.TerminalConnected, "T-2")
		ctx := ctxT(t, 20*time.Second)
		tx1, tx2 := newTx(), newTx()
		if err := h.PushInvoice(ctx, "T-1", invoice(tx1)); err != nil {
			t.Fatal(err)
		}
		if err := h.PushInvoice(ctx, "T-2", invoice(tx2)); err != nil {
			t.Fatal(err)
		}
		got := map[string]pos.Outcome{}
		for len(got) < 2 {
			ev := rec.wait(t, pos.TerminalResult, "")
			got[ev.TransactionID] = ev.Outcome
		}
		if got[tx1] != pos.OutcomeApproved || got[tx2] != pos.OutcomeDeclined {
			t.Fatalf("results %v", got)
		}
		if err := h.Ping(ctx, "T-2"); err != nil {
			t.Fatalf("ping: %v", err)
		}
		st, _ := h.Terminal("T-1")
		if !st.Connected || st.Link != terminal.LinkMQTT || st.Model == "" {
			t.Fatalf("status %+v", st)
		}
	})
}

// TestMQTTLastWill: a terminal that dies without a clean disconnect is
// reported offline by the broker's retained Last Will.
func TestMQTTLastWill(t *testing.T) {
	forEachBroker(t, testbroker.Options{}, func(t *testing.T, b testbroker.Broker) {
		rec := newRecorder()
		h := mqttHub(t, b, rec, "T-9")
		term := rawTerminal(t, b, "T-9")
		rec.wait(t, pos.TerminalConnected, "T-9")
		term.Abort() // power cut: no DISCONNECT packet
		rec.wait(t, pos.TerminalDisconnected, "T-9")
		if st, _ := h.Terminal("T-9"); st.Connected {
			t.Fatalf("still connected: %+v", st)
		}
		// A bridge that starts now sees the retained offline presence.
		rec2 := newRecorder()
		h2 := openHub(t, terminal.Config{MQTT: mqttConf(b, "bridge-2-"+strings.ReplaceAll(t.Name(), "/", "-")), OnEvent: rec2.onEvent,
			Terminals: []terminal.TerminalConfig{{ID: "T-9", MQTT: true}}})
		time.Sleep(300 * time.Millisecond)
		if st, _ := h2.Terminal("T-9"); st.Connected {
			t.Fatalf("a new bridge thinks the dead terminal is connected: %+v", st)
		}
	})
}

// rawTerminal is a minimal terminal on the MQTT transport that only says
// hello (and answers acks by ignoring them).
func rawTerminal(t *testing.T, b testbroker.Broker, id string) *mqtt.Terminal {
	ids := protocol.NewIDGen("t")
	var term *mqtt.Terminal
	hello := func() {
		m := ids.New(protocol.KindHello, id)
		m.Hello = &protocol.Hello{Model: "raw"}
		p, _ := protocol.Encode(m)
		go term.Publish(context.Background(), p)
	}
	term, err := mqtt.NewTerminal(*mqttConf(b, ""), id, mqtt.TerminalHandler{OnConnect: hello, OnBridgeOnline: hello})
	if err != nil {
		t.Fatal(err)
	}
	term.Open(context.Background())
	t.Cleanup(func() { term.Close(context.Background()) })
	if err := term.WaitConnected(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return term
}

// TestMQTTBrokerRestart: the broker dies while the customer is paying and
// the terminal decides while it is down. Everything reconnects by itself
// and the result arrives exactly once.
func TestMQTTBrokerRestart(t *testing.T) {
	forEachBroker(t, testbroker.Options{}, func(t *testing.T, b testbroker.Broker) {
		rec := newRecorder()
		h := mqttHub(t, b, rec, "T-1")
		decided := make(chan struct{}, 1)
		runSim(t, termsim.Config{TerminalID: "T-1", MQTT: mqttConf(b, ""), Mode: termsim.Approve,
			Delay: 700 * time.Millisecond, ResendInterval: 300 * time.Millisecond,
			OnPayment: func(context.Context, terminal.InvoicePush, pos.Outcome) error {
				decided <- struct{}{}
				return nil
			}})
		rec.wait(t, pos.TerminalConnected, "T-1")
		tx := newTx()
		if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx)); err != nil {
			t.Fatal(err)
		}
		b.Stop(t)
		rec.wait(t, pos.TerminalDisconnected, "T-1")
		select {
		case <-decided:
		case <-time.After(20 * time.Second):
			t.Fatal("terminal never decided")
		}
		b.Start(t)
		ev := rec.wait(t, pos.TerminalResult, "T-1")
		if ev.TransactionID != tx || ev.Outcome != pos.OutcomeApproved {
			t.Fatalf("result %+v", ev)
		}
		rec.wait(t, pos.TerminalConnected, "T-1")
		// A push after recovery works too.
		tx2 := newTx()
		if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx2)); err != nil {
			t.Fatal(err)
		}
		rec.wait(t, pos.TerminalResult, "T-1")
		time.Sleep(time.Second)
		if n := rec.count(pos.TerminalResult, tx); n != 1 {
			t.Fatalf("result for %s delivered %d times", tx, n)
		}
	})
}

// TestMQTTTLSCredentials: TLS to the broker with username/password; a
// wrong password is refused without the password showing in errors.
func TestMQTTTLSCredentials(t *testing.T) {
	const user, pass = "posbridge", "s3cret-Pa55"
	forEachBroker(t, testbroker.Options{TLS: true, Username: user, Password: pass}, func(t *testing.T, b testbroker.Broker) {
		if !strings.HasPrefix(b.URL(), "ssl://") {
			t.Fatalf("broker URL %s", b.URL())
		}
		withCreds := func(c *mqtt.Config) *mqtt.Config { c.Username, c.Password = user, pass; return c }
		rec := newRecorder()
		h := openHub(t, terminal.Config{MQTT: withCreds(mqttConf(b, "bridge-tls")), OnEvent: rec.onEvent,
			Terminals: []terminal.TerminalConfig{{ID: "T-1", MQTT: true}}})
		runSim(t, termsim.Config{TerminalID: "T-1", MQTT: withCreds(mqttConf(b, "")), Mode: termsim.Approve})
		rec.wait(t, pos.TerminalConnected, "T-1")
		tx := newTx()
		if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx)); err != nil {
			t.Fatal(err)
		}
		if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != tx {
			t.Fatalf("%+v", ev)
		}

		bad := mqttConf(b, "intruder")
		bad.Username, bad.Password = user, "wrong-Pa55word"
		lost := make(chan error, 8)
		term, err := mqtt.NewTerminal(*bad, "T-X", mqtt.TerminalHandler{OnLost: func(err error) { lost <- err }})
		if err != nil {
			t.Fatal(err)
		}
		term.Open(context.Background())
		defer term.Close(context.Background())
		short, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		err = term.WaitConnected(short)
		if err == nil {
			t.Fatal("connected with a wrong password")
		}
		if strings.Contains(err.Error(), "wrong-Pa55word") || strings.Contains(err.Error(), pass) {
			t.Fatalf("error shows a password: %v", err)
		}

		noCA := mqttConf(b, "no-ca")
		noCA.CAFile = ""
		noCA.Username, noCA.Password = user, pass
		term2, _ := mqtt.NewTerminal(*noCA, "T-Y", mqtt.TerminalHandler{})
		term2.Open(context.Background())
		defer term2.Close(context.Background())
		short2, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel2()
		if term2.WaitConnected(short2) == nil {
			t.Fatal("connected to a broker whose certificate is not trusted")
		}
	})
}
