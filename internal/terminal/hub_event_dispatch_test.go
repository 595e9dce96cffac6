package terminal_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/internal/testbroker"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// serialTerminals opens a hub serving one raw terminal per id, each on
// its own pty, and greets them all.
func serialTerminals(t *testing.T, onEvent func(context.Context, pos.TerminalEvent) error, ids ...string) (*terminal.Hub, map[string]*rawSerialTerminal) {
	t.Helper()
	cfg := terminal.Config{OnEvent: onEvent, ResendInterval: 200 * time.Millisecond,
		Serial: terminal.SerialOptions{ReopenDelay: 50 * time.Millisecond}}
	masters := map[string]*rawSerialTerminal{}
	for _, id := range ids {
		m, tty := ptyPair(t)
		cfg.Terminals = append(cfg.Terminals, terminal.TerminalConfig{ID: id, Serial: &serial.PortSpec{Path: tty}})
		masters[id] = newRawSerialTerminal(t, m)
	}
	h := openHub(t, cfg)
	for _, id := range ids {
		masters[id].greet(t, id)
	}
	return h, masters
}

func (r *rawSerialTerminal) result(id, tx string) protocol.Message {
	m := r.ids.New(protocol.KindResult, id)
	m.Result = &protocol.Result{TransactionID: tx, Outcome: pos.OutcomeApproved, Reference: "AUTH-" + tx}
	return m
}

// expectAck waits for the bridge's ack of message id, skipping others.
func (r *rawSerialTerminal) expectAck(t *testing.T, id string) {
	t.Helper()
	for {
		if a := r.expect(t, protocol.KindAck); a.Ref == id {
			return
		}
	}
}

// gate blocks OnEvent for chosen events until released or the hub's
// context ends.
type gate struct {
	rec     *recorder
	hold    func(ev pos.TerminalEvent) bool
	entered chan pos.TerminalEvent
	release chan struct{}
	mu      sync.Mutex
	ctxErr  []error // ctx.Err() of held calls when they returned
}

func newGate(rec *recorder, hold func(pos.TerminalEvent) bool) *gate {
	return &gate{rec: rec, hold: hold, entered: make(chan pos.TerminalEvent, 16), release: make(chan struct{})}
}

func (g *gate) onEvent(ctx context.Context, ev pos.TerminalEvent) error {
	if g.hold(ev) {
		g.entered <- ev
		select {
		case <-g.release:
		case <-ctx.Done():
			g.mu.Lock()
			g.ctxErr = append(g.ctxErr, ctx.Err())
			g.mu.Unlock()
			return ctx.Err()
		}
	}
	return g.rec.onEvent(ctx, ev)
}

func (g *gate) waitEntered(t *testing.T) pos.TerminalEvent {
	t.Helper()
	select {
	case ev := <-g.entered:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("OnEvent never got the held event")
		return pos.TerminalEvent{}
	}
}

func isResult(id, tx string) func(pos.TerminalEvent) bool {
	return func(ev pos.TerminalEvent) bool {
		return ev.Kind == pos.TerminalResult && ev.TerminalID == id && ev.TransactionID == tx
	}
}

// TestSlowResultHoldsNoOtherTerminal: OnEvent is slow to take T-1's
// result (its store is slow: the engine returns only once the result is
// stored). T-2's result must meanwhile reach OnEvent and be acknowledged
// to T-2; with one dispatcher for all terminals it waited behind T-1's.
func TestSlowResultHoldsNoOtherTerminal(t *testing.T) {
	rec := newRecorder()
	g := newGate(rec, isResult("T-1", "tx-slow"))
	_, terms := serialTerminals(t, g.onEvent, "T-1", "T-2")

	slow := terms["T-1"].result("T-1", "tx-slow")
	terms["T-1"].send(t, slow)
	g.waitEntered(t)

	fast := terms["T-2"].result("T-2", "tx-fast")
	terms["T-2"].send(t, fast)
	terms["T-2"].expectAck(t, fast.ID)
	if ev := rec.wait(t, pos.TerminalResult, "T-2"); ev.TransactionID != "tx-fast" {
		t.Fatalf("T-2's result event %+v", ev)
	}
	if n := rec.count(pos.TerminalResult, "tx-slow"); n != 0 {
		t.Fatalf("T-1's held result recorded %d times before it was released", n)
	}

	close(g.release)
	terms["T-1"].expectAck(t, slow.ID)
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != "tx-slow" {
		t.Fatalf("T-1's result event %+v", ev)
	}
}

// mqttResultTerminal is a hand-driven terminal on the broker: it says
// hello when it connects and sends the results the test gives it.
type mqttResultTerminal struct {
	id   string
	term *mqtt.Terminal
	ids  *protocol.IDGen
	in   chan protocol.Message
}

func newMQTTResultTerminal(t *testing.T, b testbroker.Broker, id string) *mqttResultTerminal {
	r := &mqttResultTerminal{id: id, ids: protocol.NewIDGen("t"), in: make(chan protocol.Message, 64)}
	hello := func() {
		m := r.ids.New(protocol.KindHello, id)
		m.Hello = &protocol.Hello{Model: "raw"}
		p, _ := protocol.Encode(m)
		go r.term.Publish(context.Background(), p)
	}
	var err error
	r.term, err = mqtt.NewTerminal(*mqttConf(b, ""), id, mqtt.TerminalHandler{OnConnect: hello, OnBridgeOnline: hello,
		OnMessage: func(p []byte) {
			if m, err := protocol.Decode(p); err == nil {
				r.in <- m
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.term.Open(context.Background())
	t.Cleanup(func() { r.term.Close(context.Background()) })
	return r
}

func (r *mqttResultTerminal) send(t *testing.T, tx string) protocol.Message {
	t.Helper()
	m := r.ids.New(protocol.KindResult, r.id)
	m.Result = &protocol.Result{TransactionID: tx, Outcome: pos.OutcomeApproved, Reference: "AUTH-" + tx}
	p, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.term.Publish(ctxT(t, 10*time.Second), p); err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *mqttResultTerminal) expectAck(t *testing.T, id string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-r.in:
			if m.Kind == protocol.KindAck && m.Ref == id {
				return
			}
		case <-timeout:
			t.Fatalf("no ack for %s from the bridge", id)
		}
	}
}

// TestSlowResultHoldsNoOtherTerminalMQTT is the same over the broker,
// where every terminal shares the bridge's one connection.
func TestSlowResultHoldsNoOtherTerminalMQTT(t *testing.T) {
	forEachBroker(t, testbroker.Options{}, func(t *testing.T, b testbroker.Broker) {
		rec := newRecorder()
		g := newGate(rec, isResult("T-1", "tx-slow"))
		cfg := terminal.Config{MQTT: mqttConf(b, "bridge-"+strings.ReplaceAll(t.Name(), "/", "-")), OnEvent: g.onEvent,
			ResendInterval: 300 * time.Millisecond,
			Terminals:      []terminal.TerminalConfig{{ID: "T-1", MQTT: true}, {ID: "T-2", MQTT: true}}}
		openHub(t, cfg)
		t1, t2 := newMQTTResultTerminal(t, b, "T-1"), newMQTTResultTerminal(t, b, "T-2")
		rec.wait(t, pos.TerminalConnected, "T-1")
		rec.wait(t, pos.TerminalConnected, "T-2")

		slow := t1.send(t, "tx-slow")
		g.waitEntered(t)
		fast := t2.send(t, "tx-fast")
		t2.expectAck(t, fast.ID)
		if ev := rec.wait(t, pos.TerminalResult, "T-2"); ev.TransactionID != "tx-fast" {
			t.Fatalf("T-2's result event %+v", ev)
		}
		close(g.release)
		t1.expectAck(t, slow.ID)
		if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != "tx-slow" {
			t.Fatalf("T-1's result event %+v", ev)
		}
	})
}

// TestTerminalEventsStayInOrder: while OnEvent holds T-1's first result,
// T-1 sends more results and status messages and T-2 keeps paying. T-2's
// events are not held up, and T-1's reach OnEvent in the order T-1 sent
// them, each result acknowledged only once OnEvent took it.
func TestTerminalEventsStayInOrder(t *testing.T) {
	rec := newRecorder()
	g := newGate(rec, isResult("T-1", "tx-1-0"))
	_, terms := serialTerminals(t, g.onEvent, "T-1", "T-2")
	t1, t2 := terms["T-1"], terms["T-2"]

	const n = 20
	var want []string // T-1's events, as kind/transaction
	var acks []string
	for i := 0; i < n; i++ {
		tx := fmt.Sprintf("tx-1-%d", i)
		st := t1.ids.New(protocol.KindStatus, "T-1")
		st.Status = &protocol.Status{State: protocol.StateBusy, TransactionID: tx}
		t1.send(t, st)
		res := t1.result("T-1", tx)
		t1.send(t, res)
		want = append(want, "status/"+tx, "result/"+tx)
		acks = append(acks, res.ID)
		if i == 0 {
			g.waitEntered(t)
		}
		if i%5 == 0 { // T-2 pays meanwhile and hears its acks
			r2 := t2.result("T-2", fmt.Sprintf("tx-2-%d", i))
			t2.send(t, r2)
			t2.expectAck(t, r2.ID)
		}
	}
	if got := rec.count(pos.TerminalResult, "tx-1-0"); got != 0 {
		t.Fatalf("T-1's held result recorded %d times", got)
	}
	close(g.release)
	for _, id := range acks {
		t1.expectAck(t, id) // the bridge acks in the order it took them
	}
	var got []string
	for len(got) < len(want) {
		select {
		case ev := <-rec.ch:
			if ev.TerminalID == "T-1" && (ev.Kind == pos.TerminalStatus || ev.Kind == pos.TerminalResult) {
				got = append(got, string(ev.Kind)+"/"+ev.TransactionID)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("T-1's events so far %v, want %v", got, want)
		}
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("T-1's events out of order at %d:\n got %v\nwant %v", i, got, want)
		}
	}
}

// TestCloseCancelsBlockedHandler: OnEvent is stuck storing T-1's result
// and only gives up when its context ends. Close ends that context and
// returns without waiting for the handler to give up by itself; the
// result stays unacknowledged (the terminal sends it to the next bridge).
func TestCloseCancelsBlockedHandler(t *testing.T) {
	rec := newRecorder()
	g := newGate(rec, isResult("T-1", "tx-stuck"))
	h, terms := serialTerminals(t, g.onEvent, "T-1", "T-2")
	stuck := terms["T-1"].result("T-1", "tx-stuck")
	terms["T-1"].send(t, stuck)
	g.waitEntered(t)

	// Generous: a Close that waited for the handler would never return
	// (the test never releases it), so any bound shows the difference.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatalf("Close while OnEvent is blocked: %v", err)
	}
	g.mu.Lock()
	errs := g.ctxErr
	g.mu.Unlock()
	if len(errs) != 1 || errs[0] != context.Canceled {
		t.Fatalf("held OnEvent saw ctx errors %v, want one context.Canceled", errs)
	}
	for {
		select {
		case m := <-terms["T-1"].in:
			if m.Kind == protocol.KindAck && m.Ref == stuck.ID {
				t.Fatal("a result OnEvent never took was acknowledged")
			}
			continue
		default:
		}
		break
	}
	if n := rec.count(pos.TerminalResult, ""); n != 0 {
		t.Fatalf("%d results recorded", n)
	}
}

// TestFullEventQueueLeavesResultUnacked: OnEvent is stuck on T-1's
// result while T-1 floods the bridge with status messages. T-1's queue
// stops growing at its bound: the status messages beyond it are dropped
// and counted, and a result beyond it is not acknowledged, so T-1 sends
// it again and it is taken then. T-2 is not affected.
func TestFullEventQueueLeavesResultUnacked(t *testing.T) {
	rec := newRecorder()
	g := newGate(rec, isResult("T-1", "tx-held"))
	h, terms := serialTerminals(t, g.onEvent, "T-1", "T-2")
	t1, t2 := terms["T-1"], terms["T-2"]
	held := t1.result("T-1", "tx-held")
	t1.send(t, held)
	g.waitEntered(t)

	status := func(i int) {
		st := t1.ids.New(protocol.KindStatus, "T-1")
		st.Status = &protocol.Status{State: protocol.StateBusy, TransactionID: fmt.Sprintf("st-%d", i)}
		t1.send(t, st)
	}
	for i := 0; i < terminal.MaxQueuedEvents+1; i++ {
		status(i) // the last one finds the queue full
	}
	over := t1.result("T-1", "tx-over")
	t1.send(t, over) // so does this result
	for deadline := time.Now().Add(30 * time.Second); ; {
		st, _ := h.Terminal("T-1")
		if st.DroppedEvents == 2 {
			break
		}
		if st.DroppedEvents > 2 || time.Now().After(deadline) {
			t.Fatalf("dropped events = %d, want 2 (one status, one result)", st.DroppedEvents)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r2 := t2.result("T-2", "tx-other")
	t2.send(t, r2)
	t2.expectAck(t, r2.ID)

	close(g.release)
	t1.expectAck(t, held.ID)
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != "tx-held" {
		t.Fatalf("result event %+v, want the held one", ev)
	}
	for i := 0; i < terminal.MaxQueuedEvents; i++ {
		ev := rec.wait(t, pos.TerminalStatus, "T-1")
		if want := fmt.Sprintf("st-%d", i); ev.TransactionID != want {
			t.Fatalf("status event %d is %s, want %s", i, ev.TransactionID, want)
		}
	}
	// The queue has drained: the result that found it full never reached
	// OnEvent, and T-1 heard no ack for it.
	if n := rec.count(pos.TerminalResult, "tx-over"); n != 0 {
		t.Fatalf("the result that found the queue full was delivered %d times", n)
	}
	for len(t1.in) > 0 {
		if m := <-t1.in; m.Kind == protocol.KindAck && m.Ref == over.ID {
			t.Fatal("the result that found the queue full was acknowledged")
		}
	}
	t1.send(t, over) // T-1 resends it
	t1.expectAck(t, over.ID)
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != "tx-over" {
		t.Fatalf("result event %+v", ev)
	}
}
