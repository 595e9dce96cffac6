package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
)

// TestBusyTerminalPaysWhenFree, end to end over the embedded broker: a
// terminal showing a payment the bridge did not send (a sale keyed on the
// terminal itself) refuses the till's invoice as busy. The till sees why
// its checkout waits (last_error names the busy terminal), and once that
// payment ends and the terminal reports idle, the bridge offers the
// invoice again and it is paid. Before, the refusal was only logged: the
// checkout stayed sent, saying nothing, until its deadline.
func TestBusyTerminalPaysWhenFree(t *testing.T) {
	s := startStack(t, func(o *demo.Options) { o.Delay = 2 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	// The terminal's own sale: on screen for the simulated customer's
	// two seconds.
	foreign := terminal.InvoicePush{TransactionID: "900000001", InvoiceNumber: "KEYED-ON-TERMINAL-1",
		Amount: 3000, Deadline: time.Now().Add(time.Minute)}
	if err := s.Daemon.Hub().PushInvoice(ctx, demo.MQTTTerminal, foreign); err != nil {
		t.Fatal(err)
	}

	c := s.Client()
	co, _, err := c.Create(ctx, "busy-e2e-1", api.CreateBody{TerminalID: demo.MQTTTerminal, Amount: "1.250"})
	if err != nil {
		t.Fatal(err)
	}
	var noted pos.Checkout
	for noted.LastError == "" {
		if noted, err = c.Get(ctx, co.ID); err != nil {
			t.Fatal(err)
		}
		if noted.State.Final() || noted.State == pos.StateOnTerminal {
			t.Fatalf("checkout %s before the terminal was free (last_error %q): the invoice was not refused as busy", noted.State, noted.LastError)
		}
		if ctx.Err() != nil {
			t.Fatal("no busy note on the checkout")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if noted.State != pos.StateSent || !strings.Contains(noted.LastError, "busy") || !strings.Contains(noted.LastError, demo.MQTTTerminal) {
		t.Fatalf("while the terminal is busy: %s, last_error %q", noted.State, noted.LastError)
	}

	final, err := c.Follow(ctx, co.ID, func(pos.Checkout) {})
	if err != nil {
		t.Fatal(err)
	}
	if final.State != pos.StatePaid || final.LastError != "" {
		t.Fatalf("checkout ended %s (last_error %q), want paid once the terminal was free", final.State, final.LastError)
	}
	if n := len(s.Sim.InvoicesByNumber(final.InvoiceNumber)); n != 1 {
		t.Fatalf("%d invoices at Hesabe, want 1", n)
	}
	if !hasHistory(final, pos.StateOnTerminal) {
		t.Errorf("history %+v: the terminal never acknowledged the invoice", final.History)
	}
}

func hasHistory(c pos.Checkout, s pos.State) bool {
	for _, tr := range c.History {
		if tr.To == s {
			return true
		}
	}
	return false
}
