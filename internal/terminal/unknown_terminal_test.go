package terminal

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

// TestUnknownTerminalGarbageNotKept: a terminal that is not in the config
// publishes malformed messages on the broker. The hub has no sender for
// such a terminal, so whatever it would answer must not pile up in memory
// (one refusal per message, kept for ever, until the bridge runs out).
func TestUnknownTerminalGarbageNotKept(t *testing.T) {
	b := mqtt.NewBroker(mqtt.BrokerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := b.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	conf := func(id string) *mqtt.Config {
		return &mqtt.Config{BrokerURL: b.URL(), ClientID: id, MaxReconnectInterval: 200 * time.Millisecond}
	}
	h, err := New(Config{Terminals: []TerminalConfig{{ID: "T-1", MQTT: true}}, MQTT: conf("bridge"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.bridge.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	rogue, err := mqtt.NewTerminal(*conf(""), "T-ROGUE", mqtt.TerminalHandler{})
	if err != nil {
		t.Fatal(err)
	}
	rogue.Open(context.Background())
	t.Cleanup(func() { rogue.Close(context.Background()) })
	if err := rogue.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := 0; i < n; i++ {
		if err := rogue.Publish(ctx, []byte(`{"v":1,"kind":"result","id":"r`+string(rune('a'+i%26))+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		if st, ok := h.Terminal("T-ROGUE"); ok && st.FrameErrors == n {
			break
		}
		select {
		case <-ctx.Done():
			st, _ := h.Terminal("T-ROGUE")
			t.Fatalf("the hub saw %d of %d messages", st.FrameErrors, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
	h.mu.Lock()
	rt := h.terms["T-ROGUE"]
	h.mu.Unlock()
	rt.qmu.Lock()
	kept := len(rt.q)
	rt.qmu.Unlock()
	if kept != 0 {
		t.Fatalf("%d messages kept for a terminal the hub never sends to", kept)
	}
}
