package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

func runDemo(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "demo", "demo [--once] [--api 127.0.0.1:8470] [--diag 127.0.0.1:8471] [--mode approve] [--delay 1s]")
	once := fs.Bool("once", false, "run the sample checkout, then stop")
	apiAddr := fs.String("api", "", "till API address (default 127.0.0.1:8470, or a free port if busy)")
	diagAddr := fs.String("diag", "", "diagnostics address (default 127.0.0.1:8471, or a free port if busy)")
	mode := fs.String("mode", "approve", "what the simulated terminals do: approve, decline, timeout or silent")
	delay := fs.Duration("delay", time.Second, "the simulated customer's time to tap")
	verbose := fs.Bool("v", false, "show the bridge's log")
	dataDir := fs.String("data-dir", "", "keep the database here (default: a temporary directory, removed at exit)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	daemon.TuneGC(ctx)
	actions, err := termsim.ParseScript(*mode)
	if err != nil || len(actions) != 1 {
		return fail(e, "demo: --mode must be approve, decline, timeout or silent")
	}
	opts := demo.Options{DataDir: *dataDir, APIListen: *apiAddr, DiagListen: *diagAddr, Mode: actions[0], Delay: *delay,
		LogLevel: slog.LevelWarn}
	if *verbose {
		opts.Log, opts.LogLevel = e.stderr, slog.LevelInfo
	}
	start := time.Now()
	s, err := demo.Start(ctx, opts)
	if err != nil {
		return fail(e, "demo: %v", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Close(closeCtx); err != nil {
			fmt.Fprintf(e.stderr, "demo: stopping: %v\n", err)
		}
	}()
	waitCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	err = s.WaitTerminals(waitCtx)
	cancel()
	if err != nil {
		return fail(e, "demo: %v", err)
	}
	out := e.stdout
	fmt.Fprintf(out, "posbridge demo is running (started in %s)\n\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "  Hesabe simulator   %s\n", s.Sim.APIURL())
	fmt.Fprintf(out, "  till API           %s\n", s.Daemon.APIURL())
	fmt.Fprintf(out, "  API token          %s\n", s.Token)
	fmt.Fprintf(out, "  status page        %s/?token=%s\n", s.Daemon.DiagURL(), s.Token)
	fmt.Fprintf(out, "  terminals          %s over MQTT (embedded broker %s)", demo.MQTTTerminal, s.Daemon.BrokerAddr())
	if s.SerialPort != "" {
		fmt.Fprintf(out, ", %s over serial %s", demo.SerialTerminal, s.SerialPort)
	}
	fmt.Fprintf(out, "\n\nSample checkout: 1.250 KWD on terminal %s\n", demo.MQTTTerminal)

	c := s.Client()
	co, _, err := c.Create(ctx, newIdempotencyKey(), api.CreateBody{TerminalID: demo.MQTTTerminal, Amount: "1.250",
		TillRef: "DEMO-1", Description: "posbridge demo", Customer: &pos.Customer{Name: "Demo Customer"}})
	if err != nil {
		return fail(e, "demo: %v", err)
	}
	t0 := time.Now()
	final, err := c.Follow(ctx, co.ID, func(c pos.Checkout) {
		fmt.Fprintf(out, "  %6.2fs  %-11s %s\n", time.Since(t0).Seconds(), c.State, describe(c))
	})
	if err != nil {
		return fail(e, "demo: %v", err)
	}
	fmt.Fprintf(out, "Checkout %s ended %s; Hesabe holds %d invoice(s) numbered %s.\n", final.ID, final.State,
		len(s.Sim.InvoicesByNumber(final.InvoiceNumber)), final.InvoiceNumber)
	if *once {
		if final.State != pos.StatePaid && actions[0] == termsim.Approve {
			return exitFailure
		}
		return exitOK
	}
	fmt.Fprintf(out, "\nTry it yourself (Ctrl-C stops the demo):\n")
	fmt.Fprintf(out, "  posbridge pay --url %s --token %s --terminal %s --amount 2.500\n", s.Daemon.APIURL(), s.Token, demo.MQTTTerminal)
	if s.SerialPort != "" {
		fmt.Fprintf(out, "  posbridge pay --url %s --token %s --terminal %s --amount 0.750\n", s.Daemon.APIURL(), s.Token, demo.SerialTerminal)
	}
	fmt.Fprintf(out, "  posbridge checkouts --url %s --token %s\n", s.Daemon.APIURL(), s.Token)
	if err := s.Daemon.Wait(ctx); err != nil {
		return fail(e, "demo: %v; the demo stopped", err)
	}
	fmt.Fprintln(out, "stopping")
	return exitOK
}
