package queue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// pathTo lists the steps from queued to each state.
var pathTo = map[pos.State][]pos.State{
	pos.StateQueued:     nil,
	pos.StateSubmitting: {pos.StateSubmitting},
	pos.StateSent:       {pos.StateSubmitting, pos.StateSent},
	pos.StateOnTerminal: {pos.StateSubmitting, pos.StateSent, pos.StateOnTerminal},
	pos.StatePaid:       {pos.StateSubmitting, pos.StateSent, pos.StateOnTerminal, pos.StatePaid},
	pos.StateDeclined:   {pos.StateSubmitting, pos.StateSent, pos.StateOnTerminal, pos.StateDeclined},
	pos.StateCanceled:   {pos.StateCanceled},
	pos.StateExpired:    {pos.StateExpired},
	pos.StateFailed:     {pos.StateFailed},
}

// wantEdges is the state machine as pos/checkout.go documents it, written
// out independently of the package's table.
var wantEdges = map[pos.State][]pos.State{
	pos.StateQueued:     {pos.StateSubmitting, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	pos.StateSubmitting: {pos.StateSent, pos.StateQueued, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	pos.StateSent:       {pos.StateOnTerminal, pos.StatePaid, pos.StateDeclined, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	pos.StateOnTerminal: {pos.StatePaid, pos.StateDeclined, pos.StateCanceled, pos.StateExpired, pos.StateFailed},
	// Only for a checkout with an InvoiceID (TestLatePaid); the walk below
	// reaches expired without one, so there it is refused.
	pos.StateExpired: {pos.StatePaid},
}

// lateOnly are the edges Allowed lists that Transition takes only for a
// checkout whose invoice reached the gateway.
var lateOnly = map[[2]pos.State]bool{{pos.StateExpired, pos.StatePaid}: true}

func TestStateMachineEdges(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	n := 0
	for _, from := range pos.States {
		for _, to := range pos.States {
			if to == from {
				continue
			}
			n++
			term := fmt.Sprintf("T%d", n)
			c := mustCreate(t, s, req(term, term, 100))
			for _, st := range pathTo[from] {
				c = mustMove(t, s, c.ID, st)
			}
			allowed := slices.Contains(wantEdges[from], to)
			if got := queue.Allowed(from, to); got != allowed {
				t.Errorf("Allowed(%s, %s) = %v, want %v", from, to, got, allowed)
			}
			got, err := s.Transition(ctx, c.ID, to, "edge test", nil)
			if allowed && !lateOnly[[2]pos.State{from, to}] {
				if err != nil {
					t.Errorf("%s → %s refused: %v", from, to, err)
					continue
				}
				if got.State != to {
					t.Errorf("%s → %s: state %s", from, to, got.State)
				}
				last := got.History[len(got.History)-1]
				if last.From != from || last.To != to || last.Reason != "edge test" {
					t.Errorf("%s → %s: history ends with %+v", from, to, last)
				}
				continue
			}
			if pos.ErrorCode(err) != pos.EConflict {
				t.Errorf("%s → %s: err %v, want conflict", from, to, err)
			}
			again, _ := s.Get(ctx, c.ID)
			if again.State != from || len(again.History) != len(c.History) {
				t.Errorf("%s → %s refused but the record changed: %s, %d entries", from, to, again.State, len(again.History))
			}
		}
	}
	MustCheck(t, s)
}

func TestTransitionFinalNeverChanges(t *testing.T) {
	s, _ := MustOpen(t)
	c := mustCreate(t, s, req("T1", "k1", 100))
	mustMove(t, s, c.ID, pos.StateCanceled)
	_, err := s.Transition(context.Background(), c.ID, pos.StateCanceled, "again", func(c *pos.Checkout) error {
		c.LastError = "changed"
		return nil
	})
	wantCode(t, err, pos.EConflict)
}

func TestTransitionFieldsAndHistory(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	c := mustCreate(t, s, req("T1", "k1", 100))
	if c.State != pos.StateQueued || len(c.History) != 1 || c.History[0].To != pos.StateQueued {
		t.Fatalf("created: %+v", c)
	}
	clk.Add(time.Second)
	c = mustMove(t, s, c.ID, pos.StateSubmitting)
	if c.Attempts != 1 {
		t.Fatalf("attempts %d, want 1", c.Attempts)
	}
	retryAt := clk.Add(time.Second).Add(30 * time.Second)
	c, err := s.Transition(ctx, c.ID, pos.StateQueued, "gateway 503", func(c *pos.Checkout) error {
		c.LastError = "503 Service Unavailable"
		c.NextAttemptAt = retryAt
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.NextAttemptAt.Equal(retryAt) || c.LastError == "" {
		t.Fatalf("retry fields not stored: %+v", c)
	}
	clk.Add(31 * time.Second)
	mustMove(t, s, c.ID, pos.StateSubmitting)
	c, err = s.Transition(ctx, c.ID, pos.StateSent, "invoice created", func(c *pos.Checkout) error {
		c.InvoiceID = 267
		c.TransactionID = "297084548417629359279347779043"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustMove(t, s, c.ID, pos.StateOnTerminal)
	// A field update in the same state adds no history entry.
	n := len(c.History) + 1
	c, err = s.Transition(ctx, c.ID, pos.StateOnTerminal, "", func(c *pos.Checkout) error {
		c.LastError = "terminal busy"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.History) != n {
		t.Fatalf("field update changed history: %d entries, want %d", len(c.History), n)
	}
	paidAt := clk.Add(time.Second)
	c, err = s.Transition(ctx, c.ID, pos.StatePaid, "terminal result", func(c *pos.Checkout) error {
		c.Result = &pos.Result{Outcome: pos.OutcomeApproved, Reference: "RRN123", Source: "terminal", At: paidAt}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != 2 || got.InvoiceID != 267 || got.TransactionID == "" || got.Result == nil ||
		got.Result.Reference != "RRN123" || got.RequestHash != "h-k1" || got.LastError != "terminal busy" {
		t.Fatalf("stored checkout: %+v", got)
	}
	var states []pos.State
	for _, h := range got.History {
		states = append(states, h.To)
	}
	want := []pos.State{pos.StateQueued, pos.StateSubmitting, pos.StateQueued, pos.StateSubmitting,
		pos.StateSent, pos.StateOnTerminal, pos.StatePaid}
	if !slices.Equal(states, want) {
		t.Fatalf("history %v, want %v", states, want)
	}
	if !got.History[len(got.History)-1].At.Equal(paidAt) || !got.UpdatedAt.Equal(paidAt) {
		t.Fatalf("timestamps: %+v", got)
	}
	MustCheck(t, s)
}

func TestTransitionRefusals(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	c := mustCreate(t, s, req("T1", "k1", 100))

	t.Run("NotFound", func(t *testing.T) {
		_, err := s.Transition(ctx, "co_nope_1", pos.StateSubmitting, "", nil)
		wantCode(t, err, pos.ENotFound)
		_, err = s.Transition(ctx, c.ID+"0", pos.StateSubmitting, "", nil)
		wantCode(t, err, pos.ENotFound)
	})
	t.Run("UnknownState", func(t *testing.T) {
		_, err := s.Transition(ctx, c.ID, pos.State("lost"), "", nil)
		wantCode(t, err, pos.EInvalid)
	})
	t.Run("Identity", func(t *testing.T) {
		for name, f := range map[string]func(*pos.Checkout){
			"amount":   func(c *pos.Checkout) { c.Amount++ },
			"terminal": func(c *pos.Checkout) { c.TerminalID = "T2" },
			"invoice":  func(c *pos.Checkout) { c.InvoiceNumber = "X" },
			"history":  func(c *pos.Checkout) { c.History = nil },
			"deadline": func(c *pos.Checkout) { c.Deadline = c.Deadline.Add(time.Hour) },
		} {
			_, err := s.Transition(ctx, c.ID, pos.StateSubmitting, "", func(c *pos.Checkout) error { f(c); return nil })
			if pos.ErrorCode(err) != pos.EInvalid {
				t.Errorf("changing %s: %v, want invalid", name, err)
			}
		}
	})
	t.Run("MutateError", func(t *testing.T) {
		errNotQueued := errors.New("not queued any more")
		_, err := s.Transition(ctx, c.ID, pos.StateExpired, "", func(c *pos.Checkout) error {
			c.LastError = "should not be stored"
			return errNotQueued
		})
		if !errors.Is(err, errNotQueued) {
			t.Fatalf("err %v", err)
		}
		got, _ := s.Get(ctx, c.ID)
		if got.State != pos.StateQueued || got.LastError != "" {
			t.Fatalf("aborted transition wrote: %+v", got)
		}
	})
	MustCheck(t, s)
}

func TestOneActivePerTerminalFIFO(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	a := mustCreate(t, s, req("T1", "a", 100))
	b := mustCreate(t, s, req("T1", "b", 200))
	c := mustCreate(t, s, req("T1", "c", 300))
	other := mustCreate(t, s, req("T2", "x", 400))
	now := clk.Now()

	due, err := s.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(due), []string{a.ID, other.ID}; !slices.Equal(got, want) {
		t.Fatalf("due %v, want %v (one head per terminal)", got, want)
	}
	// Only the head may start.
	_, err = s.Transition(ctx, b.ID, pos.StateSubmitting, "", nil)
	wantCode(t, err, pos.EConflict)

	mustMove(t, s, a.ID, pos.StateSubmitting)
	if act, ok, err := s.Active(ctx, "T1"); err != nil || !ok || act.ID != a.ID {
		t.Fatalf("Active(T1) = %s %v %v", act.ID, ok, err)
	}
	due, _ = s.Due(ctx, now, 10)
	if got, want := ids(due), []string{other.ID}; !slices.Equal(got, want) {
		t.Fatalf("due while T1 busy: %v, want %v", got, want)
	}
	wait, _ := s.Waiting(ctx, "T1", "", 10)
	if got, want := ids(wait), []string{b.ID, c.ID}; !slices.Equal(got, want) {
		t.Fatalf("waiting %v, want %v", got, want)
	}
	wait, _ = s.Waiting(ctx, "T1", b.ID, 10)
	if got, want := ids(wait), []string{c.ID}; !slices.Equal(got, want) {
		t.Fatalf("waiting after %s: %v, want %v", b.ID, got, want)
	}
	// The busy terminal refuses a second active checkout even for its head.
	_, err = s.Transition(ctx, b.ID, pos.StateSubmitting, "", nil)
	wantCode(t, err, pos.EConflict)

	// A retryable failure puts a back at the head with a later attempt time.
	later := now.Add(time.Minute)
	if _, err := s.Transition(ctx, a.ID, pos.StateQueued, "503", func(c *pos.Checkout) error {
		c.NextAttemptAt = later
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	due, _ = s.Due(ctx, now, 10)
	if got, want := ids(due), []string{other.ID}; !slices.Equal(got, want) {
		t.Fatalf("due before retry time: %v, want %v", got, want)
	}
	if at, ok, _ := s.NextDue(ctx); !ok || !at.Equal(now) {
		t.Fatalf("NextDue = %v %v, want %v", at, ok, now)
	}
	due, _ = s.Due(ctx, later, 10)
	if got, want := ids(due), []string{other.ID, a.ID}; !slices.Equal(got, want) {
		t.Fatalf("due at retry time: %v, want %v (ordered by due time)", got, want)
	}
	// a finishes; b becomes due.
	mustMove(t, s, a.ID, pos.StateSubmitting)
	mustMove(t, s, a.ID, pos.StateFailed)
	due, _ = s.Due(ctx, now, 10)
	if got, want := ids(due), []string{b.ID, other.ID}; !slices.Equal(got, want) {
		t.Fatalf("due after a failed: %v, want %v", got, want)
	}
	// Cancel the head while waiting: c becomes due.
	mustMove(t, s, b.ID, pos.StateCanceled)
	due, _ = s.Due(ctx, now, 1)
	if got, want := ids(due), []string{c.ID}; !slices.Equal(got, want) {
		t.Fatalf("due(max 1) after b canceled: %v, want %v", got, want)
	}
	if _, ok, _ := s.Active(ctx, "T1"); ok {
		t.Fatal("T1 still active")
	}
	act, _ := s.ActiveAll(ctx)
	if len(act) != 0 {
		t.Fatalf("ActiveAll = %v", ids(act))
	}
	MustCheck(t, s)
}

func TestExpiring(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	now := clk.Now()
	mk := func(term string, in time.Duration) pos.Checkout {
		r := req(term, term, 100)
		r.Deadline = now.Add(in)
		return mustCreate(t, s, r)
	}
	late := mk("T1", 3*time.Minute)
	early := mk("T2", time.Minute)
	mid := mk("T3", 2*time.Minute)
	mustMove(t, s, mid.ID, pos.StateSubmitting)
	done := mk("T4", 30*time.Second)
	mustMove(t, s, done.ID, pos.StateCanceled)

	if at, ok, _ := s.NextDeadline(ctx); !ok || !at.Equal(early.Deadline) {
		t.Fatalf("NextDeadline = %v %v", at, ok)
	}
	got, err := s.Expiring(ctx, now.Add(2*time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := ids(got), []string{early.ID, mid.ID}; !slices.Equal(g, w) {
		t.Fatalf("Expiring = %v, want %v (final ones excluded)", g, w)
	}
	mustMove(t, s, early.ID, pos.StateExpired)
	got, _ = s.Expiring(ctx, now.Add(time.Hour), 10)
	if g, w := ids(got), []string{mid.ID, late.ID}; !slices.Equal(g, w) {
		t.Fatalf("Expiring = %v, want %v", g, w)
	}
	MustCheck(t, s)
}

func TestLatePaid(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	c := mustCreate(t, s, req("T1", "k1", 100))
	mustMove(t, s, c.ID, pos.StateSubmitting)
	if _, err := s.Transition(ctx, c.ID, pos.StateSent, "created", func(c *pos.Checkout) error {
		c.InvoiceID, c.TransactionID = 42, "tx42"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	exp := mustMove(t, s, c.ID, pos.StateExpired)
	clk.Add(time.Minute)
	got, err := s.Transition(ctx, c.ID, pos.StatePaid, "paid after expiry", func(c *pos.Checkout) error {
		c.Result = &pos.Result{Outcome: pos.OutcomeApproved, Source: "gateway"}
		return nil
	})
	if err != nil {
		t.Fatalf("expired → paid with an invoice: %v", err)
	}
	if got.State != pos.StatePaid || !got.UpdatedAt.After(exp.UpdatedAt) {
		t.Fatalf("got %s at %v", got.State, got.UpdatedAt)
	}
	MustCheck(t, s)
	fin, err := s.Finished(ctx, exp.UpdatedAt.Add(time.Second), 10)
	if err != nil || len(fin) != 1 || fin[0].ID != c.ID {
		t.Fatalf("Finished = %v, %v", ids(fin), err)
	}
	// paid is final: no way back.
	_, err = s.Transition(ctx, c.ID, pos.StateExpired, "again", nil)
	wantCode(t, err, pos.EConflict)
	// Without an invoice the edge is refused.
	d := mustCreate(t, s, req("T2", "k2", 100))
	mustMove(t, s, d.ID, pos.StateExpired)
	_, err = s.Transition(ctx, d.ID, pos.StatePaid, "no invoice", nil)
	wantCode(t, err, pos.EConflict)
}

func TestDueRefsMatchesDue(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	for i, term := range []string{"T1", "T2", "T1", "T3"} {
		mustCreate(t, s, req(term, fmt.Sprintf("k%d", i), 100))
	}
	busy := mustCreate(t, s, req("T4", "k-busy", 100))
	mustMove(t, s, busy.ID, pos.StateSubmitting)
	now := clk.Add(time.Second)
	due, err := s.Due(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	refs, err := s.DueRefs(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != len(due) || len(refs) != 3 {
		t.Fatalf("DueRefs %v, Due %v", refs, ids(due))
	}
	for i := range due {
		if refs[i].ID != due[i].ID || refs[i].TerminalID != due[i].TerminalID || !refs[i].NextAttemptAt.Equal(due[i].NextAttemptAt) {
			t.Fatalf("ref %d = %+v, due %s %s %v", i, refs[i], due[i].ID, due[i].TerminalID, due[i].NextAttemptAt)
		}
	}
	if refs, _ := s.DueRefs(ctx, now, 1); len(refs) != 1 {
		t.Fatalf("max ignored: %d", len(refs))
	}
}
