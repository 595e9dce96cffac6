package mqtt_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/internal/testbroker"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

// reports opens a bridge on cfg and returns what OnConnectFailed says,
// until the test ends.
func reports(t *testing.T, cfg mqtt.Config) <-chan error {
	t.Helper()
	got := make(chan error, 16)
	br, err := mqtt.NewBridge(cfg, mqtt.BridgeHandler{OnConnectFailed: func(err error) {
		select {
		case got <- err:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close(context.Background()) })
	return got
}

func next(t *testing.T, got <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-got:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("no report of %s within 15s", what)
		return nil
	}
}

// TestBridgeReportsWhyItCannotConnect: a bridge that cannot connect says
// why (paho's own retries say nothing): a broker refusing its password
// (mosquitto and the embedded broker) is reported as such, with the
// broker's URL and without the password; a closed port as refused; and
// it is reported again while it lasts. Before, a wrong mqtt.password or a
// broker that was down at start left no line in the log at all.
func TestBridgeReportsWhyItCannotConnect(t *testing.T) {
	mqtt.SetCheckTimes(t, 200*time.Millisecond, 500*time.Millisecond)
	const user, pass, wrong = "store", "right-pass-4821", "WRONG-pass-7713"
	brokers := map[string]func(t *testing.T) string{
		"mosquitto": func(t *testing.T) string {
			return testbroker.StartMosquitto(t, testbroker.Options{Username: user, Password: pass}).URL()
		},
		"embedded": func(t *testing.T) string {
			b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0", Username: user, Password: pass})
			if err := b.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close(context.Background()) })
			return b.URL()
		},
	}
	for name, start := range brokers {
		t.Run(name+"/wrong password", func(t *testing.T) {
			url := start(t)
			got := reports(t, mqtt.Config{BrokerURL: url, ClientID: "pb-" + name, Username: user, Password: wrong})
			for i := range 2 {
				err := next(t, got, fmt.Sprintf("the refused password (%d)", i+1))
				if !mqtt.AuthRefused(err) || !strings.Contains(err.Error(), url) || strings.Contains(err.Error(), wrong) {
					t.Fatalf("report %d: %v; want the broker's refusal of the credentials, naming %s, without the password", i+1, err, url)
				}
			}
		})
		t.Run(name+"/right password", func(t *testing.T) {
			url := start(t)
			got := reports(t, mqtt.Config{BrokerURL: url, ClientID: "pb-ok-" + name, Username: user, Password: pass})
			select {
			case err := <-got:
				t.Fatalf("a connected bridge reported %v", err)
			case <-time.After(1500 * time.Millisecond):
			}
		})
	}
	t.Run("closed port", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		err = next(t, reports(t, mqtt.Config{BrokerURL: "tcp://" + addr, ClientID: "pb-closed"}), "the closed port")
		if mqtt.AuthRefused(err) || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), addr) {
			t.Fatalf("report: %v; want connection refused at %s", err, addr)
		}
	})
}
