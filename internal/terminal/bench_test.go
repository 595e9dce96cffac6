package terminal_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/internal/testbroker"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// BenchmarkMQTT1000Terminals: 1,000 simulated terminals (each its own MQTT
// connection) and one bridge, through a real mosquitto on loopback (and
// the embedded broker, for comparison). One
// op is a command→result round trip: PushInvoice, the terminal's ack, its
// approved result reaching OnEvent. "sequential" runs one payment at a
// time across the fleet; "burst" starts one payment on every terminal at
// once; "paced-200/s" starts 200 payments a second. Reports p50/p99
// latency.
func BenchmarkMQTT1000Terminals(b *testing.B) {
	for _, k := range testbroker.Kinds {
		b.Run(string(k), func(b *testing.B) { bench1000(b, k) })
	}
}

func bench1000(b *testing.B, kind testbroker.Kind) {
	const n = 1000
	br := testbroker.Start(b, kind, testbroker.Options{})
	var mu sync.Mutex
	waiting := map[string]chan struct{}{}
	onEvent := func(_ context.Context, ev pos.TerminalEvent) error {
		if ev.Kind == pos.TerminalResult {
			mu.Lock()
			ch := waiting[ev.TransactionID]
			delete(waiting, ev.TransactionID)
			mu.Unlock()
			if ch != nil {
				close(ch)
			}
		}
		return nil
	}
	conf := func(id string) *mqtt.Config {
		return &mqtt.Config{BrokerURL: br.URL(), ClientID: id, KeepAlive: 30 * time.Second, MaxReconnectInterval: time.Second}
	}
	cfg := terminal.Config{MQTT: conf("bench-bridge"), OnEvent: onEvent, Logger: quietLogger(), PingInterval: time.Minute}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("T-%04d", i)
		cfg.Terminals = append(cfg.Terminals, terminal.TerminalConfig{ID: ids[i], MQTT: true})
	}
	h := openHub(b, cfg)
	for _, id := range ids {
		runSim(b, termsim.Config{TerminalID: id, MQTT: conf(""), Mode: termsim.Approve})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		up := 0
		for _, s := range h.Terminals() {
			if s.Connected {
				up++
			}
		}
		if up == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d terminals connected", up, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pay := func(id string) time.Duration {
		tx := newTx()
		ch := make(chan struct{})
		mu.Lock()
		waiting[tx] = ch
		mu.Unlock()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.PushInvoice(ctx, id, invoice(tx)); err != nil {
			b.Error(err)
			return 0
		}
		select {
		case <-ch:
		case <-ctx.Done():
			b.Errorf("no result for %s", tx)
		}
		return time.Since(start)
	}
	report := func(b *testing.B, lat []time.Duration) {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.99), "p99-ms")
		b.ReportMetric(q(1), "max-ms")
	}
	b.Run("sequential", func(b *testing.B) {
		var lat []time.Duration
		i := 0
		for b.Loop() {
			lat = append(lat, pay(ids[i%n]))
			i++
		}
		report(b, lat)
	})
	b.Run("paced-200/s", func(b *testing.B) {
		// A busy store chain's peak: 200 payments a second spread over the
		// fleet, each terminal paying at most once a 5 s.
		var lat []time.Duration
		next := 0
		for b.Loop() {
			out := make([]time.Duration, 200)
			var wg sync.WaitGroup
			tick := time.NewTicker(5 * time.Millisecond)
			for i := range out {
				<-tick.C
				id := ids[next%n]
				next++
				wg.Add(1)
				go func() { defer wg.Done(); out[i] = pay(id) }()
			}
			tick.Stop()
			wg.Wait()
			lat = append(lat, out...)
		}
		b.ReportMetric(float64(len(lat)), "payments")
		report(b, lat)
	})
	b.Run("burst", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			out := make([]time.Duration, n)
			var wg sync.WaitGroup
			for i, id := range ids {
				wg.Add(1)
				go func() { defer wg.Done(); out[i] = pay(id) }()
			}
			wg.Wait()
			lat = append(lat, out...)
		}
		b.ReportMetric(float64(len(lat)), "payments")
		report(b, lat)
	})
}
