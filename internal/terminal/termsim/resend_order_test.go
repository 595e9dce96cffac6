package termsim_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestSimResendsInOrderMade: a bridge that does not acknowledge results
// gets them again, in the order the payments ended, as the hub resends
// its own messages (the protocol's rule for both sides). The simulator
// walked a map and resent them in random order.
func TestSimResendsInOrderMade(t *testing.T) {
	master, ttyPath := testutil.PtyPair(t)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// No resends on a timer during the test: only those after identify.
		done <- termsim.Run(ctx, termsim.Config{TerminalID: "T-1", Port: master, Mode: termsim.Approve,
			ResendInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}()
	t.Cleanup(func() { cancel(); <-done })

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
