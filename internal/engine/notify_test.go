package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

func change(id string, st pos.State, transitions int, at time.Time) pos.Checkout {
	c := pos.Checkout{ID: id, State: st, UpdatedAt: at}
	for i := range transitions {
		c.History = append(c.History, pos.Transition{At: at, To: pos.StateQueued, Reason: fmt.Sprint(i)})
	}
	return c
}

// TestPublishDropsStaleChanges: a change that reaches publish after a
// later one of the same checkout (a cancel request committed before the
// terminal's paid result, published after it) is not delivered, so a
// subscriber's last event is the checkout's latest state. Other
// checkouts and equal revisions are unaffected.
func TestPublishDropsStaleChanges(t *testing.T) {
	var n notifier
	n.init()
	s := &subscriber{ch: make(chan pos.Checkout, 16)}
	n.subs[s] = struct{}{}
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

	n.publish(change("a", pos.StateSent, 3, t0))
	n.publish(change("a", pos.StatePaid, 4, t0.Add(2*time.Millisecond)))
	n.publish(change("a", pos.StateSent, 3, t0.Add(time.Millisecond))) // cancel requested, published late
	n.publish(change("b", pos.StateSent, 3, t0))                       // another checkout
	n.publish(change("b", pos.StateSent, 3, t0))                       // the same revision again
	n.publish(change("b", pos.StateSent, 3, t0.Add(-time.Millisecond)))

	var got []string
	for len(s.ch) > 0 {
		c := <-s.ch
		got = append(got, c.ID+":"+string(c.State))
	}
	want := []string{"a:sent", "a:paid", "b:sent", "b:sent"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	if n.stale.Load() != 2 {
		t.Fatalf("stale = %d, want 2", n.stale.Load())
	}
}

// TestPublishMemoryBounded: the notifier remembers the last change of at
// most recentChanges checkouts.
func TestPublishMemoryBounded(t *testing.T) {
	var n notifier
	n.init()
	n.subs[&subscriber{ch: make(chan pos.Checkout)}] = struct{}{} // full: every change is dropped there
	t0 := time.Now()
	for i := range 3 * recentChanges {
		n.publish(change(fmt.Sprint("co_", i), pos.StateQueued, 1, t0))
	}
	if len(n.last) != recentChanges || len(n.order) != recentChanges {
		t.Fatalf("remembers %d (ring %d), want %d", len(n.last), len(n.order), recentChanges)
	}
	// The most recent are remembered: a stale change of one is dropped.
	id := fmt.Sprint("co_", 3*recentChanges-1)
	n.publish(change(id, pos.StateQueued, 0, t0))
	if n.stale.Load() != 1 {
		t.Fatalf("stale change of a recent checkout delivered")
	}
}
