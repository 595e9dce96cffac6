package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
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
