package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
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

func runSimTerminal(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "sim terminal", "sim terminal --terminal ID (--serial PATH | --mqtt tcp://HOST:PORT) [--mode approve|decline|timeout|silent | --script approve,decline,...] [--delay 2s] [--hesabe-admin URL]")
	id := fs.String("terminal", "29708454", "Hesabe terminal_id to identify as")
	model := fs.String("model", "PAX A99 (simulated)", "model to report in hello")
	serialPath := fs.String("serial", "", "serial port to talk on (e.g. one end of a socat pty pair)")
	baud := fs.Int("baud", 115200, "serial baud rate")
	broker := fs.String("mqtt", "", "MQTT broker URL to talk through (tcp://127.0.0.1:1883, ssl://...)")
	user := fs.String("username", "", "MQTT username")
	pass := fs.String("password", "", "MQTT password (or $POSBRIDGE_MQTT_PASSWORD)")
	prefix := fs.String("topic-prefix", "posbridge", "MQTT topic prefix (the bridge's mqtt.topic_prefix)")
	mode := fs.String("mode", "approve", "what to do with every invoice: approve, decline, timeout or silent")
	script := fs.String("script", "", "one action per invoice in turn, e.g. approve,decline,silent (overrides --mode)")
	delay := fs.Duration("delay", 2*time.Second, "the customer's time to tap before the result")
	admin := fs.String("hesabe-admin", "", "a standalone Hesabe simulator's URL (http://127.0.0.1:8480): mark each invoice there as the payment ends")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if (*serialPath == "") == (*broker == "") {
		fmt.Fprintln(e.stderr, "posbridge sim terminal: give exactly one of --serial and --mqtt")
		return exitUsage
	}
	cfg := termsim.Config{TerminalID: *id, Model: *model, Delay: *delay,
		Logger: slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	if *serialPath != "" {
		cfg.SerialPath, cfg.Baud = *serialPath, *baud
	} else {
		if *pass == "" {
			*pass = os.Getenv(config.EnvMQTTPass)
		}
		cfg.MQTT = &mqtt.Config{BrokerURL: *broker, Username: *user, Password: *pass, TopicPrefix: *prefix, ClientID: "termsim-" + *id}
	}
	spec := *mode
	if *script != "" {
		spec = *script
	}
	actions, err := termsim.ParseScript(spec)
	if err != nil {
		return fail(e, "sim terminal: %v", err)
	}
	if *script != "" {
		cfg.Script = actions
	} else if len(actions) == 1 {
		cfg.Mode = actions[0]
	} else {
		return fail(e, "sim terminal: --mode takes one action; use --script for a sequence")
	}
	if *admin != "" {
		a := hesabesim.Admin{URL: strings.TrimSuffix(strings.TrimSuffix(*admin, "/"), "/api")}
		cfg.OnPayment = func(ctx context.Context, inv terminal.InvoicePush, o pos.Outcome) error {
			st := hesabe.InvoicePaid
			switch o {
			case pos.OutcomeDeclined:
				st = hesabe.InvoiceFailed
			case pos.OutcomeCanceled:
				st = hesabe.InvoiceCanceled
			}
			return a.SetTransactionStatus(ctx, inv.TransactionID, st)
		}
	}
	fmt.Fprintf(e.stderr, "simulated terminal %s running (%s); Ctrl-C stops\n", *id, spec)
	if err := termsim.Run(ctx, cfg); err != nil && ctx.Err() == nil {
		return fail(e, "sim terminal: %v", err)
	}
	return exitOK
}
