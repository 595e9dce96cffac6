package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runSimHesabe(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "sim hesabe", "sim hesabe [--listen 127.0.0.1:8480] [--fault SPEC]... [--token-lifetime 900s]")
	listen := fs.String("listen", "127.0.0.1:8480", "address to listen on (keep it on loopback)")
	lifetime := fs.Duration("token-lifetime", 900*time.Second, "access token lifetime")
	var faults multiFlag
	fs.Var(&faults, "fault", "inject a fault: KIND[=VALUE][:COUNT][%PROBABILITY][@PATH], repeatable; kinds: "+kindList())
	verbose := fs.Bool("v", false, "log every request")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	opts := hesabesim.DefaultOptions()
	opts.TokenLifetime = *lifetime
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	var parsed []hesabesim.Fault
	for _, spec := range faults {
		f, err := hesabesim.ParseFault(spec)
		if err != nil {
			return fail(e, "sim hesabe: %v", err)
		}
		parsed = append(parsed, f)
	}
	sim, err := hesabesim.Start(*listen, opts)
	if err != nil {
		return fail(e, "sim hesabe: %v", err)
	}
	for _, f := range parsed {
		sim.Inject(f)
	}
	m := opts.Merchants[0]
	fmt.Fprintln(e.stdout, sim.APIURL())
	fmt.Fprintf(e.stderr, `Hesabe simulator listening; point posbridge at it with:
hesabe:
  merchant_url: %[1]s
  payment_url: %[1]s
  merchant_code: "%[2]s"
  access_code: %[3]s
  secret_key: %[4]s
  iv_key: %[5]s
  username: %[6]s
  password: %[7]s
(these are Hesabe's public sandbox values). Terminals: %[8]s.
Admin API: %[9]s/_sim/ (invoices, faults, expire-tokens, stats). Ctrl-C stops.
`, sim.APIURL(), m.Code, m.AccessCode, m.SecretKey, m.IVKey, m.Username, m.Password, terminalList(m), sim.URL())
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sim.Close(closeCtx)
	return exitOK
}

func kindList() string {
	var s []string
	for _, k := range hesabesim.FaultKinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

func terminalList(m hesabesim.Merchant) string {
	var s []string
	for _, t := range m.Terminals {
		s = append(s, t.TerminalID+" ("+t.TerminalName+")")
	}
	return strings.Join(s, ", ")
}
