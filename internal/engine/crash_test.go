package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// The crash test runs the engine in a child process (this test binary,
// re-executed with -test.run=^TestCrashChild$) against the simulator in
// the parent, with ambiguous (apply-then-drop) and 5xx faults injected,
// and SIGKILLs it at random moments while checkouts are in flight. The
// parent re-sends every key the child did not acknowledge, restarts it,
// and repeats; at the end a last child runs until the queue is drained,
// and the parent checks the store against the simulator.
//
// ENGINE_CRASH_CYCLES sets the number of kill cycles (default 20).

const (
	envCrashChild  = "ENGINE_CRASH_CHILD"
	envCrashDB     = "ENGINE_CRASH_DB"
	envCrashURL    = "ENGINE_CRASH_URL"
	envCrashSettle = "ENGINE_CRASH_SETTLE"
	crashTerminals = 8
)

func crashMerchant() hesabesim.Merchant {
	m := hesabesim.SandboxMerchant()
	m.Terminals = nil
	for i := range crashTerminals {
		m.Terminals = append(m.Terminals, hesabe.Terminal{ID: int64(300 + i), TerminalID: crashTerminal(i),
			TerminalName: "A99", PosType: 1, MerchantID: m.ID, MerchantCode: m.Code})
	}
	return m
}

func crashTerminal(i int) string { return fmt.Sprintf("7700%04d", i) }

// crashRequest is the deterministic request for key number n.
func crashRequest(n int) pos.CheckoutRequest {
	return pos.CheckoutRequest{
		IdempotencyKey: fmt.Sprintf("crash-%05d", n), TillRef: fmt.Sprintf("lane%d/%d", n%3, n),
		TerminalID: crashTerminal(n % crashTerminals), Amount: pos.Money(1000 + n),
		Customer: pos.Customer{Name: "Crash Test"}, Description: "crash test",
	}
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	cycles := 20
	if v := os.Getenv("ENGINE_CRASH_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ENGINE_CRASH_CYCLES=%q", v)
		}
		cycles = n
	}
	simOpts := hesabesim.DefaultOptions()
	simOpts.Merchants = []hesabesim.Merchant{crashMerchant()}
	var sim *hesabesim.Server
	var timers sync.WaitGroup
	stopping := make(chan struct{})
	simOpts.OnInvoice = func(inv hesabe.POSInvoice) {
		// The customer pays (or is declined) a little later.
		st := hesabe.InvoicePaid
		if inv.ID%10 == 0 {
			st = hesabe.InvoiceFailed
		}
		timers.Add(1)
		go func() {
			defer timers.Done()
			select {
			case <-time.After(time.Duration(20+rand.IntN(60)) * time.Millisecond):
				_ = sim.SetInvoiceStatus(inv.ID, st)
			case <-stopping:
			}
		}()
	}
	sim, err := hesabesim.Start("127.0.0.1:0", simOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(stopping)
		timers.Wait()
		_ = sim.Close(context.Background())
	}()
	// Slow creates keep checkouts in submitting long enough for kills to
	// land there.
	sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Path: "smartpos-transaction", Probability: 0.5, Latency: 100 * time.Millisecond})
	sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Path: "smartpos-transaction", Probability: 0.15})
	sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Path: "smartpos-transaction", Probability: 0.15, Status: 503})
	sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Path: "smartpos-invoices", Probability: 0.05, Status: 502})

	db := filepath.Join(t.TempDir(), "queue.db")
	acked := map[string]string{} // key → checkout id
	next := 0                    // next new key number
	perCycle := 15
	var stderrTail string
	run := func(settle bool, keys []int, killAfter time.Duration) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashDB+"="+db, envCrashURL+"="+sim.APIURL())
		if settle {
			cmd.Env = append(cmd.Env, envCrashSettle+"=1")
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
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
		go func() {
			for _, n := range keys {
				fmt.Fprintln(stdin, n)
			}
			stdin.Close()
		}()
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			_, _ = io.Copy(io.Discard, stdout)
		}()
		var kill <-chan time.Time
		if !settle {
			kill = time.After(killAfter)
		}
		timeout := time.After(60 * time.Second)
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				if f := strings.Fields(l); len(f) == 3 && f[0] == "ACK" {
					if old, ok := acked[f[1]]; ok && old != f[2] {
						t.Errorf("key %s acknowledged as %s and as %s", f[1], old, f[2])
					}
					acked[f[1]] = f[2]
				}
			case <-kill:
				_ = cmd.Process.Kill() // SIGKILL
				kill = nil
			case <-timeout:
				_ = cmd.Process.Kill()
				t.Errorf("child did not finish; stderr:\n%s", stderr.String())
				timeout = nil
			}
		}
		err = cmd.Wait()
		stderrTail = stderr.String()
		if settle && err != nil {
			t.Fatalf("settling child failed: %v\n%s", err, stderrTail)
		}
	}
	unacked := func() []int {
		var out []int
		for n := range next {
			if _, ok := acked[crashRequest(n).IdempotencyKey]; !ok {
				out = append(out, n)
			}
		}
		return out
	}
	start := time.Now()
	for range cycles {
		keys := unacked()
		for range perCycle {
			keys = append(keys, next)
			next++
		}
		run(false, keys, time.Duration(100+rand.IntN(500))*time.Millisecond)
	}
	sim.ClearFaults() // the last run drains without faults
	run(true, unacked(), 0)
	elapsed := time.Since(start)
	if t.Failed() {
		t.Logf("last child stderr:\n%s", stderrTail)
		return
	}

	// Verify: every key accepted, present, and at most one invoice each.
	store, err := queue.Open(db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	if err := store.Check(ctx); err != nil {
		t.Fatal(err)
	}
	byState := map[pos.State]int{}
	duplicates, missing, adopted, restarted := 0, 0, 0, 0
	numbers := map[string]bool{}
	for n := range next {
		key := crashRequest(n).IdempotencyKey
		id, ok := acked[key]
		if !ok {
			t.Errorf("key %s never acknowledged", key)
			continue
		}
		c, err := store.GetByIdempotencyKey(ctx, key)
		if err != nil || c.ID != id {
			missing++
			t.Errorf("key %s: acknowledged as %s, stored: %v %s", key, id, err, c.ID)
			continue
		}
		byState[c.State]++
		numbers[c.InvoiceNumber] = true
		if hasReason(c, pos.StateSent, "adopted") {
			adopted++
		}
		if hasReason(c, "", "after restart") || hasReason(c, pos.StateSent, "reconciled") || hasReason(c, pos.StateQueued, "reconciled") {
			restarted++
		}
		invs := sim.InvoicesByNumber(c.InvoiceNumber)
		if len(invs) > 1 {
			duplicates += len(invs) - 1
			t.Errorf("checkout %s: %d invoices with number %s", c.ID, len(invs), c.InvoiceNumber)
		}
		mustHave := c.InvoiceID != 0 || c.State == pos.StatePaid || c.State == pos.StateDeclined
		if mustHave && len(invs) != 1 {
			t.Errorf("checkout %s (%s, invoice id %d): %d invoices", c.ID, c.State, c.InvoiceID, len(invs))
		}
		if len(invs) == 1 && c.InvoiceID != 0 && invs[0].ID != c.InvoiceID {
			t.Errorf("checkout %s adopted invoice %d, gateway has %d", c.ID, c.InvoiceID, invs[0].ID)
		}
		if !c.State.Final() && c.State != pos.StateQueued && !isActiveState(c.State) {
			t.Errorf("checkout %s in state %s", c.ID, c.State)
		}
	}
	for _, inv := range sim.Invoices() {
		if !numbers[inv.InvoiceNumber] {
			t.Errorf("invoice %d (%s) belongs to no accepted checkout", inv.ID, inv.InvoiceNumber)
		}
	}
	st := sim.Stats()
	t.Logf("crash test: %d cycles, %d checkouts accepted, %d missing, %d duplicate invoices, states %v, %d invoices at the gateway, "+
		"%d adopted after an unknown outcome, %d found in submitting at a restart, faults fired %v, %s",
		cycles, len(acked), missing, duplicates, byState, st.InvoiceCount, adopted, restarted, st.FaultsFired, elapsed.Round(time.Millisecond))
}

func isActiveState(s pos.State) bool {
	return s == pos.StateSubmitting || s == pos.StateSent || s == pos.StateOnTerminal
}

// TestCrashChild is the process the crash test kills. It reads key
// numbers on stdin, creates each checkout and prints "ACK key id" once it
// is durable, and runs the engine until killed (or, when settling, until
// the queue is drained).
func TestCrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) == "" {
		t.Skip("run by TestCrash")
	}
	store, err := queue.Open(os.Getenv(envCrashDB), queue.Options{LockTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := crashMerchant()
	client, err := hesabe.New(hesabe.Config{MerchantURL: os.Getenv(envCrashURL), MerchantCode: m.Code,
		AccessCode: m.AccessCode, SecretKey: m.SecretKey, IVKey: m.IVKey, Username: m.Username, Password: m.Password,
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	opts := engine.DefaultOptions()
	opts.PollInterval = 20 * time.Millisecond
	opts.ProbeInterval = 20 * time.Millisecond
	opts.BackoffInitial = 10 * time.Millisecond
	opts.BackoffMax = 100 * time.Millisecond
	opts.CallTimeout = 5 * time.Second
	opts.Workers = 8
	eng := engine.New(store, client, opts)
	if err := eng.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		n, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("bad key line %q", sc.Text())
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req := crashRequest(n)
			c, _, err := eng.Create(context.Background(), req)
			if err != nil {
				fmt.Fprintf(os.Stderr, "create %s: %v\n", req.IdempotencyKey, err)
				return
			}
			out.Lock()
			fmt.Fprintf(os.Stdout, "ACK %s %s\n", req.IdempotencyKey, c.ID)
			out.Unlock()
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(45 * time.Second)
	if os.Getenv(envCrashSettle) == "" {
		deadline = time.Now().Add(60 * time.Second) // killed long before
	}
	for time.Now().Before(deadline) {
		st := eng.Status()
		if os.Getenv(envCrashSettle) != "" && st.Queued == 0 && st.Active == 0 && st.StoreError == "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := eng.Status(); os.Getenv(envCrashSettle) != "" && (st.Queued != 0 || st.Active != 0) {
		t.Fatalf("not drained: %+v", st)
	}
}
