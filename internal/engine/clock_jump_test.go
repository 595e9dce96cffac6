package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
)

// jumpClock is a store PC's wall clock that can be set while posbridge
// runs (NTP correcting a dead CMOS battery, a cashier setting it by
// hand): the real time plus an offset that jump changes. Its times carry
// no monotonic reading, like a wall clock read across a jump.
type jumpClock struct{ off atomic.Int64 }

func (c *jumpClock) now() time.Time {
	return time.Now().Round(0).Add(time.Duration(c.off.Load()))
}

func (c *jumpClock) jump(d time.Duration) { c.off.Add(int64(d)) }

const year = 365 * 24 * time.Hour

// newClockHarness is newHarness (not opened) whose engine and store both
// read clk, with a fakeLink as the terminal link when link is not nil.
func newClockHarness(t *testing.T, opts engine.Options, clk *jumpClock, link *fakeLink) *harness {
	t.Helper()
	opts.Now = clk.now
	if link != nil {
		opts.Terminal = link
	}
	h := newHarness(t, opts, false)
	// The same database, reopened with the jumping clock: the queue
	// stamps created, updated and finished times with it.
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	var err error
	h.store, err = queue.Open(h.dbPath, queue.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.store.Close() })
	h.eng = engine.New(h.store, h.client, opts)
	if link != nil {
		link.eng = func() *engine.Engine { return h.eng }
	}
	return h
}

func ackOnPush(c pos.Checkout) []pos.TerminalEvent {
	return []pos.TerminalEvent{{Kind: pos.TerminalAck, TerminalID: c.TerminalID, TransactionID: c.TransactionID}}
}

var backJumps = []time.Duration{-time.Hour, -year}

func jumpName(d time.Duration) string {
	if d == -year || d == year {
		return fmt.Sprintf("%+dy", d/year)
	}
	return fmt.Sprintf("%+v", d)
}

// TestClockBackJumpNeverDeliversLate: a clock set back while a checkout
// waits makes its stored (wall-clock) deadline later in real time by the
// jump. The deadline is still kept in real time: one stored while the
// gateway is unreachable expires when its time is up (it is never sent
// and pushed after the link returns), and one already on its terminal is
// taken off it (the cancel is asked) when its time is up.
func TestClockBackJumpNeverDeliversLate(t *testing.T) {
	for _, jump := range backJumps {
		t.Run(jumpName(jump)+"/queued while offline", func(t *testing.T) {
			clk := &jumpClock{}
			link := &fakeLink{onPush: ackOnPush}
			h := newClockHarness(t, fastOptions(), clk, link)
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 503}) // every path
			h.open()
			eventually(t, "offline", func() bool { return !h.eng.Online() })
			req := checkoutReq(termA, "late", 1000)
			req.Deadline = 300 * time.Millisecond
			c := h.create(req)
			clk.jump(jump)
			c = h.waitFor(c.ID, pos.StateExpired)
			h.sim.ClearFaults()
			if n := h.invoices(c); n != 0 || link.pushCount() != 0 {
				t.Fatalf("expired checkout: %d invoices, %d pushes", n, link.pushCount())
			}
		})
		t.Run(jumpName(jump)+"/on terminal", func(t *testing.T) {
			clk := &jumpClock{}
			link := &fakeLink{onPush: ackOnPush}
			h := newClockHarness(t, fastOptions(), clk, link)
			h.open()
			req := checkoutReq(termA, "shown", 1000)
			req.Deadline = 500 * time.Millisecond
			c := h.create(req)
			h.waitFor(c.ID, pos.StateOnTerminal)
			clk.jump(jump)
			h.waitUntil(c.ID, "asked to cancel at its deadline", func(c pos.Checkout) bool { return c.CancelRequested })
			eventually(t, "the terminal asked to cancel", func() bool { return link.cancelCount() > 0 })
		})
	}
}

// TestClockBackJumpRetryNotStuck: a retry after a gateway error is due
// after its back-off in real time, not an hour (or a year) later because
// the clock was set back while it waited.
func TestClockBackJumpRetryNotStuck(t *testing.T) {
	for _, jump := range backJumps {
		t.Run(jumpName(jump), func(t *testing.T) {
			clk := &jumpClock{}
			opts := fastOptions()
			opts.BackoffInitial = time.Second // the jump comes well within it
			h := newClockHarness(t, opts, clk, nil)
			h.payAll(hesabe.InvoicePaid, 0)
			h.open()
			h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 500, Path: "smartpos-transaction", Count: 1})
			c := h.create(checkoutReq(termA, "retry", 1000))
			h.waitUntil(c.ID, "backing off", func(c pos.Checkout) bool { return c.State == pos.StateQueued && c.Attempts == 1 })
			clk.jump(jump)
			c = h.waitFor(c.ID, pos.StatePaid)
			h.wantOneInvoice(c)
		})
	}
}

// TestClockBackJumpDuringRateLimitPause: a 429's pause (the simulator's
// Retry-After is 1 s) lasts 1 s of real time although the clock was set
// back during it; until then every call to Hesabe would wait.
func TestClockBackJumpDuringRateLimitPause(t *testing.T) {
	clk := &jumpClock{}
	h := newClockHarness(t, fastOptions(), clk, nil)
	h.payAll(hesabe.InvoicePaid, 0)
	paused := make(chan struct{}, 1)
	h.calls(func(op string, err error) {
		if _, limited := rateLimitedErr(err); limited {
			select {
			case paused <- struct{}{}:
			default:
			}
		}
	})
	h.open()
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault429, Path: "smartpos-transaction", Count: 1})
	c := h.create(checkoutReq(termA, "paused", 1000))
	<-paused
	clk.jump(-time.Hour)
	c = h.waitFor(c.ID, pos.StatePaid)
	h.wantOneInvoice(c)
	if st := h.eng.Status(); !st.PausedUntil.IsZero() {
		t.Fatalf("still paused until %v after the pause", st.PausedUntil)
	}
}

func rateLimitedErr(err error) (time.Duration, bool) {
	var herr *hesabe.Error
	if errors.As(err, &herr) && herr.HTTPStatus == 429 {
		return herr.RetryAfter, true
	}
	return 0, false
}

// TestClockBackJumpDrainRate: the pacing of submissions (DrainRate) is
// measured in real time: a clock set back does not hold the next
// submission for the length of the jump.
func TestClockBackJumpDrainRate(t *testing.T) {
	clk := &jumpClock{}
	opts := fastOptions()
	opts.DrainRate = 20
	h := newClockHarness(t, opts, clk, nil)
	h.payAll(hesabe.InvoicePaid, 0)
	h.open()
	a := h.create(checkoutReq(termA, "a", 1000))
	h.waitFor(a.ID, pos.StatePaid)
	clk.jump(-time.Hour)
	b := h.create(checkoutReq(termB, "b", 1000))
	h.waitFor(b.ID, pos.StatePaid)
}

// TestClockBackJumpCancelGrace: a cancel the terminal does not confirm
// ends expired after CancelGrace of real time, also when the clock was
// set back after the cancel was asked.
func TestClockBackJumpCancelGrace(t *testing.T) {
	clk := &jumpClock{}
	opts := fastOptions()
	opts.CancelGrace = 300 * time.Millisecond
	link := &fakeLink{onPush: ackOnPush} // never confirms a cancel
	h := newClockHarness(t, opts, clk, link)
	h.open()
	c := h.create(checkoutReq(termA, "grace", 1000))
	h.waitFor(c.ID, pos.StateOnTerminal)
	if _, err := h.eng.Cancel(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	clk.jump(-time.Hour)
	c = h.waitFor(c.ID, pos.StateExpired)
	if !hasReason(c, pos.StateExpired, "did not confirm the cancel") {
		t.Fatalf("expired for another reason: %+v", c.History)
	}
}

// TestClockForwardJumpKeepsDeadlines: a clock set forward (NTP correcting
// a PC that booted hours behind) does not expire the checkouts waiting
// with time left, nor take an invoice off a terminal while the customer
// may be paying: deadlines are kept in real time. One whose time is up
// in real time still expires (which shows the deadline loop ran after
// the jump).
func TestClockForwardJumpKeepsDeadlines(t *testing.T) {
	for _, jump := range []time.Duration{time.Hour, year} {
		t.Run(jumpName(jump), func(t *testing.T) {
			clk := &jumpClock{}
			link := &fakeLink{onPush: ackOnPush}
			h := newClockHarness(t, fastOptions(), clk, link)
			h.open()
			shown := h.create(checkoutReq(termA, "shown", 1000))
			h.waitFor(shown.ID, pos.StateOnTerminal)
			busy := h.create(checkoutReq(termB, "busy", 1000))
			busy = h.waitFor(busy.ID, pos.StateOnTerminal)
			short := checkoutReq(termB, "short", 1000)
			short.Deadline = 300 * time.Millisecond
			behind := h.create(short)
			waiting := h.create(checkoutReq(termB, "waiting", 1000))
			clk.jump(jump)
			h.waitFor(behind.ID, pos.StateExpired) // its 300 ms are up
			for _, id := range []string{shown.ID, busy.ID, waiting.ID} {
				c, err := h.eng.Get(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if c.State.Final() || c.CancelRequested {
					t.Errorf("checkout %s with minutes left: %s cancel_requested=%v %+v", id, c.State, c.CancelRequested, c.History)
				}
			}
			if n := link.cancelCount(); n != 0 {
				t.Errorf("%d cancels asked of the terminals", n)
			}
			// termB's customer pays: the checkout waiting behind, with
			// minutes left, is shown next.
			if err := h.sim.SetInvoiceStatus(busy.InvoiceID, hesabe.InvoicePaid); err != nil {
				t.Fatal(err)
			}
			if c := h.waitFor(waiting.ID, pos.StateOnTerminal, pos.StateExpired); c.State != pos.StateOnTerminal {
				t.Errorf("checkout with minutes left: %s %+v", c.State, c.History)
			}
		})
	}
}

// TestClockForwardJumpKeepsFinished: a clock set a year forward does not
// make the checkouts that finished a moment ago look a year old: they
// (and their idempotency keys, which stop a till's retry from charging
// again) stay for the store's retention.
func TestClockForwardJumpKeepsFinished(t *testing.T) {
	old := engine.SetPruneEvery(20 * time.Millisecond)
	t.Cleanup(func() { engine.SetPruneEvery(old) }) // after the engine closes
	clk := &jumpClock{}
	h := newClockHarness(t, fastOptions(), clk, nil)
	h.payAll(hesabe.InvoicePaid, 0)
	h.open()
	c := h.create(checkoutReq(termA, "paid", 1000))
	h.waitFor(c.ID, pos.StatePaid)
	clk.jump(year)
	// A checkout finished after the jump; the prune loop runs every
	// 20 ms, so by the time this one is paid it has run after the jump.
	d := h.create(checkoutReq(termA, "after", 1000))
	h.waitFor(d.ID, pos.StatePaid)
	done := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { close(done) }) // a few more prune rounds
	<-done
	for _, id := range []string{c.ID, d.ID} {
		if _, err := h.store.Get(context.Background(), id); err != nil {
			t.Errorf("checkout %s finished a moment ago: %v", id, err)
		}
	}
	again, existing, err := h.eng.Create(context.Background(), checkoutReq(termA, "paid", 1000))
	if err != nil || !existing || again.ID != c.ID {
		t.Fatalf("retry of a finished checkout's key: existing=%v id=%s (want %s) err=%v", existing, again.ID, c.ID, err)
	}
}

// TestClockBackJumpWaitReturnsChange: a till waiting for a checkout's
// next change (Wait with the updated_at it saw) hears of it at once,
// although the clock was set back and the change carries an earlier
// updated_at; it does not sit out its whole wait.
func TestClockBackJumpWaitReturnsChange(t *testing.T) {
	clk := &jumpClock{}
	h := newClockHarness(t, fastOptions(), clk, nil)
	h.open()
	c := h.create(checkoutReq(termA, "wait", 1000))
	c = h.waitFor(c.ID, pos.StateSent)
	clk.jump(-time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan pos.Checkout, 1)
	go func() {
		c, _ := h.eng.Wait(ctx, c.ID, c.UpdatedAt)
		got <- c
	}()
	if err := h.sim.SetInvoiceStatus(c.InvoiceID, hesabe.InvoicePaid); err != nil {
		t.Fatal(err)
	}
	paid := <-got
	if ctx.Err() != nil {
		t.Fatalf("Wait sat out its whole wait: %s", paid.State)
	}
	if paid.State != pos.StatePaid {
		t.Fatalf("Wait returned %s, want paid", paid.State)
	}
}

// TestClockJumpReported: a jump of the system clock is logged as a
// warning with its size and shown in Status (how many, the last one's
// size and when), so a technician can see "the clock jumped by -1h at
// 10:42"; the clock's ordinary drift is not a jump.
func TestClockJumpReported(t *testing.T) {
	var logs testutil.SyncBuffer
	opts := fastOptions()
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	clk := &jumpClock{}
	h := newClockHarness(t, opts, clk, nil)
	h.open()
	if st := h.eng.Status(); st.ClockJumps != 0 {
		t.Fatalf("no jump yet: %d", st.ClockJumps)
	}
	clk.jump(-time.Hour)
	before := clk.now()
	st := h.eng.Status()
	if st.ClockJumps != 1 || (st.LastClockJump+time.Hour).Abs() > time.Second ||
		st.LastClockJumpAt.Before(before.Add(-time.Second)) || st.LastClockJumpAt.After(clk.now()) {
		t.Fatalf("after -1h: jumps %d, last %v at %v (clock %v)", st.ClockJumps, st.LastClockJump, st.LastClockJumpAt, before)
	}
	clk.jump(time.Second) // within the drift allowed
	if st := h.eng.Status(); st.ClockJumps != 1 {
		t.Fatalf("a 1 s step counted as a jump: %d", st.ClockJumps)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "system clock jumped") ||
		!strings.Contains(out, "by=-1h0m0") {
		t.Fatalf("no warning with the jump's size in the log:\n%s", out)
	}
}
