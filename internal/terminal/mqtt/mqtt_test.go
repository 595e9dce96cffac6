package mqtt_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

func TestTopics(t *testing.T) {
	tp := mqtt.Topics{Prefix: "posbridge"}
	if got := tp.Down("T-1"); got != "posbridge/t/T-1/down" {
		t.Errorf("Down = %s", got)
	}
	for _, tc := range []struct {
		topic, id, leaf string
		ok              bool
	}{
		{"posbridge/t/T-1/up", "T-1", "up", true},
		{"posbridge/t/T-1/presence", "T-1", "presence", true},
		{"posbridge/t//up", "", "", false},
		{"posbridge/t/T-1/up/extra", "", "", false},
		{"other/t/T-1/up", "", "", false},
		{"posbridge/bridge/b1/presence", "", "", false},
	} {
		id, leaf, ok := tp.Parse(tc.topic)
		if id != tc.id || leaf != tc.leaf || ok != tc.ok {
			t.Errorf("Parse(%s) = %q %q %v", tc.topic, id, leaf, ok)
		}
	}
	if !mqtt.IsOnline(mqtt.PresenceOnline) || mqtt.IsOnline(mqtt.PresenceOffline) || mqtt.IsOnline(nil) {
		t.Error("IsOnline")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  mqtt.Config
		ok   bool
	}{
		{"OK", mqtt.Config{BrokerURL: "tcp://127.0.0.1:1883"}, true},
		{"TLS", mqtt.Config{BrokerURL: "ssl://broker:8883", Username: "u", Password: "p"}, true},
		{"ErrEmpty", mqtt.Config{}, false},
		{"ErrScheme", mqtt.Config{BrokerURL: "http://x"}, false},
		{"ErrUserInURL", mqtt.Config{BrokerURL: "tcp://u:hunter2@x:1883"}, false},
		{"ErrClientID", mqtt.Config{BrokerURL: "tcp://x:1883", ClientID: "a/b"}, false},
		{"ErrHalfCert", mqtt.Config{BrokerURL: "ssl://x:8883", CertFile: "c.pem"}, false},
		{"ErrPasswordOnly", mqtt.Config{BrokerURL: "tcp://x:1883", Password: "hunter2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

// TestEmbeddedBrokerAuth: with credentials configured, only they get in.
func TestEmbeddedBrokerAuth(t *testing.T) {
	b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0", Username: "store", Password: "pw-123"})
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	if !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("URL %s Addr %s", b.URL(), b.Addr())
	}
	// A busy port fails at Open.
	if err := mqtt.NewBroker(mqtt.BrokerConfig{Addr: b.Addr()}).Open(context.Background()); err == nil {
		t.Fatal("second broker on the same port opened")
	}
	try := func(user, pass string) error {
		term, err := mqtt.NewTerminal(mqtt.Config{BrokerURL: b.URL(), Username: user, Password: pass}, "T-1", mqtt.TerminalHandler{})
		if err != nil {
			t.Fatal(err)
		}
		term.Open(context.Background())
		defer term.Close(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return term.WaitConnected(ctx)
	}
	if err := try("store", "pw-123"); err != nil {
		t.Fatalf("right credentials: %v", err)
	}
	if err := try("store", "nope"); err == nil {
		t.Fatal("wrong password accepted")
	}
	if err := try("", ""); err == nil {
		t.Fatal("anonymous accepted")
	}
}

// TestPublishWhileDisconnected: nothing is queued inside the client.
func TestPublishWhileDisconnected(t *testing.T) {
	b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0"})
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	url := b.URL()
	b.Close(context.Background())
	br, err := mqtt.NewBridge(mqtt.Config{BrokerURL: url, ClientID: "b1"}, mqtt.BridgeHandler{})
	if err != nil {
		t.Fatal(err)
	}
	br.Open(context.Background())
	defer br.Close(context.Background())
	if err := br.Publish(context.Background(), "T-1", []byte("{}")); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("Publish = %v, want ErrNotConnected", err)
	}
}
