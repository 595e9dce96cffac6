package terminal_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/serial"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// rawSerialTerminal is a hand-driven terminal on the master side of a pty.
type rawSerialTerminal struct {
	conn *serial.Conn
	in   chan protocol.Message
	ids  *protocol.IDGen
}

func newRawSerialTerminal(t *testing.T, m *os.File) *rawSerialTerminal {
	r := &rawSerialTerminal{in: make(chan protocol.Message, 64), ids: protocol.NewIDGen("t")}
	r.conn = serial.NewConn(m, serial.ConnConfig{OnData: func(p []byte) {
		if msg, err := protocol.Decode(p); err == nil {
			r.in <- msg
		}
	}})
	t.Cleanup(func() { r.conn.Close() })
	return r
}

func (r *rawSerialTerminal) send(t *testing.T, m protocol.Message) {
	t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.conn.Send(ctxT(t, 10*time.Second), b); err != nil {
		t.Fatal(err)
	}
}

// expect returns the next message of kind (others skipped), or the next
// message of any kind for "".
func (r *rawSerialTerminal) expect(t *testing.T, kind protocol.Kind) protocol.Message {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-r.in:
			if m.Kind == kind || kind == "" {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s from the bridge", kind)
		}
	}
}

// greet answers the bridge's identify with a hello as terminal id and
// waits for its ack.
func (r *rawSerialTerminal) greet(t *testing.T, id string) {
	t.Helper()
	r.expect(t, protocol.KindIdentify)
	hello := r.ids.New(protocol.KindHello, id)
	hello.Hello = &protocol.Hello{Model: "raw"}
	r.send(t, hello)
	if a := r.expect(t, protocol.KindAck); a.Ref != hello.ID {
		t.Fatalf("ack ref %s, want the hello's %s", a.Ref, hello.ID)
	}
}

// TestHubResendActedOnOnce: the terminal never hears the bridge's ack for
// its result and sends it again (a new frame, same message id). The bridge
// acks again and delivers the result once.
func TestHubResendActedOnOnce(t *testing.T) {
	m, tty := ptyPair(t)
	rec := newRecorder()
	serialHub(t, tty, rec, nil)
	term := newRawSerialTerminal(t, m)
	term.greet(t, "T-1")
	rec.wait(t, pos.TerminalConnected, "T-1")

	res := term.ids.New(protocol.KindResult, "T-1")
	res.Result = &protocol.Result{TransactionID: "tx-dup", Outcome: pos.OutcomeApproved, Reference: "AUTH1"}
	for i := 0; i < 3; i++ {
		term.send(t, res)
		if a := term.expect(t, protocol.KindAck); a.Ref != res.ID {
			t.Fatalf("ack %d ref %s", i, a.Ref)
		}
	}
	rec.wait(t, pos.TerminalResult, "T-1")
	time.Sleep(200 * time.Millisecond)
	if n := rec.count(pos.TerminalResult, "tx-dup"); n != 1 {
		t.Fatalf("result delivered %d times", n)
	}

	// Garbage that is a valid frame but not a message: refused, counted.
	if err := term.conn.Send(ctxT(t, 5*time.Second), []byte(`{"v":1,"kind":"result","id":"x1","terminal_id":"T-1"}`)); err != nil {
		t.Fatal(err)
	}
	if e := term.expect(t, protocol.KindError); e.Ref != "x1" || e.Error.Code != protocol.ErrCodeBadMessage {
		t.Fatalf("refusal %+v", e)
	}
	// A message for another terminal on this cable.
	wrong := term.ids.New(protocol.KindStatus, "T-2")
	wrong.Status = &protocol.Status{State: protocol.StateIdle}
	term.send(t, wrong)
	if e := term.expect(t, protocol.KindError); e.Error.Code != protocol.ErrCodeWrongTerminal {
		t.Fatalf("refusal %+v", e)
	}
}

// TestHubCloseStopsGoroutines: Close is bounded and leaves nothing running.
func TestHubCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	m, tty := ptyPair(t)
	rec := newRecorder()
	h, err := terminal.New(terminal.Config{
		Terminals: []terminal.TerminalConfig{{ID: "T-1", Serial: &serial.PortSpec{Path: tty}},
			{ID: "T-2", Serial: &serial.PortSpec{Path: "/dev/does-not-exist"}}},
		OnEvent: rec.onEvent, Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop := runSim(t, termsim.Config{TerminalID: "T-1", Port: m})
	rec.wait(t, pos.TerminalConnected, "T-1")
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.PushInvoice(ctx, "T-1", invoice("x")); err == nil {
		t.Fatal("push after close succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left (was %d):\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// socatPair starts socat with two linked ptys, like a null-modem cable
// between two serial ports: A for the bridge, B for the simulator. The
// returned stop kills socat (the cable is pulled); start brings it back.
func socatPair(t *testing.T) (a, b string, start, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("socat")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("socat is not installed; CI must install it (apt-get install socat)")
		}
		t.Skip("socat is not installed (apt-get install socat); skipping")
	}
	dir := t.TempDir()
	a, b = filepath.Join(dir, "bridge"), filepath.Join(dir, "terminal")
	var cmd *exec.Cmd
	var done chan struct{}
	start = func() {
		cmd = exec.Command(bin, "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		done = make(chan struct{})
		go func() {
			buf := make([]byte, 4096)
			var all strings.Builder
			signaled := false
			for {
				n, err := stderr.Read(buf)
				all.Write(buf[:n])
				if !signaled && strings.Contains(all.String(), "starting data transfer loop") {
					close(ready)
					signaled = true
				}
				if err != nil {
					break
				}
			}
			cmd.Wait()
			close(done)
		}()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("socat did not start")
		}
	}
	stop = func() {
		if cmd == nil {
			return
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd = nil
		os.Remove(a)
		os.Remove(b)
	}
	start()
	t.Cleanup(stop)
	return a, b, start, stop
}

// TestSimOverSocatCable: the simulator opens its serial port by path (as
// `posbridge sim terminal --serial` does), the cable is pulled mid-session
// and plugged back; both ends reopen and a payment goes through.
func TestSimOverSocatCable(t *testing.T) {
	a, b, start, stop := socatPair(t)
	rec := newRecorder()
	h := serialHub(t, a, rec, nil)
	runSim(t, termsim.Config{TerminalID: "T-1", SerialPath: b, Mode: termsim.Approve, Delay: 100 * time.Millisecond})
	rec.wait(t, pos.TerminalConnected, "T-1")
	tx := newTx()
	if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx)); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, pos.TerminalResult, "T-1")

	stop()
	rec.wait(t, pos.TerminalDisconnected, "T-1")
	start()
	rec.wait(t, pos.TerminalConnected, "T-1")
	tx2 := newTx()
	if err := h.PushInvoice(ctxT(t, 20*time.Second), "T-1", invoice(tx2)); err != nil {
		t.Fatal(err)
	}
	if ev := rec.wait(t, pos.TerminalResult, "T-1"); ev.TransactionID != tx2 {
		t.Fatalf("%+v", ev)
	}
}

// TestHubNeverRefusesAnswers: a terminal in the wrong port (it names
// another terminal) refuses what the bridge sends it with an error. The
// bridge must not refuse that error in turn: two sides refusing each
// other's refusals send errors back and forth at line speed for ever.
func TestHubNeverRefusesAnswers(t *testing.T) {
	m, tty := ptyPair(t)
	rec := newRecorder()
	serialHub(t, tty, rec, nil)
	term := newRawSerialTerminal(t, m)
	term.greet(t, "T-1")

	for _, k := range []protocol.Kind{protocol.KindError, protocol.KindAck, protocol.KindPong} {
		answer := term.ids.New(k, "T-2") // names another terminal
		answer.Ref = "b0123abcd-1"
		if k == protocol.KindError {
			answer.Error = &protocol.Error{Code: protocol.ErrCodeWrongTerminal, Message: "this is terminal T-2"}
		}
		term.send(t, answer)
		// The hub handles a link's messages in order and sends its
		// replies in order: anything it says about the answer comes
		// before the pong.
		ping := term.ids.New(protocol.KindPing, "T-1")
		term.send(t, ping)
		for got := term.expect(t, ""); got.Kind != protocol.KindPong; got = term.expect(t, "") {
			if got.Kind == protocol.KindError {
				t.Fatalf("the hub refused a terminal's %s: %+v", k, got.Error)
			}
		}
	}
}
