package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// salvageFixture is a database with checkouts in every state on several
// terminals and requests in several states, as the engine leaves them.
type salvageFixture struct {
	path    string
	byID    map[string]pos.Checkout // every checkout as last written
	order   []string                // ids in acceptance order
	reqs    map[string]pos.Request
	logOnly map[string]bool // accepted into the log only (not applied)
}

// buildSalvageFixture fills a store and, when crash is set, leaves a crash
// image beside it: the database and an accept log holding checkouts the
// database has not applied. It returns the path of the files to salvage.
func buildSalvageFixture(t *testing.T, crash bool) *salvageFixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	clk := newClock()
	s, err := queue.Open(filepath.Join(dir, "live.db"), queue.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f := &salvageFixture{byID: map[string]pos.Checkout{}, reqs: map[string]pos.Request{}, logOnly: map[string]bool{}}
	for i := range 6 {
		r := mustCreateReq(t, s, newReq(pos.KindCustomer, fmt.Sprintf("cust-%d", i), fmt.Sprintf(`{"n":%d}`, i)))
		switch i % 3 {
		case 1:
			r, err = s.TransitionRequest(ctx, r.ID, pos.RequestSubmitting, "send", nil)
		case 2:
			if r, err = s.TransitionRequest(ctx, r.ID, pos.RequestSubmitting, "send", nil); err == nil {
				r, err = s.TransitionRequest(ctx, r.ID, pos.RequestSucceeded, "ok", nil)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		f.reqs[r.ID] = r
	}
	terms := []string{"T1", "T2", "T3", "T4", "T10"}
	for i := range 900 {
		clk.Add(time.Second)
		c := req(terms[i%len(terms)], fmt.Sprintf("key-%04d", i), pos.Money(1000+i))
		c.TillRef = fmt.Sprintf("till/receipt-%04d", i)
		c.Deadline = clk.Now().Add(time.Duration(i%7) * time.Minute)
		out := mustCreate(t, s, c)
		f.byID[out.ID] = out
		f.order = append(f.order, out.ID)
	}
	move := func(id string, to pos.State, mutate func(*pos.Checkout) error) {
		t.Helper()
		clk.Add(time.Millisecond)
		out, err := s.Transition(ctx, id, to, "test "+string(to), mutate)
		if err != nil {
			t.Fatalf("%s → %s: %v", id, to, err)
		}
		f.byID[id] = out
	}
	invoice := func(n int64) func(*pos.Checkout) error {
		return func(c *pos.Checkout) error { c.InvoiceID, c.TransactionID = n, fmt.Sprintf("tx-%d", n); return nil }
	}
	// Finished ones at the front of every terminal's FIFO.
	for i := range 100 {
		id := f.order[i]
		move(id, pos.StateSubmitting, nil)
		move(id, pos.StateSent, invoice(int64(i+1)))
		switch i % 4 {
		case 0:
			move(id, pos.StateOnTerminal, nil)
			move(id, pos.StatePaid, func(c *pos.Checkout) error {
				c.Result = &pos.Result{Outcome: "paid", Reference: fmt.Sprintf("ref-%d", i), At: clk.Now()}
				return nil
			})
		case 1:
			move(id, pos.StateDeclined, nil)
		case 2:
			move(id, pos.StateExpired, nil)
		default:
			move(id, pos.StateCanceled, nil)
		}
	}
	// A few queued ones canceled out of the middle of the FIFOs.
	for _, i := range []int{333, 334, 612} {
		move(f.order[i], pos.StateCanceled, nil)
	}
	// T1: submitting. T2: sent. T3: on_terminal. T4: retried (back in the
	// FIFO with a later attempt). T10: free, with its FIFO due.
	move(f.order[100], pos.StateSubmitting, nil)
	move(f.order[101], pos.StateSubmitting, nil)
	move(f.order[101], pos.StateSent, invoice(9001))
	move(f.order[102], pos.StateSubmitting, nil)
	move(f.order[102], pos.StateSent, invoice(9002))
	move(f.order[102], pos.StateOnTerminal, nil)
	move(f.order[103], pos.StateSubmitting, nil)
	move(f.order[103], pos.StateQueued, func(c *pos.Checkout) error {
		c.NextAttemptAt, c.LastError = clk.Now().Add(time.Minute), "gateway 503"
		return nil
	})
	if _, err := s.Stats(ctx); err != nil { // everything so far applied
		t.Fatal(err)
	}
	f.path = filepath.Join(dir, "live.db")
	if crash {
		queue.HoldApply(s, true)
		for i := 900; i < 930; i++ {
			clk.Add(time.Second)
			c := req(terms[i%len(terms)], fmt.Sprintf("key-%04d", i), pos.Money(1000+i))
			c.TillRef = fmt.Sprintf("till/receipt-%04d", i)
			out := mustCreate(t, s, c)
			f.byID[out.ID] = out
			f.order = append(f.order, out.ID)
			f.logOnly[out.ID] = true
		}
		// The crash image: the files as they are now (nothing writes the
		// database while the apply is held).
		img := filepath.Join(t.TempDir(), "posbridge.db")
		for from, to := range map[string]string{f.path: img, queue.AcceptLogPath(f.path): queue.AcceptLogPath(img)} {
			b, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		f.path = img
		queue.HoldApply(s, false)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// garblePageOf garbles the element headers of the page holding the first
// copy of needle in the file at path, as damage_test.go does.
func garblePageOf(t *testing.T, path, needle string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(raw, []byte(needle))
	if at < 0 {
		t.Fatalf("%q not found in the file", needle)
	}
	page := at / os.Getpagesize() * os.Getpagesize()
	for i := page + 16; i < page+16+256; i++ {
		raw[i] = 0xff
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// unreadable returns the ids of the checkouts a store on a copy of the
// damaged file (without its log) cannot read: what salvage must report.
func unreadable(t *testing.T, f *salvageFixture) map[string]bool {
	t.Helper()
	cp := filepath.Join(t.TempDir(), "copy.db")
	b, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := MustOpenPath(t, cp, queue.Options{NoAcceptLog: true})
	out := map[string]bool{}
	for _, id := range f.order {
		if f.logOnly[id] {
			continue
		}
		if _, err := s.Get(context.Background(), id); errors.Is(err, queue.ErrDamaged) {
			out[id] = true
		} else if err != nil {
			t.Fatalf("Get(%s) on the damaged copy: %v", id, err)
		}
	}
	return out
}

// checkSalvaged opens the salvaged database and compares it with the
// fixture: every checkout not in lost is there as it was written, the
// indexes pass the store's checks, the FIFOs hold the queued checkouts in
// acceptance order, and new checkouts continue after every old sequence.
func checkSalvaged(t *testing.T, f *salvageFixture, path string, lost map[string]bool) {
	t.Helper()
	ctx := context.Background()
	s := MustOpenPath(t, path, queue.Options{})
	MustCheck(t, s)
	mustCheckReq(t, s)
	want := map[pos.State]int64{}
	fifo := map[string][]string{}
	active := map[string]string{}
	for _, id := range f.order {
		c := f.byID[id]
		got, err := s.Get(ctx, id)
		if lost[id] {
			if err == nil {
				t.Errorf("%s was reported lost but is there: %+v", id, got)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Get(%s): %v", id, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%s salvaged as\n%+v\nwant\n%+v", id, got, c)
		}
		want[c.State]++
		switch c.State {
		case pos.StateQueued:
			fifo[c.TerminalID] = append(fifo[c.TerminalID], id)
		case pos.StateSubmitting, pos.StateSent, pos.StateOnTerminal:
			active[c.TerminalID] = id
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for state, n := range want {
		if got := st.ByState[state]; int64(got) != n {
			t.Errorf("Stats %s = %d, want %d", state, got, n)
		}
	}
	for term, ids := range fifo {
		var got []string
		after := ""
		for {
			page, err := s.Waiting(ctx, term, after, 50)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if len(page) < 50 {
				break
			}
			after = page[len(page)-1].ID
		}
		if !slices.Equal(got, ids) {
			t.Errorf("terminal %s's FIFO is %v, want %v", term, got, ids)
		}
	}
	for term, id := range active {
		if c, ok, err := s.Active(ctx, term); err != nil || !ok || c.ID != id {
			t.Errorf("Active(%s) = %s %v %v, want %s", term, c.ID, ok, err, id)
		}
	}
	for id, r := range f.reqs {
		got, err := s.GetRequest(ctx, id)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("request %s salvaged as %+v (%v), want %+v", id, got, err, r)
		}
	}
	// A copied checkout's key is known; a new one continues the sequence.
	for _, id := range f.order {
		if lost[id] {
			continue
		}
		c := f.byID[id]
		again, existing, err := s.Create(ctx, pos.Checkout{IdempotencyKey: c.IdempotencyKey, RequestHash: c.RequestHash,
			TerminalID: c.TerminalID, Amount: c.Amount, Deadline: c.Deadline})
		if err != nil || !existing || again.ID != id {
			t.Fatalf("Create with %s's key: %s existing=%v %v", id, again.ID, existing, err)
		}
		break
	}
	var highest int
	for _, id := range f.order {
		highest = max(highest, seqOfID(t, id))
	}
	fresh := mustCreate(t, s, req("T1", "after-salvage", 500))
	if got := seqOfID(t, fresh.ID); got <= highest {
		t.Fatalf("a new checkout after the salvage got #%d; #%d was already issued", got, highest)
	}
	if fresh.InvoiceNumber[:10] != f.byID[f.order[0]].InvoiceNumber[:10] {
		t.Fatalf("invoice number %s does not keep the instance of %s", fresh.InvoiceNumber, f.byID[f.order[0]].InvoiceNumber)
	}
	MustCheck(t, s)
}

// TestSalvageDamagedPage: a leaf page of the checkout bucket is garbled
// (a write the disk lost) in a crash image whose accept log holds
// checkouts the database has not applied. Salvage copies every checkout
// and request that can still be read into a new file with the same
// instance id, rebuilds every index and counter, takes the logged
// checkouts, and reports exactly the sequences it could not read, with
// their ids and invoice numbers.
func TestSalvageDamagedPage(t *testing.T) {
	f := buildSalvageFixture(t, true)
	victim := f.byID[f.order[450]] // queued since it was accepted: one copy in the file
	garblePageOf(t, f.path, victim.TillRef)
	lost := unreadable(t, f)
	if !lost[victim.ID] || len(lost) > 60 {
		t.Fatalf("the damage made %d checkouts unreadable (victim among them: %v)", len(lost), lost[victim.ID])
	}
	walBefore, err := os.ReadFile(queue.AcceptLogPath(f.path))
	if err != nil {
		t.Fatal(err)
	}
	dbBefore, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := queue.Salvage(context.Background(), f.path, out, queue.SalvageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var gotLost []string
	for _, l := range rep.Lost {
		gotLost = append(gotLost, l.ID)
		if uint64(seqOfID(t, l.ID)) != l.Seq || !strings.HasSuffix(l.InvoiceNumber, fmt.Sprintf("%010d", l.Seq)) {
			t.Errorf("lost entry %+v: id, sequence and invoice number disagree", l)
		}
		if c := f.byID[l.ID]; l.InvoiceNumber != c.InvoiceNumber {
			t.Errorf("lost %s reported with invoice %s, want %s", l.ID, l.InvoiceNumber, c.InvoiceNumber)
		}
	}
	var wantLost []string
	for _, id := range f.order {
		if lost[id] {
			wantLost = append(wantLost, id)
		}
	}
	if !slices.Equal(gotLost, wantLost) {
		t.Fatalf("reported lost %v, want %v", gotLost, wantLost)
	}
	if rep.Complete() {
		t.Fatal("a salvage that lost records says it is complete")
	}
	if rep.FromLog != len(f.logOnly) {
		t.Errorf("took %d checkouts from the accept log, want %d", rep.FromLog, len(f.logOnly))
	}
	var copied int
	for _, n := range rep.Copied {
		copied += n
	}
	if copied != len(f.order)-len(lost) {
		t.Errorf("report says %d copied (%v), want %d", copied, rep.Copied, len(f.order)-len(lost))
	}
	if rep.Requests.Copied != len(f.reqs) || len(rep.Requests.Lost) != 0 {
		t.Errorf("requests: %+v, want %d copied", rep.Requests, len(f.reqs))
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	for _, l := range rep.Lost {
		if !strings.Contains(text.String(), l.InvoiceNumber) {
			t.Errorf("the report does not name lost invoice %s:\n%s", l.InvoiceNumber, text.String())
		}
	}
	// The damaged files are read, never written.
	if b, _ := os.ReadFile(f.path); !bytes.Equal(b, dbBefore) {
		t.Error("salvage changed the damaged database")
	}
	if b, _ := os.ReadFile(queue.AcceptLogPath(f.path)); !bytes.Equal(b, walBefore) {
		t.Error("salvage changed the accept log")
	}
	checkSalvaged(t, f, out, lost)
}

// TestSalvageRoundTrip: an undamaged database salvages to the same
// records, indexes that pass the checks, and a complete report.
func TestSalvageRoundTrip(t *testing.T) {
	f := buildSalvageFixture(t, false)
	out := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := queue.Salvage(context.Background(), f.path, out, queue.SalvageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete() || len(rep.Lost) != 0 || len(rep.Resolved) != 0 || rep.Damaged {
		t.Fatalf("round trip report: %+v", rep)
	}
	checkSalvaged(t, f, out, nil)
}

// TestSalvageDryRun writes nothing.
func TestSalvageDryRun(t *testing.T) {
	f := buildSalvageFixture(t, false)
	out := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := queue.Salvage(context.Background(), f.path, out, queue.SalvageOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a dry run wrote %s: %v", out, err)
	}
	if n := rep.Copied[pos.StateQueued]; n == 0 || !rep.Complete() {
		t.Fatalf("dry run report: %+v", rep)
	}
}

// TestSalvageRefusesLockedAndExisting: the database of a running
// posbridge, or a target that exists, is refused.
func TestSalvageRefusesLockedAndExisting(t *testing.T) {
	s, _ := MustOpen(t)
	mustCreate(t, s, req("T1", "k", 100))
	out := filepath.Join(t.TempDir(), "salvaged.db")
	if _, err := queue.Salvage(context.Background(), s.Path(), out, queue.SalvageOptions{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, queue.ErrLocked) {
		t.Fatalf("salvage of an open database: %v, want ErrLocked", err)
	}
	if err := os.WriteFile(out, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := queue.Salvage(context.Background(), s.Path(), out, queue.SalvageOptions{}); err == nil {
		t.Fatal("salvage over an existing file succeeded")
	}
}

// TestSalvageResolvesBrokenInvariants: records that decode but cannot
// stand together (two active checkouts on one terminal, one idempotency
// key on two checkouts) are copied, changed conservatively and reported,
// never dropped: the active one changed last stays, the other becomes
// expired (its invoice stays adoptable as a late payment); the key stays
// with the first checkout.
func TestSalvageResolvesBrokenInvariants(t *testing.T) {
	f := buildSalvageFixture(t, false)
	ctx := context.Background()
	sent, queued, dup := f.byID[f.order[101]], f.byID[f.order[106]], f.byID[f.order[700]] // T2: sent; T2: queued
	if sent.State != pos.StateSent || queued.State != pos.StateQueued || queued.TerminalID != sent.TerminalID {
		t.Fatalf("fixture: %s %s on %s, %s on %s", sent.ID, sent.State, sent.TerminalID, queued.State, queued.TerminalID)
	}
	if err := queue.RewriteRecord(f.path, uint64(seqOfID(t, queued.ID)), func(c *pos.Checkout) {
		c.State, c.InvoiceID, c.UpdatedAt = pos.StateOnTerminal, 4242, sent.UpdatedAt.Add(time.Second)
	}); err != nil {
		t.Fatal(err)
	}
	if err := queue.RewriteRecord(f.path, uint64(seqOfID(t, dup.ID)), func(c *pos.Checkout) {
		c.IdempotencyKey = f.byID[f.order[5]].IdempotencyKey
	}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "salvaged.db")
	rep, err := queue.Salvage(ctx, f.path, out, queue.SalvageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Damaged || len(rep.Lost) != 0 || len(rep.Resolved) != 2 || rep.Complete() {
		t.Fatalf("report: damaged=%v lost=%v resolved=%+v", rep.Damaged, rep.Lost, rep.Resolved)
	}
	s := MustOpenPath(t, out, queue.Options{})
	MustCheck(t, s)
	if c, ok, err := s.Active(ctx, sent.TerminalID); err != nil || !ok || c.ID != queued.ID {
		t.Fatalf("Active(%s) = %s %v %v, want %s (changed last)", sent.TerminalID, c.ID, ok, err, queued.ID)
	}
	if c, err := s.Get(ctx, sent.ID); err != nil || c.State != pos.StateExpired || c.InvoiceID != sent.InvoiceID ||
		!strings.Contains(c.History[len(c.History)-1].Reason, "two active") {
		t.Fatalf("the other active checkout: %+v %v", c, err)
	}
	if c, err := s.GetByIdempotencyKey(ctx, f.byID[f.order[5]].IdempotencyKey); err != nil || c.ID != f.order[5] {
		t.Fatalf("the shared key finds %s %v, want the first checkout %s", c.ID, err, f.order[5])
	}
	if c, err := s.Get(ctx, dup.ID); err != nil || c.IdempotencyKey != "" || c.State != dup.State {
		t.Fatalf("the second holder of the key: %+v %v", c, err)
	}
}
