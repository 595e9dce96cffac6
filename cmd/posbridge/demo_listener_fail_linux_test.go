package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/testutil"
)

// TestDemoExitsWhenListenerFails: `posbridge demo` whose till API
// listener dies while it waits for the user's checkouts exits 1 naming
// the till API, as `posbridge run` does. Before, the failure was only
// logged (and at the demo's default level, not even shown) and the demo
// went on printing commands nobody could reach.
func TestDemoExitsWhenListenerFails(t *testing.T) {
	apiAddr, diagAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.SyncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runDemo(ctx, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr},
			[]string{"--api", apiAddr, "--diag", diagAddr, "--delay", "100ms", "--data-dir", t.TempDir()})
	}()
	waitFor(t, "the demo's sample checkout", 60*time.Second, func() bool {
		return strings.Contains(stdout.String(), "Try it yourself")
	})
	testutil.BreakListener(t, apiAddr)

	wantExitFailure(t, "posbridge demo", code, cancel, &stderr)
	if out := stderr.String(); !strings.Contains(out, "till API on "+apiAddr+" stopped accepting connections") {
		t.Errorf("stderr does not name the failed till API:\n%s", out)
	}
}
