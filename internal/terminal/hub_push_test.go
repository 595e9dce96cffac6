package terminal_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/terminal"
)

// TestPushInvoiceConcurrentSameTransaction: callers pushing the same
// transaction at the same time while the terminal is away share one
// message (the terminal would otherwise get the invoice twice, under two
// message ids), and CancelInvoice withdraws it: nothing of the invoice is
// left to deliver once the terminal is back, only the cancel.
func TestPushInvoiceConcurrentSameTransaction(t *testing.T) {
	rec := newRecorder()
	h := serialHub(t, filepath.Join(t.TempDir(), "not-plugged-in"), rec, nil)
	gone, cancel := context.WithCancel(context.Background())
	cancel() // each push returns at once, leaving its invoice in the outbox
	for i := 0; i < 50; i++ {
		tx := newTx()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := h.PushInvoice(gone, "T-1", invoice(tx)); !errors.Is(err, terminal.ErrNotAcknowledged) {
					t.Errorf("push: %v, want ErrNotAcknowledged", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		// i cancels from earlier rounds wait in the outbox too.
		if st, _ := h.Terminal("T-1"); st.Pending != i+1 {
			t.Fatalf("round %d: %d messages waiting for the terminal, want %d (earlier cancels and one invoice)", i, st.Pending, i+1)
		}
		if err := h.CancelInvoice(gone, "T-1", tx); !errors.Is(err, terminal.ErrNotAcknowledged) {
			t.Fatalf("cancel: %v", err)
		}
		if st, _ := h.Terminal("T-1"); st.Pending != i+1 {
			t.Fatalf("round %d: %d messages waiting after the cancel, want %d (cancels only)", i, st.Pending, i+1)
		}
	}
}
