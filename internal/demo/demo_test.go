package demo_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

func TestStackPays(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logw *os.File
	if testing.Verbose() {
		logw = os.Stderr
	}
	opts := demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0", Delay: 100 * time.Millisecond,
		Script: map[string][]termsim.Action{demo.SerialTerminal: {termsim.Approve, termsim.Decline}}}
	if logw != nil {
		opts.Log = logw
	}
	s, err := demo.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		if err := s.Close(cctx); err != nil {
			t.Error(err)
		}
	}()
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	terms := []string{demo.MQTTTerminal}
	if s.SerialPort != "" {
		terms = append(terms, demo.SerialTerminal, demo.SerialTerminal)
	}
	for i, term := range terms {
		co, _, err := c.Create(ctx, fmt.Sprintf("demo-test-%d", i), api.CreateBody{TerminalID: term, Amount: "1.250", TillRef: fmt.Sprint("R-", i)})
		if err != nil {
			t.Fatal(err)
		}
		var seen []pos.State
		final, err := c.Follow(ctx, co.ID, func(c pos.Checkout) { seen = append(seen, c.State) })
		if err != nil {
			t.Fatal(err)
		}
		want := pos.StatePaid
		if i == 2 {
			want = pos.StateDeclined
		}
		if final.State != want {
			t.Fatalf("checkout %d on %s ended %s (%+v), want %s; seen %v", i, term, final.State, final.Result, want, seen)
		}
		if n := len(s.Sim.InvoicesByNumber(final.InvoiceNumber)); n != 1 {
			t.Fatalf("%d invoices for %s", n, final.InvoiceNumber)
		}
		t.Logf("%s: %v via %s", term, seen, final.Result.Source)
	}
}
