package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// writeV1 writes a schema version 1 file the way the previous release did:
// JSON records (format 1) and its index layout (per-terminal FIFO keys, an
// unsent bucket, active and dueterm buckets). Only the test knows that
// layout now; it is written out here independently of migrate.go.
func writeV1(t *testing.T, path, inst string, cs []pos.Checkout) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		bk := map[string]*bolt.Bucket{}
		for _, name := range []string{"meta", "checkout", "idem", "fifo", "unsent", "due", "dueterm", "active", "deadline", "done"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			bk[name] = b
		}
		id, _ := hex.DecodeString(inst)
		bk["meta"].Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 1))
		bk["meta"].Put([]byte("instance"), id)
		var stats [numSlots + 1]int64
		heads := map[string][]byte{} // terminal → first fifo key
		for i, c := range cs {
			seq := uint64(i + 1)
			sk := seqKey(seq)
			stored := recordJSON{Checkout: c, RequestHash: c.RequestHash}
			stored.ID, stored.InvoiceNumber = "", ""
			j, err := json.Marshal(&stored)
			if err != nil {
				return err
			}
			bk["checkout"].Put(sk, append([]byte{formatJSON}, j...))
			if c.IdempotencyKey != "" {
				bk["idem"].Put([]byte(c.IdempotencyKey), sk)
			}
			if isUnsent(c.State) {
				bk["unsent"].Put(sk, nil)
				stats[numSlots] += int64(c.Amount)
			}
			if c.State == pos.StateQueued {
				fk := binary.BigEndian.AppendUint64(append([]byte(c.TerminalID), 0), seq)
				bk["fifo"].Put(fk, timeBytes(c.NextAttemptAt))
				if heads[c.TerminalID] == nil {
					heads[c.TerminalID] = fk
				}
			}
			if isActive(c.State) {
				bk["active"].Put([]byte(c.TerminalID), sk)
			}
			if c.State.Final() {
				bk["done"].Put(timeSeqKey(c.UpdatedAt, seq), nil)
			} else {
				bk["deadline"].Put(timeSeqKey(c.Deadline, seq), nil)
			}
			stats[slot(c.State)]++
		}
		for term, fk := range heads {
			if bk["active"].Get([]byte(term)) != nil {
				continue
			}
			key := append(slices.Clone(bk["fifo"].Get(fk)), fk[len(fk)-8:]...)
			bk["due"].Put(key, []byte(term))
			bk["dueterm"].Put([]byte(term), key)
		}
		var v []byte
		for _, n := range stats {
			v = binary.BigEndian.AppendUint64(v, uint64(n))
		}
		bk["meta"].Put([]byte("stats"), v)
		return bk["checkout"].SetSequence(uint64(len(cs)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestMigrateV1(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	clock := at.Add(time.Minute)
	mk := func(term, key string, st pos.State, minute int) pos.Checkout {
		c := pos.Checkout{IdempotencyKey: key, RequestHash: "h-" + key, TillRef: "lane1/" + key, TerminalID: term,
			Amount: pos.Money(100 * (minute + 1)), Customer: pos.Customer{Name: "Salman", Phone: "+96550000000"},
			Description: "groceries", State: pos.StateQueued, CreatedAt: at.Add(time.Duration(minute) * time.Second),
			Deadline: at.Add(time.Hour), NextAttemptAt: at.Add(time.Duration(minute) * time.Second)}
		c.UpdatedAt = c.CreatedAt
		c.History = []pos.Transition{{At: c.CreatedAt, To: pos.StateQueued, Reason: "accepted"}}
		for _, s := range map[pos.State][]pos.State{
			pos.StateSubmitting: {pos.StateSubmitting},
			pos.StateSent:       {pos.StateSubmitting, pos.StateSent},
			pos.StatePaid:       {pos.StateSubmitting, pos.StateSent, pos.StatePaid},
			pos.StateExpired:    {pos.StateSubmitting, pos.StateSent, pos.StateExpired},
		}[st] {
			c.History = append(c.History, pos.Transition{At: c.UpdatedAt.Add(time.Second), From: c.State, To: s, Reason: "step"})
			c.UpdatedAt = c.UpdatedAt.Add(time.Second)
			if s == pos.StateSubmitting {
				c.Attempts++
			}
			if s == pos.StateSent {
				c.InvoiceID, c.TransactionID = int64(9000+minute), "TX-"+key
			}
			c.State = s
		}
		if st.Final() {
			c.Result = &pos.Result{Outcome: pos.OutcomeApproved, Source: "terminal", At: c.UpdatedAt}
		}
		return c
	}
	v1 := []pos.Checkout{
		mk("T1", "k1", pos.StateSubmitting, 1), // #1
		mk("T1", "k2", pos.StateQueued, 2),     // #2
		mk("T1", "k3", pos.StateQueued, 3),     // #3
		mk("T2", "k4", pos.StateSent, 4),       // #4
		mk("T2", "k5", pos.StateQueued, 5),     // #5
		mk("T3", "k6", pos.StatePaid, 6),       // #6
		mk("T4", "k7", pos.StateQueued, 7),     // #7
		mk("T4", "", pos.StateQueued, 8),       // #8, no key
		mk("T5", "k9", pos.StateExpired, 9),    // #9
		mk("T1", "k10", pos.StateQueued, 10),   // #10
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	writeV1(t, path, "0a1b2c3d", v1)

	s, err := Open(path, Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	check := func() {
		t.Helper()
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check()
	s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get(kSchema); binary.BigEndian.Uint32(v) != 2 {
			t.Errorf("schema %x after the upgrade", v)
		}
		for _, name := range []string{"fifo", "unsent", "active", "dueterm"} {
			if tx.Bucket([]byte(name)) != nil {
				t.Errorf("version 1 bucket %s left behind", name)
			}
		}
		return nil
	})
	// Every record reads back as it was written.
	for i, want := range v1 {
		seq := uint64(i + 1)
		want.ID, want.InvoiceNumber = s.formatID(seq), s.formatInvoice(seq)
		got, err := s.Get(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if !bytes.Equal(gj, wj) || got.RequestHash != want.RequestHash {
			t.Fatalf("#%d after the upgrade:\n got %s\nwant %s", seq, gj, wj)
		}
	}
	id := func(seq uint64) string { return s.formatID(seq) }
	waiting := func(term string) []string {
		t.Helper()
		cs, err := s.Waiting(ctx, term, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		return idsOf(cs)
	}
	due := func() []string {
		t.Helper()
		cs, err := s.Due(ctx, clock, 10)
		if err != nil {
			t.Fatal(err)
		}
		return idsOf(cs)
	}
	if got, want := waiting("T1"), []string{id(2), id(3), id(10)}; !slices.Equal(got, want) {
		t.Fatalf("T1 waiting %v, want %v", got, want)
	}
	if got, want := due(), []string{id(7)}; !slices.Equal(got, want) {
		t.Fatalf("due %v, want %v", got, want)
	}
	act, err := s.ActiveAll(ctx)
	if err != nil || !slices.Equal(idsOf(act), []string{id(1), id(4)}) {
		t.Fatalf("active %v %v", idsOf(act), err)
	}
	st, err := s.Stats(ctx)
	if err != nil || st.Unsent != 7 || st.UnsentAmount != 100*(2+3+4+6+8+9+11) || !st.OldestUnsent.Equal(v1[0].CreatedAt) {
		t.Fatalf("stats %+v %v", st, err)
	}

	// The engine goes on where the old release stopped: the submitting one
	// returns to the head of its FIFO, the sent one is paid (its terminal's
	// head becomes due), a new one joins the tail.
	if _, err := s.Transition(ctx, id(1), pos.StateQueued, "retry", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, id(4), pos.StatePaid, "paid", nil); err != nil {
		t.Fatal(err)
	}
	n, _, err := s.Create(ctx, pos.Checkout{IdempotencyKey: "k11", RequestHash: "h", TerminalID: "T1", Amount: 5, Deadline: at.Add(time.Hour)})
	if err != nil || n.ID != id(11) {
		t.Fatalf("create after the upgrade: %s %v", n.ID, err)
	}
	if _, existing, err := s.Create(ctx, pos.Checkout{IdempotencyKey: "k2", RequestHash: "h-k2", TerminalID: "T1", Amount: 300, Deadline: at.Add(time.Hour)}); err != nil || !existing {
		t.Fatalf("a version 1 key is still known: %v %v", existing, err)
	}
	check()
	if got, want := waiting("T1"), []string{id(1), id(2), id(3), id(10), id(11)}; !slices.Equal(got, want) {
		t.Fatalf("T1 waiting %v, want %v", got, want)
	}
	if got, want := due(), []string{id(1), id(5), id(7)}; !slices.Equal(got, want) {
		t.Fatalf("due %v, want %v", got, want)
	}
	// Changed records are written in the binary format; the others stay
	// JSON until they change.
	s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bCheckouts)
		for seq, want := range map[uint64]byte{1: formatBinary, 2: formatJSON, 4: formatBinary, 11: formatBinary} {
			if got := b.Get(seqKey(seq))[0]; got != want {
				t.Errorf("#%d has format %d, want %d", seq, got, want)
			}
		}
		return nil
	})
	// Reopened, it is a version 2 file: nothing to upgrade.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check()
}

func idsOf(cs []pos.Checkout) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// TestMigrateV1Many upgrades a larger version 1 file — thousands of queued
// checkouts interleaved over terminals of different lengths, some with an
// active checkout — and checks every FIFO and the due list.
func TestMigrateV1Many(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	terms := []string{"T", "T1", "T10", "T1a", "T2", "ت", "29708454", "T\x01x", "U"}
	rng := rand.New(rand.NewPCG(3, 4))
	var cs []pos.Checkout
	want := map[string][]uint64{}
	busy := map[string]bool{}
	for i := range 3000 {
		term := terms[rng.IntN(len(terms))]
		st := pos.StateQueued
		if !busy[term] && rng.IntN(50) == 0 {
			st, busy[term] = pos.StateSent, true
		} else if rng.IntN(20) == 0 {
			st = pos.StatePaid
		}
		c := pos.Checkout{IdempotencyKey: fmt.Sprint("k", i), RequestHash: "h", TerminalID: term, Amount: 1,
			State: st, CreatedAt: at, UpdatedAt: at, Deadline: at.Add(time.Hour),
			NextAttemptAt: at.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)}
		if st == pos.StateQueued {
			want[term] = append(want[term], uint64(i+1))
		}
		cs = append(cs, c)
	}
	path := filepath.Join(t.TempDir(), "queue.db")
	writeV1(t, path, "0a1b2c3d", cs)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	var wantDue []string
	for _, term := range terms {
		var ids []string
		for _, seq := range want[term] {
			ids = append(ids, s.formatID(seq))
		}
		got, err := s.Waiting(ctx, term, "", 10000)
		if err != nil || !slices.Equal(idsOf(got), ids) {
			t.Fatalf("%q waiting: %d checkouts, %v; want %d", term, len(got), err, len(ids))
		}
		if !busy[term] && len(ids) > 0 {
			wantDue = append(wantDue, ids[0])
		}
	}
	due, err := s.Due(ctx, at.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	got := idsOf(due)
	slices.Sort(got)
	slices.Sort(wantDue)
	if !slices.Equal(got, wantDue) {
		t.Fatalf("due %v, want %v", got, wantDue)
	}
}
