package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// TestCheckoutsCommand runs `posbridge checkouts` against a real daemon
// (the demo stack: simulator, embedded broker, an MQTT terminal that never
// answers, so checkouts stay open). Flags may come before or after the
// subcommand, as the README writes them: `checkouts --config F show ID`
// must show, and `... cancel ID` must cancel, never fall back to a list.
func TestCheckoutsCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := silentStack(ctx, t)
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	create := func(key string) pos.Checkout {
		t.Helper()
		co, _, err := c.Create(ctx, key, api.CreateBody{TerminalID: demo.MQTTTerminal, Amount: "1.250", TillRef: key})
		if err != nil {
			t.Fatal(err)
		}
		return co
	}
	first, second := create("cli-1"), create("cli-2")
	till := []string{"--url", s.Daemon.APIURL(), "--token", s.Token}
	cli := func(args ...string) (int, string, string) { return runCLI(t, "", args...) }

	t.Run("list", func(t *testing.T) {
		for _, args := range [][]string{
			append([]string{"checkouts"}, till...),
			append([]string{"checkouts", "list"}, till...),
			append(append([]string{"checkouts"}, till...), "list"),
		} {
			code, out, errs := cli(args...)
			if code != exitOK || !strings.Contains(out, first.ID) || !strings.Contains(out, second.ID) {
				t.Fatalf("%v: code %d out %q err %q", args, code, out, errs)
			}
		}
	})
	t.Run("show with flags first", func(t *testing.T) {
		code, out, errs := cli(append(append([]string{"checkouts"}, till...), "show", first.ID, "--json")...)
		var got pos.Checkout
		if code != exitOK || json.Unmarshal([]byte(out), &got) != nil || got.ID != first.ID {
			t.Fatalf("code %d out %q err %q", code, out, errs)
		}
	})
	t.Run("cancel with flags first", func(t *testing.T) {
		code, out, errs := cli(append(append([]string{"checkouts"}, till...), "cancel", second.ID)...)
		if code != exitOK || !strings.HasPrefix(out, second.ID) || strings.Contains(out, first.ID) {
			t.Fatalf("code %d out %q err %q", code, out, errs)
		}
		got, err := c.Get(ctx, second.ID)
		if err != nil || !(got.CancelRequested || got.State == pos.StateCanceled) {
			t.Fatalf("the cancel did not reach the bridge: %+v %v", got, err)
		}
		if got, _ := c.Get(ctx, first.ID); got.CancelRequested || got.State == pos.StateCanceled {
			t.Fatalf("the other checkout was canceled: %+v", got)
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			append([]string{"checkouts", "show"}, till...),
			append([]string{"checkouts", "list", "extra"}, till...),
			append(append([]string{"checkouts"}, till...), "cancel", first.ID, second.ID),
			append(append([]string{"checkouts"}, till...), "refund", first.ID),
		} {
			if code, out, errs := cli(args...); code != exitUsage || out != "" || errs == "" {
				t.Errorf("%v: code %d out %q err %q, want a usage error", args, code, out, errs)
			}
		}
		if got, _ := c.Get(ctx, first.ID); got.CancelRequested || got.State == pos.StateCanceled {
			t.Fatalf("a refused command canceled a checkout: %+v", got)
		}
	})
}

// silentStack starts the demo stack (no serial terminal) with terminals
// that never answer, so checkouts stay open; it is closed when t ends.
func silentStack(ctx context.Context, t *testing.T) *demo.Stack {
	t.Helper()
	s, err := demo.Start(ctx, demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0", NoSerial: true, Mode: termsim.Silent})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		_ = s.Close(cctx)
	})
	return s
}
