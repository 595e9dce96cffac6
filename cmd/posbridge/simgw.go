package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/hitpay/hitpaysim"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
	"github.com/posbridge/posbridge/internal/simfault"
)

// simFaults parses repeatable --fault specs for the generic kinds.
func simFaults(e env, name string, specs multiFlag) ([]simfault.Fault, int, bool) {
	var out []simfault.Fault
	for _, spec := range specs {
		f, err := simfault.Parse(spec, simfault.Kinds)
		if err != nil {
			return nil, fail(e, "sim %s: %v", name, err), false
		}
		out = append(out, f)
	}
	return out, 0, true
}

func genericKinds() string {
	var s []string
	for _, k := range simfault.Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func simLogger(e env, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// waitAndClose blocks until ctx ends, then closes the simulator.
func waitAndClose(ctx context.Context, closer func(context.Context) error) int {
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = closer(closeCtx)
	return exitOK
}

func runSimHitPay(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "sim hitpay", "sim hitpay [--listen 127.0.0.1:8482] [--fault SPEC]...")
	listen := fs.String("listen", "127.0.0.1:8482", "address to listen on (keep it on loopback)")
	var faults multiFlag
	fs.Var(&faults, "fault", "inject a fault: KIND[=VALUE][:COUNT][%PROBABILITY][@PATH], repeatable; kinds: "+genericKinds())
	verbose := fs.Bool("v", false, "log every request")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	parsed, code, ok := simFaults(e, "hitpay", faults)
	if !ok {
		return code
	}
	sim, err := hitpaysim.Start(*listen, hitpaysim.Options{Logger: simLogger(e, *verbose)})
	if err != nil {
		return fail(e, "sim hitpay: %v", err)
	}
	for _, f := range parsed {
		sim.Inject(f)
	}
	fmt.Fprintln(e.stdout, sim.URL())
	fmt.Fprintf(e.stderr, `HitPay simulator listening; point posbridge at it with:
requests:
  customers: hitpay
hitpay:
  url: %s
and POSBRIDGE_HITPAY_API_KEY=%s (the simulator's key).
Admin API: %[1]s/_sim/ (customers, faults, stats). Ctrl-C stops.
`, sim.URL(), hitpaysim.DefaultAPIKey)
	return waitAndClose(ctx, sim.Close)
}

func runSimPayout(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "sim payout", "sim payout [--listen 127.0.0.1:8483] [--keys DIR] [--fault SPEC]...")
	listen := fs.String("listen", "127.0.0.1:8483", "address to listen on (keep it on loopback)")
	keys := fs.String("keys", "", "directory to write the key files posbridge needs (default: a new temporary directory)")
	var faults multiFlag
	fs.Var(&faults, "fault", "inject a fault: KIND[=VALUE][:COUNT][%PROBABILITY][@PATH], repeatable; kinds: "+genericKinds())
	verbose := fs.Bool("v", false, "log every request")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	parsed, code, ok := simFaults(e, "payout", faults)
	if !ok {
		return code
	}
	dir := *keys
	if dir == "" {
		d, err := os.MkdirTemp("", "posbridge-payoutsim-")
		if err != nil {
			return fail(e, "sim payout: %v", err)
		}
		dir = d
		defer os.RemoveAll(d)
	}
	sim, err := payoutsim.Start(*listen, payoutsim.Options{Logger: simLogger(e, *verbose)})
	if err != nil {
		return fail(e, "sim payout: %v", err)
	}
	cfg, err := sim.ClientConfig(dir)
	if err != nil {
		_ = sim.Close(context.Background())
		return fail(e, "sim payout: %v", err)
	}
	for _, f := range parsed {
		sim.Inject(f)
	}
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	fmt.Fprintln(e.stdout, sim.URL())
	fmt.Fprintf(e.stderr, `Payout provider simulator listening; point posbridge at it with:
requests:
  payees: true
payout:
  url: %s
  merchant_id: %q
  provider_public_key_file: %s
  merchant_private_key_file: %s
and POSBRIDGE_PAYOUT_API_KEY=%s (the simulator's key; test key files, not for production).
Admin API: %[1]s/_sim/ (payees, payees/{customid}/status, faults, stats). Ctrl-C stops.
`, sim.URL(), cfg.MerchantID, abs(cfg.ProviderPublicKeyFile), abs(cfg.MerchantPrivateKeyFile), payoutsim.DefaultAPIKey)
	return waitAndClose(ctx, sim.Close)
}
