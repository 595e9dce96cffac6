package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// TestCancelFinalStates: what POST /v1/checkouts/{id}/cancel answers for
// a checkout that has ended, against a real daemon, and that
// docs/openapi.yaml says so. The spec named only paid (409), but a
// declined (or expired, failed) checkout is a 409 too, and a canceled
// one answers 200 with the checkout, so a till may repeat a cancel.
func TestCancelFinalStates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := demo.Start(ctx, demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0", NoSerial: true,
		Delay: 1500 * time.Millisecond, Script: map[string][]termsim.Action{demo.MQTTTerminal: {termsim.Decline, termsim.Approve, termsim.Approve}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		_ = s.Close(cctx)
	})
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	pay := func(key string) pos.Checkout {
		t.Helper()
		co, _, err := c.Create(ctx, key, api.CreateBody{TerminalID: demo.MQTTTerminal, Amount: "1.250"})
		if err != nil {
			t.Fatal(err)
		}
		return co
	}
	follow := func(co pos.Checkout) pos.Checkout {
		t.Helper()
		final, err := c.Follow(ctx, co.ID, func(pos.Checkout) {})
		if err != nil {
			t.Fatal(err)
		}
		return final
	}

	for _, want := range []pos.State{pos.StateDeclined, pos.StatePaid} {
		co := follow(pay("final-" + string(want)))
		if co.State != want {
			t.Fatalf("checkout ended %s, want %s", co.State, want)
		}
		_, err := c.Cancel(ctx, co.ID)
		var ae *api.APIError
		if !errors.As(err, &ae) || ae.Status != 409 || ae.Code != pos.EConflict || !strings.Contains(ae.Message, "already "+string(want)) {
			t.Errorf("cancel a %s checkout: %v; want 409 conflict saying it is already %s", want, err, want)
		}
	}

	// Canceled once on the terminal, which confirms at once. (A cancel
	// before the terminal has shown it waits for the cancel grace.)
	co := pay("final-canceled")
	for co.State != pos.StateOnTerminal {
		if co, err = c.Wait(ctx, co.ID, co.UpdatedAt, 5*time.Second); err != nil || co.State.Final() {
			t.Fatalf("waiting for on_terminal: %+v %v", co, err)
		}
	}
	if _, err := c.Cancel(ctx, co.ID); err != nil {
		t.Fatal(err)
	}
	if co = follow(co); co.State != pos.StateCanceled {
		t.Fatalf("canceled checkout ended %s", co.State)
	}
	again, err := c.Cancel(ctx, co.ID)
	if err != nil || again.ID != co.ID || again.State != pos.StateCanceled {
		t.Errorf("cancel a canceled checkout = %+v, %v; want 200 with the checkout", again, err)
	}

	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			Description string `yaml:"description"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(spec.Paths["/v1/checkouts/{id}/cancel"]["post"].Description), " ")
	for _, says := range []string{"`paid`, `declined`, `expired` or `failed` is a 409", "already `canceled` answers 200"} {
		if !strings.Contains(doc, says) {
			t.Errorf("openapi.yaml's cancelCheckout does not say %q:\n%s", says, doc)
		}
	}
}
