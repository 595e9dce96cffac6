package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// TestLongPollFinalWithSince: a long poll on a checkout that is already
// final returns at once, also when the till passes the since it has seen
// (docs/openapi.yaml: "a final checkout returns at once"). It used to wait
// the whole wait for a change that can never come.
func TestLongPollFinalWithSince(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	co, _, err := c.Create(ctx, "longpoll-final", api.CreateBody{TerminalID: "29708454", Amount: "1.250"})
	if err != nil {
		t.Fatal(err)
	}
	final, err := c.Follow(ctx, co.ID, func(pos.Checkout) {})
	if err != nil || final.State != pos.StatePaid {
		t.Fatalf("follow: %s, %v", final.State, err)
	}
	// The server waits at most 60 s; a final checkout must not take the
	// 20 s this call allows, whatever the machine's load.
	waitCtx, waitCancel := context.WithTimeout(ctx, 20*time.Second)
	defer waitCancel()
	got, err := c.Wait(waitCtx, co.ID, final.UpdatedAt, 60*time.Second)
	if err != nil {
		t.Fatalf("long poll on a paid checkout with since = its updated_at: %v", err)
	}
	if got.State != pos.StatePaid || !got.UpdatedAt.Equal(final.UpdatedAt) {
		t.Fatalf("long poll = %s at %v, want paid at %v", got.State, got.UpdatedAt, final.UpdatedAt)
	}
}

// TestLongPollHugeWait: a wait given in seconds too large for a duration
// is the longest wait, not none. 9223372036854775807 seconds wrapped
// around to -1 s, so the long poll answered at once, unchanged: a till
// looping on it would hammer the bridge.
func TestLongPollHugeWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, c, co := silentCheckout(ctx, t, "longpoll-huge")
	var err error
	// The silent terminal never answers: once sent, nothing changes it
	// but the cancel below.
	for co.State != pos.StateSent {
		if co, err = c.Wait(ctx, co.ID, co.UpdatedAt, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	type answer struct {
		co  pos.Checkout
		err error
	}
	polled := make(chan answer, 1)
	go func() {
		var got pos.Checkout
		resp := call(t, s, http.MethodGet, "/v1/checkouts/"+co.ID+"?wait=9223372036854775807&since="+url.QueryEscape(co.UpdatedAt.Format(time.RFC3339Nano)), "", "", &got)
		var err error
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		polled <- answer{got, err}
	}()
	// Only a poll that does not wait answers before the change.
	select {
	case a := <-polled:
		t.Fatalf("the poll answered before any change: %s at %v (%v)", a.co.State, a.co.UpdatedAt, a.err)
	case <-time.After(time.Second):
	}
	// The cancel call itself waits for the silent terminal to take the
	// cancel request; the change is committed before, and the call is
	// given up once the poll has seen it.
	cancelCtx, stopCancel := context.WithCancel(ctx)
	canceled := make(chan struct{})
	go func() {
		defer close(canceled)
		_, _ = c.Cancel(cancelCtx, co.ID)
	}()
	defer func() {
		stopCancel()
		<-canceled
	}()
	select {
	case a := <-polled:
		if a.err != nil || !a.co.UpdatedAt.After(co.UpdatedAt) {
			t.Fatalf("the poll answered %s at %v (%v), want the change after %v", a.co.State, a.co.UpdatedAt, a.err, co.UpdatedAt)
		}
	case <-ctx.Done():
		t.Fatal("the poll did not answer the change")
	}
}

// TestFollowStopsOnRefusal: Client.Follow (what `posbridge pay` waits
// with) retries a failed poll while the bridge restarts, but an answer
// that retrying cannot change (here a 401: the token was rotated) ends it
// with that error. Before, it polled every second until its context
// ended, and `pay` hung saying nothing.
func TestFollowStopsOnRefusal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, c, co := silentCheckout(ctx, t, "follow-refused")
	fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
	defer fcancel()
	_, err := c.Follow(fctx, co.ID, func(pos.Checkout) { c.Token = "rotated-away-0123456789" })
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("Follow ended with %v, want the 401", err)
	}
}

// silentCheckout starts a stack whose terminals never answer and creates
// a checkout with key on its MQTT terminal: nothing but the till changes it
// once it is sent.
func silentCheckout(ctx context.Context, t *testing.T, key string) (*demo.Stack, *api.Client, pos.Checkout) {
	t.Helper()
	s := startStack(t, func(o *demo.Options) { o.Mode = termsim.Silent })
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	co, _, err := c.Create(ctx, key, api.CreateBody{TerminalID: demo.MQTTTerminal, Amount: "1.250"})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, co
}
