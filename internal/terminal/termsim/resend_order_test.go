package termsim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// TestSimResendsInOrderMade: a bridge that does not acknowledge results
// gets them again, in the order the payments ended, as the hub resends
// its own messages (the protocol's rule for both sides). The simulator
// walked a map and resent them in random order.
func TestSimResendsInOrderMade(t *testing.T) {
	// No resends on a timer during the test: only those after identify.
	ttyPath := startSim(t, termsim.Config{TerminalID: "T-1", Mode: termsim.Approve, ResendInterval: time.Hour})
	in, send, ids := handBridge(t, ttyPath, 256)
	// result returns the transaction of the next result the simulator
	// sends, skipping everything else.
	result := func() string {
		t.Helper()
		for {
			select {
			case m := <-in:
				if m.Kind == protocol.KindResult {
					return m.Result.TransactionID
				}
			case <-time.After(15 * time.Second):
				t.Fatal("no result from the simulator")
			}
		}
	}

	// Ten payments, one after the other; their results stay unacknowledged.
	const n = 10
	var want []string
	for i := range n {
		tx := fmt.Sprintf("tx-%02d", i)
		inv := ids.New(protocol.KindInvoice, "T-1")
		inv.Invoice = &protocol.Invoice{TransactionID: tx, Amount: 1000}
		send(inv)
		if got := result(); got != tx {
			t.Fatalf("result for %s, want %s", got, tx)
		}
		want = append(want, tx)
	}
	// identify: the simulator says hello and resends what is waiting.
	for round := range 3 {
		send(ids.New(protocol.KindIdentify, "T-1"))
		var got []string
		for range n {
			got = append(got, result())
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: results resent in the order %v, made in the order %v", round, got, want)
		}
	}
}
