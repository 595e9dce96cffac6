package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

func newReq(kind pos.RequestKind, key, body string) pos.Request {
	return pos.Request{Kind: kind, Gateway: "hesabe", IdempotencyKey: key, RequestHash: "h:" + body,
		Payload: json.RawMessage(body)}
}

func mustCreateReq(tb testing.TB, s *queue.Store, r pos.Request) pos.Request {
	tb.Helper()
	out, existing, err := s.CreateRequest(context.Background(), r, 0)
	if err != nil || existing {
		tb.Fatalf("CreateRequest(%s) = %v, existing %v", r.IdempotencyKey, err, existing)
	}
	return out
}

func mustCheckReq(tb testing.TB, s *queue.Store) {
	tb.Helper()
	if err := s.CheckRequests(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

func TestRequestIdempotency(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	first := mustCreateReq(t, s, newReq(pos.KindCustomer, "k1", `{"name":"أحمد"}`))
	if first.State != pos.RequestQueued || first.ID == "" || len(first.History) != 1 {
		t.Fatalf("created %+v", first)
	}
	again, existing, err := s.CreateRequest(ctx, newReq(pos.KindCustomer, "k1", `{"name":"أحمد"}`), 0)
	if err != nil || !existing || again.ID != first.ID {
		t.Fatalf("same request again = %s, %v, %v", again.ID, existing, err)
	}
	_, _, err = s.CreateRequest(ctx, newReq(pos.KindCustomer, "k1", `{"name":"other"}`), 0)
	wantCode(t, err, pos.EConflict)
	var pe *pos.Error
	if !errors.As(err, &pe) || pe.Field != "idempotency_key" {
		t.Fatalf("conflict error %#v", err)
	}
	// Keys are scoped by kind.
	other := mustCreateReq(t, s, newReq(pos.KindPayee, "k1", `{"x":1}`))
	if other.ID == first.ID {
		t.Fatal("a payee reused a customer's key and got the customer")
	}
	got, err := s.GetRequest(ctx, first.ID)
	if err != nil || string(got.Payload) != `{"name":"أحمد"}` || got.RequestHash != first.RequestHash {
		t.Fatalf("GetRequest = %+v, %v", got, err)
	}
	_, err = s.GetRequest(ctx, "rq_nope_1")
	wantCode(t, err, pos.ENotFound)
	mustCheckReq(t, s)
}

func TestRequestBadInput(t *testing.T) {
	s, _ := MustOpen(t)
	for name, r := range map[string]pos.Request{
		"no kind":    {Payload: json.RawMessage(`{}`)},
		"no payload": {Kind: pos.KindCustomer},
		"no hash":    {Kind: pos.KindCustomer, IdempotencyKey: "k", Payload: json.RawMessage(`{}`)},
	} {
		_, _, err := s.CreateRequest(context.Background(), r, 0)
		if pos.ErrorCode(err) != pos.EInvalid {
			t.Errorf("%s: error %v, want invalid", name, err)
		}
	}
}

func TestRequestLifecycle(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	a := mustCreateReq(t, s, newReq(pos.KindCustomer, "a", `{"n":1}`))
	clk.Add(time.Millisecond)
	b := mustCreateReq(t, s, newReq(pos.KindInstallments, "b", `{"n":2}`))

	due, err := s.DueRequests(ctx, "hesabe", clk.Now(), 10)
	if err != nil || len(due) != 2 || due[0].ID != a.ID || due[1].ID != b.ID {
		t.Fatalf("due = %v, %v", due, err)
	}
	st, _ := s.RequestStats(ctx)
	if st.Pending != 2 {
		t.Fatalf("pending %d", st.Pending)
	}

	// a: retryable failure, back to queued later; then success.
	mustReq(t, s, a.ID, pos.RequestSubmitting, nil)
	open, _ := s.SubmittingRequests(ctx, 10)
	if len(open) != 1 || open[0].ID != a.ID {
		t.Fatalf("submitting %v", open)
	}
	later := clk.Now().Add(time.Minute)
	mustReq(t, s, a.ID, pos.RequestQueued, func(r *pos.Request) error { r.NextAttemptAt = later; return nil })
	if due, _ := s.DueRequests(ctx, "hesabe", clk.Now(), 10); len(due) != 1 || due[0].ID != b.ID {
		t.Fatalf("due while a backs off = %v", due)
	}
	if at, ok, _ := s.NextRequestDue(ctx, "hesabe"); !ok || !at.Equal(b.NextAttemptAt) {
		t.Fatalf("next due %v %v", at, ok)
	}
	clk.Add(2 * time.Minute)
	mustReq(t, s, a.ID, pos.RequestSubmitting, nil)
	done := mustReq(t, s, a.ID, pos.RequestSucceeded, func(r *pos.Request) error {
		r.Result = json.RawMessage(`{"customer_id":"84220001"}`)
		return nil
	})
	if done.Attempts != 2 || done.FinishedAt.IsZero() || len(done.History) != 5 || string(done.Result) == "" {
		t.Fatalf("succeeded %+v", done)
	}
	// Final states never change.
	_, err = s.TransitionRequest(ctx, a.ID, pos.RequestQueued, "again", nil)
	wantCode(t, err, pos.EConflict)

	// b: canceled while queued.
	mustReq(t, s, b.ID, pos.RequestCanceled, nil)
	st, _ = s.RequestStats(ctx)
	if st.Pending != 0 || !st.NextDue.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	// A mutate error writes nothing.
	c := mustCreateReq(t, s, newReq(pos.KindPayee, "c", `{}`))
	_, err = s.TransitionRequest(ctx, c.ID, pos.RequestSubmitting, "x", func(*pos.Request) error {
		return pos.Errorf(pos.EConflict, "no")
	})
	wantCode(t, err, pos.EConflict)
	if got, _ := s.GetRequest(ctx, c.ID); got.State != pos.RequestQueued || got.Attempts != 0 {
		t.Fatalf("after a refused mutate: %+v", got)
	}
	mustCheckReq(t, s)

	// Listing: newest first, by kind, paged.
	all, next, err := s.RecentRequests(ctx, "", "", 2)
	if err != nil || len(all) != 2 || all[0].ID != c.ID || next != b.ID {
		t.Fatalf("recent page 1 = %v, %q, %v", all, next, err)
	}
	rest, next, _ := s.RecentRequests(ctx, "", next, 2)
	if len(rest) != 1 || rest[0].ID != a.ID || next != "" {
		t.Fatalf("recent page 2 = %v, %q", rest, next)
	}
	only, _, _ := s.RecentRequests(ctx, pos.KindInstallments, "", 10)
	if len(only) != 1 || only[0].ID != b.ID {
		t.Fatalf("recent installments = %v", only)
	}

	// Prune: finished ones past the retention go, with their keys.
	clk.Add(31 * 24 * time.Hour)
	n, more, err := s.PruneRequests(ctx, clk.Now())
	if err != nil || n != 2 || more {
		t.Fatalf("prune = %d, %v, %v", n, more, err)
	}
	if _, err := s.GetRequest(ctx, a.ID); pos.ErrorCode(err) != pos.ENotFound {
		t.Fatalf("pruned request still there: %v", err)
	}
	reused := mustCreateReq(t, s, newReq(pos.KindCustomer, "a", `{"n":9}`))
	if reused.ID == a.ID {
		t.Fatal("a pruned key returned the pruned request")
	}
	mustCheckReq(t, s)
}

func mustReq(tb testing.TB, s *queue.Store, id string, to pos.RequestState, f func(*pos.Request) error) pos.Request {
	tb.Helper()
	r, err := s.TransitionRequest(context.Background(), id, to, "test", f)
	if err != nil {
		tb.Fatalf("TransitionRequest(%s → %s): %v", id, to, err)
	}
	return r
}

func TestRequestPendingLimit(t *testing.T) {
	s, _ := MustOpen(t)
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := s.CreateRequest(ctx, newReq(pos.KindCustomer, fmt.Sprint(i), `{}`), 3); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := s.CreateRequest(ctx, newReq(pos.KindCustomer, "4", `{}`), 3)
	wantCode(t, err, pos.ELimit)
	// A retry of an accepted one is answered even at the limit.
	if _, existing, err := s.CreateRequest(ctx, newReq(pos.KindCustomer, "0", `{}`), 3); err != nil || !existing {
		t.Fatalf("retry at the limit = %v, %v", existing, err)
	}
}

// TestRequestConcurrentDurable: many concurrent creates are group-committed,
// and all of them are there after the file is closed and opened again.
func TestRequestConcurrentDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make([]string, 200)
	for i := range ids {
		wg.Go(func() {
			r, _, err := s.CreateRequest(context.Background(), newReq(pos.KindCustomer, fmt.Sprint(i), fmt.Sprintf(`{"i":%d}`, i)), 0)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = r.ID
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = MustOpenPath(t, path, queue.Options{})
	for i, id := range ids {
		r, err := s.GetRequest(context.Background(), id)
		if err != nil || string(r.Payload) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("request %d after reopen: %+v, %v", i, r, err)
		}
	}
	if st, _ := s.RequestStats(context.Background()); st.Pending != len(ids) {
		t.Fatalf("pending %d", st.Pending)
	}
	mustCheckReq(t, s)
}

// TestRequestDuePerGateway: one gateway's backlog never hides another's.
func TestRequestDuePerGateway(t *testing.T) {
	s, clk := MustOpen(t)
	ctx := context.Background()
	for i := range 5 {
		mustCreateReq(t, s, newReq(pos.KindCustomer, fmt.Sprint("h", i), `{}`))
	}
	clk.Add(time.Second)
	r := newReq(pos.KindCustomer, "p", `{}`)
	r.Gateway = "hitpay"
	p := mustCreateReq(t, s, r)
	got, err := s.DueRequests(ctx, "hitpay", clk.Now(), 2)
	if err != nil || len(got) != 1 || got[0].ID != p.ID {
		t.Fatalf("hitpay due = %v, %v", got, err)
	}
	if got, _ := s.DueRequests(ctx, "hesabe", clk.Now(), 2); len(got) != 2 || got[0].Gateway != "hesabe" {
		t.Fatalf("hesabe due = %v", got)
	}
	if got, _ := s.DueRequests(ctx, "hesab", clk.Now(), 10); len(got) != 0 {
		t.Fatalf("a gateway name's prefix matched another gateway: %v", got)
	}
	at, ok, _ := s.NextRequestDue(ctx, "hitpay")
	if !ok || !at.Equal(p.NextAttemptAt) {
		t.Fatalf("hitpay next due %v %v", at, ok)
	}
	st, _ := s.RequestStats(ctx)
	if st.Pending != 6 || !st.NextDue.Equal(p.NextAttemptAt.Add(-time.Second)) {
		t.Fatalf("stats %+v (hitpay at %v)", st, p.NextAttemptAt)
	}
	mustCheckReq(t, s)
}
