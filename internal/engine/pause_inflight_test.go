package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// TestPauseHoldsSubmissionUnderWay: a submission makes its Hesabe calls
// one after another. When a 429 (here to another checkout's status poll,
// Retry-After: 1) arrives between two of them, the next one must wait
// for the pause like every call started after it: the create after the
// look-up before a resend, and the look-up after a create whose answer
// was lost. The dispatcher's check before it starts a submission is not
// enough.
func TestPauseHoldsSubmissionUnderWay(t *testing.T) {
	for _, tc := range []struct {
		name string
		// hold is the call of X's submission held (in the client, after
		// Hesabe answered) until the 429 is in: "find pos invoice" or
		// "create pos invoice".
		hold string
		// prepare readies X (queued on termA) before the engine opens.
		prepare func(t *testing.T, h *harness, x pos.Checkout)
		// next is when X's next call after the held one reached Hesabe.
		next func(t *testing.T, h *harness, x pos.Checkout, created func() time.Time) time.Time
	}{
		{"look-up then create", "find pos invoice",
			func(t *testing.T, h *harness, x pos.Checkout) {
				// An earlier attempt whose outcome was not learnt, and
				// which had not reached Hesabe: looked up, then created.
				ctx := context.Background()
				if _, err := h.store.Transition(ctx, x.ID, pos.StateSubmitting, "submitting", nil); err != nil {
					t.Fatal(err)
				}
				if _, err := h.store.Transition(ctx, x.ID, pos.StateQueued, "outcome unknown", nil); err != nil {
					t.Fatal(err)
				}
			},
			func(t *testing.T, h *harness, x pos.Checkout, created func() time.Time) time.Time {
				return created()
			}},
		{"create then look-up", "create pos invoice",
			func(t *testing.T, h *harness, x pos.Checkout) {
				// The create is applied and its answer lost: looked up.
				h.sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Path: "smartpos-transaction", Count: 1})
			},
			func(t *testing.T, h *harness, x pos.Checkout, _ func() time.Time) time.Time {
				// The look-up answered before the adoption was recorded.
				for _, tr := range x.History {
					if tr.To == pos.StateSent {
						return tr.At
					}
				}
				t.Fatalf("X has no transition to sent: %+v", x.History)
				return time.Time{}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := fastOptions()
			paused := pauseLog{pauses: make(chan time.Duration, 16)}
			opts.Logger = slog.New(paused)
			h := newHarness(t, opts, false)
			// Y, sent on termB, is polled every 30 ms: its poll gets the 429.
			y := h.create(checkoutReq(termB, "y", 2000))
			yinv := h.leftSent(y)
			x := h.create(checkoutReq(termA, "x", 1000))
			tc.prepare(t, h, x)
			var mu sync.Mutex
			var xCreated time.Time
			number := x.InvoiceNumber
			h.terminal(func(inv hesabe.POSInvoice) {
				if inv.InvoiceNumber == number {
					mu.Lock()
					xCreated = time.Now()
					mu.Unlock()
				}
			})
			held := make(chan struct{}, 8)
			release := make(chan struct{})
			limited := make(chan time.Time, 1)
			h.calls(func(op string, err error) {
				var herr *hesabe.Error
				if errors.As(err, &herr) && herr.HTTPStatus == http.StatusTooManyRequests {
					select {
					case limited <- time.Now():
					default:
					}
				}
				if op == tc.hold {
					select {
					case <-release:
					default:
						held <- struct{}{}
						<-release
					}
				}
			})
			releaseOnce := sync.OnceFunc(func() { close(release) })
			defer releaseOnce()
			h.open()
			// X's call is held (for a look-up, the start-up probe's may be
			// held too: wait for both).
			n := 1
			if tc.hold == "find pos invoice" {
				n = 2
			}
			for range n {
				select {
				case <-held:
				case <-time.After(20 * time.Second):
					t.Fatalf("X's %s was not made", tc.hold)
				}
			}
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: fmt.Sprintf("smartpos-invoices/%d", yinv.ID), Count: 1})
			var at429 time.Time
			select {
			case at429 = <-limited:
			case <-time.After(20 * time.Second):
				t.Fatal("no 429")
			}
			// The client has the 429; the engine pauses when it sees it.
			select {
			case <-paused.pauses:
			case <-time.After(20 * time.Second):
				t.Fatal("the engine did not pause")
			}
			releaseOnce()
			x = h.waitFor(x.ID, pos.StateSent)
			next := tc.next(t, h, x, func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				return xCreated
			})
			if gap := next.Sub(at429); gap < time.Second {
				t.Fatalf("X's call after its %s reached Hesabe %s after a 429 with Retry-After: 1", tc.hold, gap.Round(time.Millisecond))
			}
			h.wantOneInvoice(x)
		})
	}
}
