package termsim_test

import (
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// TestSimNeverRefusesAnswers: the simulator plugged into the port of
// another terminal gets the bridge's refusals (wrong_terminal) and its
// acks and pongs naming that terminal. It must not refuse them in turn:
// two sides refusing each other's refusals send errors back and forth
// at line speed for ever.
func TestSimNeverRefusesAnswers(t *testing.T) {
	ttyPath := startSim(t, termsim.Config{TerminalID: "T-2"})
	in, send, ids := handBridge(t, ttyPath, 64)
	next := func() protocol.Message {
		t.Helper()
		select {
		case m := <-in:
			return m
		case <-time.After(15 * time.Second):
			t.Fatal("the simulator said nothing")
		}
		return protocol.Message{}
	}

	for _, k := range []protocol.Kind{protocol.KindError, protocol.KindAck, protocol.KindPong} {
		answer := ids.New(k, "T-1") // the terminal this port was meant for
		answer.Ref = "t0123abcd-1"
		if k == protocol.KindError {
			answer.Error = &protocol.Error{Code: protocol.ErrCodeWrongTerminal, Message: "this link serves terminal T-1"}
		}
		send(answer)
		// The simulator handles messages in order: anything it says
		// about the answer comes before the pong.
		send(ids.New(protocol.KindPing, "T-2"))
		for got := next(); got.Kind != protocol.KindPong; got = next() {
			if got.Kind == protocol.KindError {
				t.Fatalf("the simulator refused the bridge's %s: %+v", k, got.Error)
			}
		}
	}
}
