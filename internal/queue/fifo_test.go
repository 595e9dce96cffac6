package queue_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// TestFIFOModel drives the store with random steps — accepts, submissions
// of a terminal's head, retries (back to the head), results, cancels and
// expiries of checkouts in the middle of a FIFO, next-attempt changes —
// and compares every terminal's FIFO, its active checkout and the due
// list with a plain model after each step, with Check.
func TestFIFOModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { fifoModel(t, seed, 400) })
	}
}

func fifoModel(t *testing.T, seed uint64, steps int) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 7))
	terms := []string{"T0", "T1", "T2", "T3"}
	fifo := map[string][]string{} // terminal → queued ids in FIFO order
	active := map[string]pos.Checkout{}
	byID := map[string]pos.Checkout{}
	n := 0
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	remove := func(term, id string) {
		fifo[term] = slices.DeleteFunc(fifo[term], func(x string) bool { return x == id })
	}
	move := func(id string, to pos.State, mutate func(*pos.Checkout) error) pos.Checkout {
		t.Helper()
		c, err := s.Transition(ctx, id, to, "model", mutate)
		if err != nil {
			t.Fatalf("Transition(%s → %s): %v", id, to, err)
		}
		byID[id] = c
		return c
	}
	for step := range steps {
		clk.Add(time.Millisecond)
		term := pick(terms)
		switch op := rng.IntN(10); {
		case op < 4: // accept
			n++
			c := mustCreate(t, s, req(term, fmt.Sprint("k", n), 100))
			fifo[term] = append(fifo[term], c.ID)
			byID[c.ID] = c
		case op == 4 && len(fifo[term]) > 0 && active[term].ID == "": // submit the head
			id := fifo[term][0]
			c := move(id, pos.StateSubmitting, nil)
			fifo[term] = fifo[term][1:]
			active[term] = c
		case op == 5 && active[term].State == pos.StateSubmitting: // retry: back to the head
			id := active[term].ID
			move(id, pos.StateQueued, func(c *pos.Checkout) error {
				c.NextAttemptAt = clk.Now().Add(time.Duration(rng.IntN(3)) * time.Millisecond)
				return nil
			})
			fifo[term] = append([]string{id}, fifo[term]...)
			delete(active, term)
		case op == 6 && active[term].ID != "": // sent, then a result
			id := active[term].ID
			if active[term].State == pos.StateSubmitting {
				active[term] = move(id, pos.StateSent, nil)
				break
			}
			move(id, []pos.State{pos.StatePaid, pos.StateDeclined, pos.StateFailed}[rng.IntN(3)], nil)
			delete(active, term)
		case op == 7 && len(fifo[term]) > 0: // cancel or expire anywhere in the FIFO
			id := pick(fifo[term])
			move(id, []pos.State{pos.StateCanceled, pos.StateExpired}[rng.IntN(2)], nil)
			remove(term, id)
		case op == 8 && len(fifo[term]) > 0: // a queued checkout's next attempt changes
			id := pick(fifo[term])
			move(id, pos.StateQueued, func(c *pos.Checkout) error {
				c.NextAttemptAt = clk.Now().Add(time.Duration(rng.IntN(5)-2) * time.Millisecond)
				return nil
			})
		case op == 9 && len(fifo[term]) > 0: // entering submitting out of turn is refused
			if len(fifo[term]) > 1 || active[term].ID != "" {
				id := fifo[term][len(fifo[term])-1]
				if _, err := s.Transition(ctx, id, pos.StateSubmitting, "", nil); pos.ErrorCode(err) != pos.EConflict {
					t.Fatalf("step %d: out-of-turn submit of %s: %v", step, id, err)
				}
			}
		}
		// Compare.
		var wantDue []string
		for _, term := range terms {
			got, err := s.Waiting(ctx, term, "", 1000)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), fifo[term]) && !(len(got) == 0 && len(fifo[term]) == 0) {
				t.Fatalf("step %d: %s waiting %v, want %v", step, term, ids(got), fifo[term])
			}
			// Paging from each entry gives the rest.
			if len(fifo[term]) > 1 {
				i := rng.IntN(len(fifo[term]) - 1)
				rest, err := s.Waiting(ctx, term, fifo[term][i], 1000)
				if err != nil || !slices.Equal(ids(rest), fifo[term][i+1:]) {
					t.Fatalf("step %d: %s waiting after %s: %v %v, want %v", step, term, fifo[term][i], ids(rest), err, fifo[term][i+1:])
				}
			}
			a, ok, err := s.Active(ctx, term)
			if err != nil || ok != (active[term].ID != "") || a.ID != active[term].ID {
				t.Fatalf("step %d: %s active %s %v %v, want %s", step, term, a.ID, ok, err, active[term].ID)
			}
			if active[term].ID == "" && len(fifo[term]) > 0 {
				wantDue = append(wantDue, fifo[term][0])
			}
		}
		due, err := s.Due(ctx, clk.Now().Add(time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(due, func(a, b pos.Checkout) int { return a.NextAttemptAt.Compare(b.NextAttemptAt) })
		gotDue := ids(due)
		slices.Sort(gotDue)
		slices.Sort(wantDue)
		if !slices.Equal(gotDue, wantDue) {
			t.Fatalf("step %d: due %v, want %v", step, gotDue, wantDue)
		}
		for _, c := range due {
			if !c.NextAttemptAt.Equal(byID[c.ID].NextAttemptAt) {
				t.Fatalf("step %d: due %s at %v, its next attempt is %v", step, c.ID, c.NextAttemptAt, byID[c.ID].NextAttemptAt)
			}
		}
		MustCheck(t, s)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unsent := 0
	for _, term := range terms {
		unsent += len(fifo[term])
		if active[term].State == pos.StateSubmitting {
			unsent++
		}
	}
	if st.Unsent != unsent {
		t.Fatalf("stats: %d unsent, model %d", st.Unsent, unsent)
	}
	_ = queue.Allowed
}
