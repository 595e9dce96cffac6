package hitpay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/hitpay/hitpaysim"
)

// startSim runs a simulator on a loopback port for the test's life. Its
// events channel receives every create-customer request the simulator has
// finished with.
func startSim(tb testing.TB, opts hitpaysim.Options) (*hitpaysim.Server, <-chan hitpaysim.Event) {
	tb.Helper()
	events := make(chan hitpaysim.Event, 1024)
	if opts.OnRequest == nil {
		opts.OnRequest = func(ev hitpaysim.Event) {
			select {
			case events <- ev:
			default:
			}
		}
	}
	s, err := hitpaysim.Start("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		tb.Fatalf("simulator at %s, want 127.0.0.1", s.URL())
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s, events
}

// newClient returns a client for the simulator (on its own transport, as
// in production), bounded by timeout.
func newClient(tb testing.TB, s *hitpaysim.Server, timeout time.Duration) *hitpay.Client {
	tb.Helper()
	cfg := s.ClientConfig()
	cfg.Timeout = timeout
	c, err := hitpay.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// waitEvent returns the simulator's next finished request.
func waitEvent(tb testing.TB, events <-chan hitpaysim.Event) hitpaysim.Event {
	tb.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(10 * time.Second):
		tb.Fatal("the simulator never finished the request")
		return hitpaysim.Event{}
	}
}
