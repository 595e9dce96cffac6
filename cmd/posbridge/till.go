package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/pos"
)

// Exit codes of `posbridge pay` beyond the common ones.
const (
	exitDeclined = 3 // the payment ended declined, canceled, expired or failed
)

// tillFlags locate the running daemon's till API: --url and --token, or
// the config file's api section, or $POSBRIDGE_API_TOKEN.
type tillFlags struct {
	url, token, config *string
}

func addTillFlags(fs *flag.FlagSet) tillFlags {
	return tillFlags{
		url:    fs.String("url", "", "till API URL (default: from --config, else http://127.0.0.1:8470)"),
		token:  fs.String("token", "", "till API token (default: $"+config.EnvAPIToken+", else from --config)"),
		config: fs.String("config", "", "read api.listen and api.token from this config file"),
	}
}

func (t tillFlags) client() (*api.Client, error) {
	u, tok := *t.url, *t.token
	if tok == "" {
		tok = os.Getenv(config.EnvAPIToken)
	}
	if *t.config != "" && (u == "" || tok == "") {
		cfg, err := config.Load(*t.config)
		if err != nil {
			return nil, err
		}
		if u == "" {
			u = "http://" + loopbackAddr(cfg.API.Listen)
		}
		if tok == "" {
			tok = cfg.API.Token.Value()
		}
	}
	if u == "" {
		u = "http://127.0.0.1:8470"
	}
	if tok == "" {
		return nil, fmt.Errorf("no till API token: give --token, set $%s, or --config", config.EnvAPIToken)
	}
	return &api.Client{URL: u, Token: tok}, nil
}

// loopbackAddr turns a listen address like ":8470" or "0.0.0.0:8470" into
// one a local client can dial.
func loopbackAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func newIdempotencyKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "cli-" + hex.EncodeToString(b)
}

func runPay(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "pay", "pay --terminal ID --amount 1.250 [--ref R] [--description D] [--customer NAME] [--deadline 5m] [--key K] [--no-wait]")
	tf := addTillFlags(fs)
	terminal := fs.String("terminal", "", "Hesabe terminal_id to pay on (required)")
	amount := fs.String("amount", "", `amount in KWD with up to 3 decimals, e.g. 1.250 (required)`)
	ref := fs.String("ref", "", "till reference (receipt number)")
	desc := fs.String("description", "", "description shown on the terminal")
	customer := fs.String("customer", "", "customer name")
	deadline := fs.Duration("deadline", 0, "how long the payment may take, in whole seconds (default: the bridge's checkout.default_deadline)")
	key := fs.String("key", "", "idempotency key (default: a new random key; reuse one to retry safely)")
	noWait := fs.Bool("no-wait", false, "print the accepted checkout and return without following it")
	asJSON := fs.Bool("json", false, "print the final checkout as JSON on stdout")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *terminal == "" || *amount == "" {
		fmt.Fprintln(e.stderr, "posbridge pay: --terminal and --amount are required")
		fs.Usage()
		return exitUsage
	}
	// The API takes whole seconds: 500ms would be sent as none (the
	// bridge's default deadline) and 1.5s as 1s.
	if *deadline < 0 || *deadline%time.Second != 0 {
		fmt.Fprintf(e.stderr, "posbridge pay: --deadline %s: give whole seconds, at least 1s (e.g. 90s, 5m), or 0 for the bridge's default\n", *deadline)
		return exitUsage
	}
	c, err := tf.client()
	if err != nil {
		return fail(e, "pay: %v", err)
	}
	if *key == "" {
		*key = newIdempotencyKey()
	}
	body := api.CreateBody{TerminalID: *terminal, Amount: *amount, TillRef: *ref, Description: *desc,
		DeadlineSeconds: int64(deadline.Seconds())}
	if *customer != "" {
		body.Customer = &pos.Customer{Name: *customer}
	}
	co, existing, err := c.Create(ctx, *key, body)
	if err != nil {
		var ae *api.APIError
		if errors.As(err, &ae) && ae.Status < 500 {
			return fail(e, "pay: %v", err) // refused: nothing was stored
		}
		// No answer, or a 5xx: the bridge may have stored the checkout.
		// Only the same key retries it without a second charge.
		return fail(e, "pay: %v; the payment may have been accepted: retry it with --key %s (never a new key), or look with posbridge checkouts", err, *key)
	}
	verb := "accepted"
	if existing {
		verb = "already accepted (same idempotency key)"
	}
	fmt.Fprintf(e.stderr, "checkout %s %s: %s KWD on terminal %s, invoice %s, key %s\n", co.ID, verb, co.Amount, co.TerminalID, co.InvoiceNumber, *key)
	if *noWait {
		return printCheckout(e, co, *asJSON)
	}
	start := time.Now()
	final, err := c.Follow(ctx, co.ID, func(c pos.Checkout) {
		fmt.Fprintf(e.stderr, "  %6.1fs  %-11s %s\n", time.Since(start).Seconds(), c.State, describe(c))
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(e.stderr, "stopped following; the checkout goes on: posbridge checkouts show %s\n", co.ID)
			return exitFailure
		}
		return fail(e, "pay: %v", err)
	}
	code := printCheckout(e, final, *asJSON)
	if final.State != pos.StatePaid {
		return exitDeclined
	}
	return code
}

// describe is one human line about a checkout's latest state.
func describe(c pos.Checkout) string {
	var parts []string
	if c.TransactionID != "" {
		parts = append(parts, "transaction "+c.TransactionID)
	}
	if c.Result != nil {
		r := c.Result
		s := string(r.Outcome)
		if r.Source != "" {
			s = strings.TrimSpace(s + " by " + r.Source) // no outcome (expired): "by gateway"
		}
		if r.Reference != "" {
			s += ", ref " + r.Reference
		}
		if r.Reason != "" {
			s += ": " + r.Reason
		}
		parts = append(parts, s)
	}
	if c.LastError != "" && !c.State.Final() {
		parts = append(parts, "last error: "+c.LastError)
	}
	if c.CancelRequested && !c.State.Final() {
		parts = append(parts, "cancel requested")
	}
	if c.State == pos.StateQueued && !c.NextAttemptAt.IsZero() && c.Attempts > 0 {
		parts = append(parts, fmt.Sprintf("retry %d at %s", c.Attempts, c.NextAttemptAt.Local().Format("15:04:05")))
	}
	return strings.Join(parts, "; ")
}

func printCheckout(e env, c pos.Checkout, asJSON bool) int {
	if asJSON {
		printJSON(e, c)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "%s %s %s KWD terminal %s (%s)\n", c.ID, c.State, c.Amount, c.TerminalID, describe(c))
	return exitOK
}

func runCheckouts(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "checkouts", "checkouts [list] [--limit N] | show ID | cancel ID  (flags before or after)")
	tf := addTillFlags(fs)
	limit := fs.Int("limit", 20, "how many to list")
	asJSON := fs.Bool("json", false, "print JSON")
	words, code, ok := parseInterleaved(fs, args)
	if !ok {
		return code
	}
	sub := "list"
	if len(words) > 0 {
		sub, words = words[0], words[1:]
	}
	switch sub {
	case "list":
		if len(words) > 0 {
			fmt.Fprintf(e.stderr, "posbridge checkouts list: unexpected argument %q\n", words[0])
			return exitUsage
		}
	case "show", "cancel":
		if len(words) != 1 {
			fmt.Fprintf(e.stderr, "posbridge checkouts %s: give one checkout id\n", sub)
			return exitUsage
		}
	default:
		fmt.Fprintf(e.stderr, "posbridge checkouts: unknown subcommand %q (list, show, cancel)\n", sub)
		return exitUsage
	}
	c, err := tf.client()
	if err != nil {
		return fail(e, "checkouts: %v", err)
	}
	switch sub {
	case "list":
		list, _, err := c.Recent(ctx, *limit, "")
		if err != nil {
			return fail(e, "checkouts: %v", err)
		}
		if *asJSON {
			printJSON(e, list)
			return exitOK
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tAMOUNT\tTERMINAL\tTILL REF\tCREATED\tDETAIL")
		for _, co := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", co.ID, co.State, co.Amount, co.TerminalID, co.TillRef,
				co.CreatedAt.Local().Format("01-02 15:04:05"), describe(co))
		}
		_ = tw.Flush()
		return exitOK
	default: // show, cancel
		var co pos.Checkout
		if sub == "show" {
			co, err = c.Get(ctx, words[0])
		} else {
			co, err = c.Cancel(ctx, words[0])
		}
		if err != nil {
			return fail(e, "checkouts %s: %v", sub, err)
		}
		if *asJSON {
			return printCheckout(e, co, true)
		}
		printCheckout(e, co, false)
		for _, h := range co.History {
			fmt.Fprintf(e.stdout, "  %s  %-11s → %-11s %s\n", h.At.Local().Format("15:04:05.000"), h.From, h.To, h.Reason)
		}
		return exitOK
	}
}

// parseInterleaved parses flags that may come before, between or after the
// positional words (`checkouts --config F cancel ID --json`); the flag
// package alone stops at the first word and would leave the rest unread.
func parseInterleaved(fs *flag.FlagSet, args []string) (words []string, code int, ok bool) {
	for {
		if code, ok := parseFlags(fs, args); !ok {
			return nil, code, false
		}
		if fs.NArg() == 0 {
			return words, 0, true
		}
		words = append(words, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func runTerminals(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "terminals", "terminals [--json]")
	tf := addTillFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	c, err := tf.client()
	if err != nil {
		return fail(e, "terminals: %v", err)
	}
	list, err := c.Terminals(ctx)
	if err != nil {
		return fail(e, "terminals: %v", err)
	}
	if *asJSON {
		printJSON(e, list)
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TERMINAL\tNAME\tLINK\tCONNECTED\tBUSY\tLAST SEEN")
	for _, t := range list {
		seen := "never"
		if !t.LastSeen.IsZero() {
			seen = time.Since(t.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\t%s\n", t.ID, t.Name, t.Link, t.Connected, t.Busy, seen)
	}
	_ = tw.Flush()
	return exitOK
}
