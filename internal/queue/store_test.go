package queue_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
)

func TestCreateIdempotency(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	first := mustCreate(t, s, req("T1", "k1", 100))

	t.Run("SameRequest", func(t *testing.T) {
		again, existing, err := s.Create(ctx, req("T1", "k1", 100))
		if err != nil || !existing || again.ID != first.ID {
			t.Fatalf("Create again = %s, %v, %v; want %s, true, nil", again.ID, existing, err, first.ID)
		}
	})
	t.Run("Conflict", func(t *testing.T) {
		other := req("T1", "k1", 999)
		other.RequestHash = "different"
		_, _, err := s.Create(ctx, other)
		wantCode(t, err, pos.EConflict)
		var pe *pos.Error
		if !errors.As(err, &pe) || pe.Field != "idempotency_key" {
			t.Fatalf("error %#v", err)
		}
	})
	t.Run("NoKey", func(t *testing.T) {
		r := req("T1", "", 100)
		a := mustCreate(t, s, r)
		b := mustCreate(t, s, r)
		if a.ID == b.ID {
			t.Fatal("two creates without key share an id")
		}
	})
	t.Run("Lookups", func(t *testing.T) {
		byKey, err := s.GetByIdempotencyKey(ctx, "k1")
		if err != nil || byKey.ID != first.ID {
			t.Fatalf("GetByIdempotencyKey = %s, %v", byKey.ID, err)
		}
		byInv, err := s.GetByInvoiceNumber(ctx, first.InvoiceNumber)
		if err != nil || byInv.ID != first.ID {
			t.Fatalf("GetByInvoiceNumber(%s) = %s, %v", first.InvoiceNumber, byInv.ID, err)
		}
		_, err = s.GetByIdempotencyKey(ctx, "nope")
		wantCode(t, err, pos.ENotFound)
		_, err = s.GetByInvoiceNumber(ctx, first.InvoiceNumber+"1")
		wantCode(t, err, pos.ENotFound)
		_, err = s.Get(ctx, "co_x")
		wantCode(t, err, pos.ENotFound)
	})
	MustCheck(t, s)
}

func TestCreateValidation(t *testing.T) {
	s, _ := MustOpen(t)
	long := string(make([]byte, 300))
	for name, f := range map[string]func(*pos.Checkout){
		"no terminal":   func(c *pos.Checkout) { c.TerminalID = "" },
		"NUL terminal":  func(c *pos.Checkout) { c.TerminalID = "a\x00b" },
		"long key":      func(c *pos.Checkout) { c.IdempotencyKey = long },
		"key no hash":   func(c *pos.Checkout) { c.RequestHash = "" },
		"zero amount":   func(c *pos.Checkout) { c.Amount = 0 },
		"negative":      func(c *pos.Checkout) { c.Amount = -5 },
		"no deadline":   func(c *pos.Checkout) { c.Deadline = time.Time{} },
		"long terminal": func(c *pos.Checkout) { c.TerminalID = long },
	} {
		r := req("T1", "k1", 100)
		f(&r)
		if _, _, err := s.Create(context.Background(), r); pos.ErrorCode(err) != pos.EInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestCreateAssignsFields(t *testing.T) {
	s, clk := MustOpen(t)
	r := req("T1", "k1", 1500)
	r.ID, r.State, r.Attempts, r.InvoiceID = "mine", pos.StatePaid, 7, 9
	c := mustCreate(t, s, r)
	if c.ID == "mine" || c.State != pos.StateQueued || c.Attempts != 0 || c.InvoiceID != 0 || c.InvoiceNumber == "" {
		t.Fatalf("created %+v", c)
	}
	if !c.CreatedAt.Equal(clk.Now()) || !c.NextAttemptAt.Equal(clk.Now()) {
		t.Fatalf("times %v %v", c.CreatedAt, c.NextAttemptAt)
	}
	// The ids of a re-created file differ (random instance id).
	other, _ := MustOpen(t)
	c2 := mustCreate(t, other, r)
	if c2.ID == c.ID || c2.InvoiceNumber == c.InvoiceNumber {
		t.Fatalf("two files gave %s/%s and %s/%s", c.ID, c.InvoiceNumber, c2.ID, c2.InvoiceNumber)
	}
}

func TestConcurrentCreate(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	const workers, each = 64, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string]string{} // key → id
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every key is sent by two workers: one create, one replay.
				key := fmt.Sprintf("k%d-%d", w/2, i)
				c, _, err := s.Create(ctx, req(fmt.Sprintf("T%d", w%8), key, pos.Money(100+i)))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, ok := got[key]; ok && prev != c.ID {
					errs <- fmt.Errorf("key %s gave %s and %s", key, prev, c.ID)
				}
				got[key] = c.ID
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := workers / 2 * each; len(got) != want || st.ByState[pos.StateQueued] != want {
		t.Fatalf("%d keys, %d queued; want %d", len(got), st.ByState[pos.StateQueued], want)
	}
	for key, id := range got {
		c, err := s.Get(ctx, id)
		if err != nil || c.IdempotencyKey != key {
			t.Fatalf("Get(%s) = %+v, %v", id, c, err)
		}
	}
	MustCheck(t, s)
}

// TestConcurrentMixed runs creates and transitions from many goroutines
// (drivers play engines, one per terminal) and checks every index after.
func TestConcurrentMixed(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	const terminals, per = 8, 30
	var wg sync.WaitGroup
	for tn := range terminals {
		term := fmt.Sprintf("T%d", tn)
		wg.Add(2)
		go func() { // till
			defer wg.Done()
			for i := range per {
				if _, _, err := s.Create(ctx, req(term, fmt.Sprintf("%s-%d", term, i), 100)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() { // engine for this terminal
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(tn), 1))
			finished := 0
			for finished < per {
				next, err := s.Waiting(ctx, term, "", 1)
				if err != nil {
					t.Error(err)
					return
				}
				if len(next) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				id := next[0].ID
				if _, err := s.Transition(ctx, id, pos.StateSubmitting, "", nil); err != nil {
					t.Error(err)
					return
				}
				final := []pos.State{pos.StatePaid, pos.StateDeclined, pos.StateFailed}[rng.IntN(3)]
				steps := map[pos.State][]pos.State{
					pos.StatePaid:     {pos.StateSent, pos.StateOnTerminal, pos.StatePaid},
					pos.StateDeclined: {pos.StateSent, pos.StateOnTerminal, pos.StateDeclined},
					pos.StateFailed:   {pos.StateQueued, pos.StateSubmitting, pos.StateFailed},
				}[final]
				for _, st := range steps {
					if _, err := s.Transition(ctx, id, st, "", nil); err != nil {
						t.Error(err)
						return
					}
				}
				finished++
			}
		}()
	}
	wg.Wait()
	_ = clk
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	final := st.ByState[pos.StatePaid] + st.ByState[pos.StateDeclined] + st.ByState[pos.StateFailed]
	if final != terminals*per || st.Unsent != 0 || st.UnsentAmount != 0 {
		t.Fatalf("stats %+v", st)
	}
	MustCheck(t, s)
}

func TestStatsSurviveReopen(t *testing.T) {
	clk := newClock()
	path := filepath.Join(t.TempDir(), "queue.db")
	opt := queue.Options{Now: clk.Now}
	s, err := queue.Open(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := mustCreate(t, s, req("T1", "a", 1000))
	clk.Add(time.Minute)
	b := mustCreate(t, s, req("T2", "b", 250))
	mustCreate(t, s, req("T3", "c", 5))
	mustMove(t, s, b.ID, pos.StateSubmitting)
	c3, _ := s.GetByIdempotencyKey(ctx, "c")
	mustMove(t, s, c3.ID, pos.StateCanceled)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	s = MustOpenPath(t, path, opt)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unsent != 2 || st.UnsentAmount != 1250 || st.ByState[pos.StateQueued] != 1 ||
		st.ByState[pos.StateSubmitting] != 1 || st.ByState[pos.StateCanceled] != 1 {
		t.Fatalf("stats after reopen: %+v", st)
	}
	if !st.OldestUnsent.Equal(a.CreatedAt) || st.OldestUnsentAge != 2*time.Minute {
		t.Fatalf("oldest %v age %v", st.OldestUnsent, st.OldestUnsentAge)
	}
	// Sent leaves the unsent count; the next create continues the sequence.
	mustMove(t, s, b.ID, pos.StateSent)
	d := mustCreate(t, s, req("T1", "d", 1))
	if d.ID == a.ID || d.ID == b.ID {
		t.Fatalf("id reused: %s", d.ID)
	}
	st, _ = s.Stats(ctx)
	if st.Unsent != 2 || st.UnsentAmount != 1001 {
		t.Fatalf("stats %+v", st)
	}
	MustCheck(t, s)
}

func TestRecent(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	var all []string
	for i := range 7 {
		all = append(all, mustCreate(t, s, req("T1", fmt.Sprint(i), 100)).ID)
	}
	slices.Reverse(all)
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		page, next, err := s.Recent(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page)...)
		if next == "" {
			if pages != 2 {
				t.Fatalf("%d pages", pages+1)
			}
			break
		}
		cursor = next
	}
	if !slices.Equal(got, all) {
		t.Fatalf("Recent pages %v, want %v", got, all)
	}
	if _, _, err := s.Recent(ctx, "bad", 3); pos.ErrorCode(err) != pos.EInvalid {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestPrune(t *testing.T) {
	clk := newClock()
	s := MustOpenPath(t, filepath.Join(t.TempDir(), "queue.db"),
		queue.Options{Now: clk.Now, Retention: time.Hour, PruneBatch: 2})
	ctx := context.Background()
	var old []pos.Checkout
	for i := range 5 {
		c := mustCreate(t, s, req(fmt.Sprintf("T%d", i), fmt.Sprintf("old%d", i), 100))
		old = append(old, mustMove(t, s, c.ID, pos.StateCanceled))
	}
	keep := mustCreate(t, s, req("T9", "waiting", 100)) // not final: never pruned
	clk.Add(30 * time.Minute)
	recent := mustMove(t, s, mustCreate(t, s, req("T8", "recent", 100)).ID, pos.StateExpired)

	if n, more, err := s.Prune(ctx, clk.Now()); err != nil || n != 0 || more {
		t.Fatalf("early Prune = %d %v %v", n, more, err)
	}
	now := clk.Add(45 * time.Minute) // old: 75 min, recent: 45 min
	total := 0
	for {
		n, more, err := s.Prune(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2 {
			t.Fatalf("Prune removed %d, batch is 2", n)
		}
		total += n
		MustCheck(t, s)
		if !more {
			break
		}
	}
	if total != len(old) {
		t.Fatalf("pruned %d, want %d", total, len(old))
	}
	for _, c := range old {
		if _, err := s.Get(ctx, c.ID); pos.ErrorCode(err) != pos.ENotFound {
			t.Fatalf("pruned %s still there: %v", c.ID, err)
		}
	}
	for _, c := range []pos.Checkout{keep, recent} {
		if _, err := s.Get(ctx, c.ID); err != nil {
			t.Fatalf("%s pruned: %v", c.ID, err)
		}
	}
	// A pruned idempotency key is free again.
	again, existing, err := s.Create(ctx, req("T0", "old0", 100))
	if err != nil || existing || again.ID == old[0].ID {
		t.Fatalf("reuse of pruned key: %s %v %v", again.ID, existing, err)
	}
	st, _ := s.Stats(ctx)
	if st.ByState[pos.StateCanceled] != 0 || st.ByState[pos.StateExpired] != 1 {
		t.Fatalf("stats %+v", st.ByState)
	}
	MustCheck(t, s)
}

func TestSchemaNewer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte{0, 0, 0, 99})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = queue.Open(path, queue.Options{})
	if !errors.Is(err, queue.ErrSchema) {
		t.Fatalf("Open newer schema: %v", err)
	}
	t.Log(err)
}

// TestOpenLockedByChild holds the database in a child process (this test
// binary run again) and opens it here.
func TestOpenLockedByChild(t *testing.T) {
	if path := os.Getenv("QUEUE_TEST_HOLD"); path != "" {
		s, err := queue.Open(path, queue.Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("holding")
		bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
		s.Close()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	cmd := testutil.SelfCommand("-test.run=^TestOpenLockedByChild$")
	cmd.Env = append(os.Environ(), "QUEUE_TEST_HOLD="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	_, err = queue.Open(path, queue.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, queue.ErrLocked) {
		t.Fatalf("Open while child holds the file: %v", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	// Released: opens now.
	MustOpenPath(t, path, queue.Options{LockTimeout: time.Second})
}
