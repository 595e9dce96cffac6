package queue_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
)

// walReq is a checkout whose every field can be checked after a replay.
func walReq(i int) pos.Checkout {
	key := fmt.Sprintf("lane%d-%05d", i%4, i)
	return pos.Checkout{
		IdempotencyKey: key,
		RequestHash:    "sha256:" + key,
		TillRef:        "till/" + key,
		TerminalID:     fmt.Sprintf("2970845%d", i%5),
		Amount:         pos.Money(1000 + i),
		Customer:       pos.Customer{Name: "سلمان " + strconv.Itoa(i), Phone: "+96550000000"},
		Description:    "groceries",
		Deadline:       time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC),
	}
}

// createMany accepts walReq(from..to-1) from 8 goroutines, so groups hold
// several checkouts, and returns them by index.
func createMany(tb testing.TB, s *queue.Store, from, to int) map[int]pos.Checkout {
	tb.Helper()
	var mu sync.Mutex
	out := make(map[int]pos.Checkout)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += 8 {
				c, existing, err := s.Create(context.Background(), walReq(i))
				if err != nil || existing {
					errs <- fmt.Errorf("Create %d: existing=%v %v", i, existing, err)
					return
				}
				mu.Lock()
				out[i] = c
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	return out
}

// checkAll opens nothing: it checks that s holds exactly walReq(0..n-1),
// each under the id it was accepted with, and that every index agrees.
func checkAll(tb testing.TB, s *queue.Store, n int, ids map[int]string) {
	tb.Helper()
	ctx := context.Background()
	for i := range n {
		want := walReq(i)
		got, err := s.GetByIdempotencyKey(ctx, want.IdempotencyKey)
		if err != nil {
			tb.Fatalf("checkout %d (%s): %v", i, want.IdempotencyKey, err)
		}
		if id, ok := ids[i]; ok && got.ID != id {
			tb.Fatalf("checkout %d: id %s, accepted as %s", i, got.ID, id)
		}
		if got.State != pos.StateQueued || got.Amount != want.Amount || got.Customer != want.Customer ||
			got.TerminalID != want.TerminalID || got.RequestHash != want.RequestHash || got.TillRef != want.TillRef {
			tb.Fatalf("checkout %d: %+v", i, got)
		}
	}
	st, err := s.Stats(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if st.ByState[pos.StateQueued] != n {
		tb.Fatalf("stats: %d queued, want %d", st.ByState[pos.StateQueued], n)
	}
	MustCheck(tb, s)
}

// TestAcceptLogCrashChild accepts checkouts in a child process (this test
// binary run again) with the committer holding back part of them, so they
// exist only in the accept log, and SIGKILLs it. Opening the database
// applies them: every accepted checkout is there, under the id it was
// accepted with, and nothing else is.
func TestAcceptLogCrashChild(t *testing.T) {
	if path := os.Getenv("QUEUE_TEST_WAL_CHILD"); path != "" {
		s, err := queue.Open(path, queue.Options{})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		applied := createMany(t, s, 0, 150)
		if _, err := s.Stats(context.Background()); err != nil { // waits for the apply
			fmt.Println("error:", err)
			os.Exit(1)
		}
		queue.HoldApply(s, true)
		logged := createMany(t, s, 150, 400)
		for i := range 400 {
			c, ok := applied[i]
			if !ok {
				c = logged[i]
			}
			fmt.Printf("%d %s\n", i, c.ID)
		}
		fmt.Println("accepted")
		select {} // until killed
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	cmd := testutil.SelfCommand("-test.run=^TestAcceptLogCrashChild$")
	cmd.Env = append(os.Environ(), "QUEUE_TEST_WAL_CHILD="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	ids := make(map[int]string)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "accepted" {
		var i int
		var id string
		if _, err := fmt.Sscanf(sc.Text(), "%d %s", &i, &id); err != nil {
			t.Fatalf("child said %q", sc.Text())
		}
		ids[i] = id
	}
	if len(ids) != 400 {
		t.Fatalf("child accepted %d checkouts: %v", len(ids), sc.Err())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	fi, err := os.Stat(queue.AcceptLogPath(path))
	if err != nil || fi.Size() == 0 {
		t.Fatalf("accept log after the kill: %v, %v", fi, err)
	}

	var logged testutil.SyncBuffer
	s := MustOpenPath(t, path, queue.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if !strings.Contains(logged.String(), "checkouts=250") {
		t.Fatalf("open after the kill logged %q, want 250 checkouts applied from the log", logged.String())
	}
	checkAll(t, s, 400, ids)
	// The log goes on: a known key is answered, a new one follows.
	again, existing, err := s.Create(context.Background(), walReq(399))
	if err != nil || !existing || again.ID != ids[399] {
		t.Fatalf("known key after replay: %s existing=%v %v", again.ID, existing, err)
	}
	next := mustCreate(t, s, walReq(400))
	if next.ID == "" || next.ID == ids[399] {
		t.Fatalf("new checkout after replay: %s", next.ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(queue.AcceptLogPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("accept log after a clean close: %v (want none)", err)
	}
	s2 := MustOpenPath(t, path, queue.Options{})
	checkAll(t, s2, 401, ids)
}

// snapshot copies the database and its accept log while s is open with
// applying held: the files as a crash at that moment would leave them.
func snapshot(tb testing.TB, path string) (db, log []byte) {
	tb.Helper()
	db, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	log, err = os.ReadFile(queue.AcceptLogPath(path))
	if err != nil {
		tb.Fatal(err)
	}
	return db, log
}

func restore(tb testing.TB, db, log []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "queue.db")
	if err := os.WriteFile(path, db, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(queue.AcceptLogPath(path), log, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// crashImage accepts n checkouts, the last n-applied of them only into
// the log, and returns the files a crash would leave.
func crashImage(tb testing.TB, n, applied int) (db, log []byte, ids map[int]string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "queue.db")
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	ids = make(map[int]string)
	for i, c := range createMany(tb, s, 0, applied) {
		ids[i] = c.ID
	}
	if _, err := s.Stats(context.Background()); err != nil {
		tb.Fatal(err)
	}
	queue.HoldApply(s, true)
	for i, c := range createMany(tb, s, applied, n) {
		ids[i] = c.ID
	}
	db, log = snapshot(tb, path)
	queue.HoldApply(s, false)
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return db, log, ids
}

// frames returns the offsets of the accept log's frames from offset 0,
// up to the first that does not continue the sequence.
func frames(log []byte) []int {
	var out []int
	var prev uint64
	for off := 0; off+8 <= len(log); {
		if pad := 4096 - off%4096; pad < 4 && bytes.Count(log[off:off+pad], []byte{0}) == pad {
			off += pad // padding shorter than a length field (see replay)
			continue
		}
		n := int(binary.BigEndian.Uint32(log[off:]))
		if n == 0 {
			if off%4096 == 0 {
				break
			}
			off = (off/4096 + 1) * 4096
			continue
		}
		seq := binary.BigEndian.Uint64(log[off+12:])
		if prev != 0 && seq != prev+1 {
			break
		}
		prev = seq
		out = append(out, off)
		off += 8 + n
	}
	return out
}

// seqOfID is the sequence number at the end of a checkout id.
func seqOfID(tb testing.TB, id string) int {
	tb.Helper()
	n, err := strconv.Atoi(id[strings.LastIndexByte(id, '_')+1:])
	if err != nil {
		tb.Fatalf("id %q: %v", id, err)
	}
	return n
}

// TestAcceptLogTornTail: what follows the last flushed group is never
// applied: a half-written frame, a frame whose checksum fails (and what
// comes after it), zeros.
func TestAcceptLogTornTail(t *testing.T) {
	db, log, ids := crashImage(t, 60, 20)
	fr := frames(log)
	if len(fr) != 60 {
		t.Fatalf("%d frames in the log, want 60", len(fr))
	}
	t.Run("intact", func(t *testing.T) {
		s := MustOpenPath(t, restore(t, db, log), queue.Options{})
		checkAll(t, s, 60, ids)
	})
	t.Run("half a frame after the end", func(t *testing.T) {
		torn := append([]byte(nil), log...)
		last := fr[len(fr)-1]
		n := 8 + int(binary.BigEndian.Uint32(torn[last:]))
		end := last + n
		// A copy of the last frame's first half, past the end.
		copy(torn[end:], torn[last:last+n/2])
		s := MustOpenPath(t, restore(t, db, torn), queue.Options{})
		checkAll(t, s, 60, ids)
	})
	t.Run("bad checksum", func(t *testing.T) {
		// Damage the frame of sequence 46 (the first 20 are applied).
		torn := append([]byte(nil), log...)
		torn[fr[45]+20] ^= 0xff
		s := MustOpenPath(t, restore(t, db, torn), queue.Options{})
		ctx := context.Background()
		lost := -1
		for i := range 60 {
			seq := seqOfID(t, ids[i])
			_, err := s.GetByIdempotencyKey(ctx, walReq(i).IdempotencyKey)
			if (seq < 46) != (err == nil) {
				t.Fatalf("checkout %d (#%d): %v", i, seq, err)
			}
			if seq == 46 {
				lost = i
			}
		}
		MustCheck(t, s)
		// The next accept takes the first sequence the log did not apply.
		c := mustCreate(t, s, walReq(lost))
		if c.ID != ids[lost] {
			t.Fatalf("re-accepted checkout %d as %s, the lost one was %s", lost, c.ID, ids[lost])
		}
	})
}

// TestAcceptLogStaleTail: frames left behind the end of a log by a crash
// never join a later life's log. A crash may leave a group durable after
// one that is not (the device persisted its pages out of order); those
// frames were never acknowledged, so Open drops them, and they must not
// be picked up later because a new group happened to end just where they
// begin with the sequence they carry.
func TestAcceptLogStaleTail(t *testing.T) {
	// Two groups of one checkout each: #1 at page 0, #2 at page 1.
	path := filepath.Join(t.TempDir(), "queue.db")
	s := MustOpenPath(t, path, queue.Options{})
	queue.HoldApply(s, true)
	mustCreate(t, s, walReq(0))
	mustCreate(t, s, walReq(1))
	db, log := snapshot(t, path)
	queue.HoldApply(s, false)
	if fr := frames(log); len(fr) != 2 || fr[1] != 4096 {
		t.Fatalf("frames at %v, want [0 4096]", fr)
	}
	// The crash kept page 1 but not page 0.
	clear(log[:4096])
	path = restore(t, db, log)
	s = MustOpenPath(t, path, queue.Options{})
	if _, err := s.GetByIdempotencyKey(context.Background(), walReq(1).IdempotencyKey); pos.ErrorCode(err) != pos.ENotFound {
		t.Fatalf("checkout #2 behind a torn #1: %v", err)
	}
	// The next life's first checkout takes #1 again and fills page 0;
	// then it crashes too.
	queue.HoldApply(s, true)
	c := mustCreate(t, s, walReq(2))
	if seqOfID(t, c.ID) != 1 {
		t.Fatalf("first checkout after the crash is %s, want #1", c.ID)
	}
	db, log = snapshot(t, path)
	queue.HoldApply(s, false)
	s = MustOpenPath(t, restore(t, db, log), queue.Options{})
	ctx := context.Background()
	if got, err := s.GetByIdempotencyKey(ctx, walReq(2).IdempotencyKey); err != nil || got.ID != c.ID {
		t.Fatalf("the acknowledged checkout: %+v, %v", got, err)
	}
	if got, err := s.GetByIdempotencyKey(ctx, walReq(1).IdempotencyKey); pos.ErrorCode(err) != pos.ENotFound {
		t.Fatalf("a checkout never acknowledged came back from the old log: %+v, %v", got, err)
	}
	MustCheck(t, s)
}

// TestAcceptLogForeign: a log left by a crash beside a database that was
// replaced is refused, naming both, rather than applied or dropped.
func TestAcceptLogForeign(t *testing.T) {
	_, log, _ := crashImage(t, 10, 0)
	path := filepath.Join(t.TempDir(), "queue.db")
	s := MustOpenPath(t, path, queue.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(queue.AcceptLogPath(path), log, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := queue.Open(path, queue.Options{})
	if !errors.Is(err, queue.ErrAcceptLog) || !strings.Contains(err.Error(), "another database") {
		t.Fatalf("Open with a foreign accept log: %v", err)
	}
	t.Log(err)
}

// TestAcceptLogRestart runs the log past its restart size: writing goes
// back to offset 0 once everything is applied, and a crash image taken
// after that (old frames behind the new ones) still replays exactly.
func TestAcceptLogRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Frames are ~250 bytes: 24,000 checkouts pass 4 MiB.
	const n = 24000
	createMany(t, s, 0, n)
	if _, err := s.Stats(context.Background()); err != nil {
		t.Fatal(err)
	}
	queue.HoldApply(s, true)
	createMany(t, s, n, n+30)
	db, log := snapshot(t, path)
	queue.HoldApply(s, false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(log) < 4<<20 {
		t.Fatalf("log is %d bytes: it never passed its restart size", len(log))
	}
	if fr := frames(log); len(fr) == 0 || len(fr) > n/2 {
		t.Fatalf("%d frames from offset 0: the log did not restart", len(fr))
	}
	s2 := MustOpenPath(t, restore(t, db, log), queue.Options{})
	checkAll(t, s2, n+30, nil)
}

// TestAcceptLogReadsSeeAccepts: a read right after an accept returns sees
// it, whichever goroutine reads.
func TestAcceptLogReadsSeeAccepts(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 800; i += 8 {
				c, _, err := s.Create(ctx, walReq(i))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Get(ctx, c.ID)
				if err != nil || got.ID != c.ID {
					t.Errorf("Get right after Create: %v", err)
					return
				}
				if _, err := s.Transition(ctx, c.ID, pos.StateCanceled, "test", nil); err != nil {
					t.Errorf("Transition right after Create: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	MustCheck(t, s)
}

// FuzzAcceptLog opens a database whose accept log is the fuzzer's bytes:
// Open either refuses it with an error or applies a prefix of it, and
// then every index agrees with the records. It never panics. The seeds
// are a real log (12 checkouts, the last 8 not applied) and pieces of it.
// Fuzz with -fuzzminimizetime 2s (docs/queue.md): each run opens a
// database, and minimizing a new input for the default minute stalls it.
func FuzzAcceptLog(f *testing.F) {
	dir := f.TempDir()
	tmpl := filepath.Join(dir, "queue.db")
	s, err := queue.Open(tmpl, queue.Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	if err := queue.SetInstance(tmpl, [4]byte{0xc0, 0xff, 0xee, 0x01}); err != nil {
		f.Fatal(err)
	}
	db, err := os.ReadFile(tmpl)
	if err != nil {
		f.Fatal(err)
	}
	// A real log on that database: accept 12 with the last 8 held.
	seedPath := restore(f, db, nil)
	s, err = queue.Open(seedPath, queue.Options{})
	if err != nil {
		f.Fatal(err)
	}
	createMany(f, s, 0, 4)
	if _, err := s.Stats(context.Background()); err != nil {
		f.Fatal(err)
	}
	queue.HoldApply(s, true)
	createMany(f, s, 4, 12)
	_, log := snapshot(f, seedPath)
	queue.HoldApply(s, false)
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	used := log[:frames(log)[11]+300]
	f.Add(used)
	f.Add(used[:len(used)/2])
	f.Add(used[:4096])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, log []byte) {
		path := restore(t, db, log)
		s, err := queue.Open(path, queue.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			return
		}
		defer s.Close()
		MustCheck(t, s)
		st, err := s.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if q := st.ByState[pos.StateQueued]; q > 12 {
			t.Fatalf("%d checkouts applied from a log of at most 12", q)
		}
		// The log goes on after whatever was applied.
		mustCreate(t, s, walReq(1000))
	})
}

// TestAcceptLogLongBacklog: a backlog of more than one transaction's
// worth (applyMax, 4,096) is applied in several transactions, in order,
// as soon as it is let go.
func TestAcceptLogLongBacklog(t *testing.T) {
	s, _ := MustOpen(t)
	queue.HoldApply(s, true)
	createMany(t, s, 0, 6000)
	queue.HoldApply(s, false)
	checkAll(t, s, 6000, nil)
}

// TestAcceptLogDispatchReads: the dispatcher's reads (DueRefs, NextDue)
// and a Get of an applied checkout do not wait for the accept log, so a
// dispatcher woken by accepts does not force a database commit each;
// Applied signals when logged checkouts reach the database, and DueRefs
// sees them from then on.
func TestAcceptLogDispatchReads(t *testing.T) {
	s, clk := MustOpen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	applied := func() {
		t.Helper()
		select {
		case <-s.Applied():
		case <-ctx.Done():
			t.Fatal("no Applied signal")
		}
	}
	a := mustCreate(t, s, req("T1", "a", 100))
	applied() // a lone accept is applied at once
	queue.HoldApply(s, true)
	b := mustCreate(t, s, req("T2", "b", 100))

	got, err := s.Get(ctx, a.ID)
	if err != nil || got.ID != a.ID {
		t.Fatalf("Get(applied %s) while the log holds %s: %+v %v", a.ID, b.ID, got, err)
	}
	refs, err := s.DueRefs(ctx, clk.Now(), 10)
	if err != nil || len(refs) != 1 || refs[0].ID != a.ID {
		t.Fatalf("DueRefs with %s only in the log = %+v %v, want just %s", b.ID, refs, err, a.ID)
	}
	if _, ok, err := s.NextDue(ctx); !ok || err != nil {
		t.Fatalf("NextDue: %v %v", ok, err)
	}
	select {
	case <-s.Applied():
		t.Fatal("Applied signalled while nothing was applied")
	default:
	}

	queue.HoldApply(s, false)
	applied()
	refs, err = s.DueRefs(ctx, clk.Now(), 10)
	if err != nil || len(refs) != 2 || refs[1].ID != b.ID {
		t.Fatalf("DueRefs after Applied = %+v %v, want %s and %s", refs, err, a.ID, b.ID)
	}
}

// TestAcceptLogCanceledCalls: callers that give up (before the writer
// takes their call, or while its group is flushed) never stall the
// writer or the others; whatever they were told, a retry with the same
// key finds the checkout at most once, and the indexes agree.
func TestAcceptLogCanceledCalls(t *testing.T) {
	s, _ := MustOpen(t)
	var ok, canceled sync.Map
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 1600; i += 8 {
				ctx, cancel := context.WithCancel(context.Background())
				if i%3 == 0 {
					go cancel() // races the writer
				}
				c, _, err := s.Create(ctx, walReq(i))
				cancel()
				switch {
				case err == nil:
					ok.Store(i, c.ID)
				case errors.Is(err, context.Canceled):
					canceled.Store(i, true)
				default:
					t.Errorf("Create %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	n, dropped := 0, 0
	ok.Range(func(k, v any) bool {
		n++
		got, err := s.GetByIdempotencyKey(context.Background(), walReq(k.(int)).IdempotencyKey)
		if err != nil || got.ID != v.(string) {
			t.Errorf("accepted %d as %s: %+v %v", k, v, got.ID, err)
		}
		return true
	})
	canceled.Range(func(k, _ any) bool {
		dropped++
		c, existing, err := s.Create(context.Background(), walReq(k.(int)))
		if err != nil {
			t.Errorf("retry %d: %v", k, err)
		}
		if again, existing2, err := s.Create(context.Background(), walReq(k.(int))); err != nil || !existing2 || again.ID != c.ID {
			t.Errorf("second retry %d: %s existing=%v %v (first %s existing=%v)", k, again.ID, existing2, err, c.ID, existing)
		}
		return true
	})
	if n+dropped != 1600 || dropped == 0 {
		t.Fatalf("%d accepted + %d canceled, want 1600 with some canceled", n, dropped)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(context.Background())
	if err != nil || st.ByState[pos.StateQueued] != 1600 {
		t.Fatalf("stats %+v %v, want 1600 queued after the retries", st, err)
	}
	t.Logf("%d accepted, %d canceled then retried", n, dropped)
}

// TestAcceptLogShortPadding: a group whose frames end one byte before a
// page boundary is padded with that one zero byte, so the length field
// read there takes three bytes of the next group's first frame. A frame
// of 256 bytes or more has a non-zero byte among them: the replay took
// the padding for a torn frame and dropped every group after it, all of
// them acknowledged. A frame that really starts one byte before a page
// boundary, inside a group, is still read as the frame it is.
func TestAcceptLogShortPadding(t *testing.T) {
	clk := newClock()
	withDesc := func(i, n int) pos.Checkout {
		c := walReq(i)
		c.Description = strings.Repeat("d", n)
		return c
	}
	// The frame of walReq(0) with a 1,000-byte description, measured.
	path := filepath.Join(t.TempDir(), "queue.db")
	s := MustOpenPath(t, path, queue.Options{Now: clk.Now})
	queue.HoldApply(s, true)
	mustCreate(t, s, withDesc(0, 1000))
	_, log := snapshot(t, path)
	queue.HoldApply(s, false)
	measured := 8 + int(binary.BigEndian.Uint32(log))

	// Two groups of one checkout each: the first frame ends at 4095 (one
	// byte of padding), the second is a ~500-byte frame at 4096.
	path = filepath.Join(t.TempDir(), "queue.db")
	s = MustOpenPath(t, path, queue.Options{Now: clk.Now})
	queue.HoldApply(s, true)
	a := mustCreate(t, s, withDesc(0, 1000+4095-measured))
	b := mustCreate(t, s, withDesc(1, 300))
	db, log := snapshot(t, path)
	queue.HoldApply(s, false)
	if n := 8 + binary.BigEndian.Uint32(log); n != 4095 || log[4095] != 0 {
		t.Fatalf("first frame is %d bytes (and %d after it); want 4095 and one zero byte", n, log[4095])
	}
	if n := binary.BigEndian.Uint32(log[4096:]); n < 256 {
		t.Fatalf("second frame is %d bytes; want at least 256", n)
	}

	t.Run("two groups", func(t *testing.T) {
		s := MustOpenPath(t, restore(t, db, log), queue.Options{Now: clk.Now})
		for _, c := range []pos.Checkout{a, b} {
			if got, err := s.Get(context.Background(), c.ID); err != nil || got.IdempotencyKey != c.IdempotencyKey {
				t.Fatalf("acknowledged checkout %s after the crash: %+v, %v", c.ID, got.IdempotencyKey, err)
			}
		}
		MustCheck(t, s)
	})
	t.Run("one group", func(t *testing.T) {
		// The same two frames back to back, as one group would hold them:
		// the second starts at 4095.
		one := append([]byte(nil), log...)
		n := 8 + int(binary.BigEndian.Uint32(log[4096:]))
		copy(one[4095:], log[4096:4096+n])
		clear(one[4095+n : 4096+n])
		s := MustOpenPath(t, restore(t, db, one), queue.Options{Now: clk.Now})
		for _, c := range []pos.Checkout{a, b} {
			if got, err := s.Get(context.Background(), c.ID); err != nil || got.IdempotencyKey != c.IdempotencyKey {
				t.Fatalf("acknowledged checkout %s after the crash: %+v, %v", c.ID, got.IdempotencyKey, err)
			}
		}
		MustCheck(t, s)
	})
}

// TestAcceptLogWriteBehindLongBacklog: a write sees every checkout whose
// accept returned before it was made, even with more of them waiting to
// be applied than one transaction applies (applyMax, 4,096). Before, the
// committer ran the call in the transaction that applied the first 4,096
// and a transition of a later one failed with "no checkout".
func TestAcceptLogWriteBehindLongBacklog(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	queue.HoldApply(s, true)
	const n = 4200
	created := createMany(t, s, 0, n)
	var late []pos.Checkout // those past the first transaction's 4,096
	for _, c := range created {
		if seqOfID(t, c.ID) > 4096 {
			late = append(late, c)
		}
	}
	if len(late) != n-4096 {
		t.Fatalf("%d checkouts past #4096, want %d", len(late), n-4096)
	}
	queue.HoldApply(s, false)
	for _, c := range late {
		if _, err := s.Transition(ctx, c.ID, pos.StateCanceled, "test", nil); err != nil {
			t.Fatalf("Transition(%s) after its Create returned: %v", c.ID, err)
		}
	}
	MustCheck(t, s)
}

// TestAcceptLogHugeCheckout: a checkout is either refused or survives a
// crash. The replay takes a frame over 16 MiB for a torn one; Create
// used to log and acknowledge such a checkout all the same, and it was
// gone after a crash.
func TestAcceptLogHugeCheckout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queue.db")
	s := MustOpenPath(t, path, queue.Options{})
	queue.HoldApply(s, true)
	huge := walReq(0)
	huge.Description = strings.Repeat("d", 17<<20)
	c, _, err := s.Create(context.Background(), huge)
	if err != nil {
		queue.HoldApply(s, false)
		if pos.ErrorCode(err) != pos.EInvalid {
			t.Fatalf("Create of a 17 MiB checkout: %v, want accepted or %s", err, pos.EInvalid)
		}
		return
	}
	db, log := snapshot(t, path)
	queue.HoldApply(s, false)
	s = MustOpenPath(t, restore(t, db, log), queue.Options{})
	if _, err := s.Get(context.Background(), c.ID); err != nil {
		t.Fatalf("acknowledged checkout %s after the crash: %v", c.ID, err)
	}
}

// TestAcceptLogOpenedWithoutLog: a store opened with NoAcceptLog after a
// crash applies the accept log it finds first. Before, it ignored the
// log: the acknowledged checkouts in it were missing, new ones took
// their sequences (ids and invoice numbers), and the next Open with the
// log skipped them as applied.
func TestAcceptLogOpenedWithoutLog(t *testing.T) {
	db, log, ids := crashImage(t, 10, 4)
	path := restore(t, db, log)
	s, err := queue.Open(path, queue.Options{NoAcceptLog: true})
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, s, 10, ids)
	c := mustCreate(t, s, walReq(10))
	if seqOfID(t, c.ID) != 11 {
		t.Fatalf("the next checkout is %s, want #11", c.ID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = MustOpenPath(t, path, queue.Options{})
	checkAll(t, s, 11, ids)
}
