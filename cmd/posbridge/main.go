// Command posbridge is the point-of-sale terminal bridge: it takes card
// payments from till software, turns them into Hesabe Smart POS invoices for
// the right terminal, follows each payment to its result and tells the till.
//
// Run `posbridge help` for the commands. This package only parses flags and
// wires packages together; the logic lives under internal/.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes, documented in the README.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (bad input, gateway error, ...)
	exitUsage   = 2 // wrong flags or arguments
	// exitDeclined (3, till.go): pay ended other than paid.
	// exitSalvageLost (4, salvage.go): salvage lost or changed records.
)

// env is what a command may touch: its streams. Tests run commands with
// buffers.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stdoutTTY is true when stdout is a terminal (a trailing newline is
	// then added to raw outputs).
	stdoutTTY bool
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) int
	sub     []*command
}

func commands() []*command {
	return []*command{
		{name: "run", summary: "run the bridge (in the foreground, or under the service manager)", run: runRun},
		{name: "demo", summary: "run the whole bridge with simulated Hesabe and terminals, and a sample checkout", run: runDemo},
		{name: "hesabe", summary: "technician tools for the Hesabe gateway", sub: []*command{
			{name: "encrypt", summary: "encrypt stdin (JSON) with the merchant keys; hex on stdout", run: runHesabeEncrypt},
			{name: "decrypt", summary: "decrypt hex on stdin with the merchant keys; plaintext on stdout", run: runHesabeDecrypt},
			{name: "terminals", summary: "list the merchant's Smart POS terminals at Hesabe", run: runHesabeTerminals},
		}},
		{name: "sim", summary: "simulators that stand in for the gateway and terminals", sub: []*command{
			{name: "hesabe", summary: "run the Hesabe simulator (with fault injection)", run: runSimHesabe},
			{name: "hitpay", summary: "run the HitPay customer API simulator (with fault injection)", run: runSimHitPay},
			{name: "payout", summary: "run the payout provider simulator and write its test key files", run: runSimPayout},
			{name: "terminal", summary: "run a simulated card terminal over serial or MQTT", run: runSimTerminal},
		}},
		{name: "pay", summary: "take a payment through the running bridge and follow it to its end", run: runPay},
		{name: "checkouts", summary: "list, show or cancel checkouts of the running bridge", run: runCheckouts},
		{name: "terminals", summary: "list the running bridge's terminals and their links", run: runTerminals},
		{name: "bench", summary: "load the till API with concurrent tills against the simulators and report", run: runBench},
		{name: "soak", summary: "run the bridge for a long time under payments and link churn, and report resource growth", run: runSoak},
		{name: "ports", summary: "list serial ports with their USB details", run: runPorts},
		{name: "version", summary: "print the version", run: runVersion},
		{name: "service", summary: "install and control the posbridge service", sub: serviceCommands()},
		{name: "doctor", summary: "check the installation; one line per check with its fix", run: runDoctor},
		{name: "salvage", summary: "copy what a damaged database still holds into a new one and put it in place", run: runSalvage},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stdoutTTY: isTerminal(os.Stdout)}, os.Args[1:])
	stop()
	os.Exit(code)
}

// dispatch finds the (sub)command named by args and runs it.
func dispatch(ctx context.Context, e env, args []string) int {
	cmds := commands()
	path := []string{"posbridge"}
	for {
		if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
			printUsage(e.stdout, path, cmds)
			if len(args) == 0 {
				return exitUsage
			}
			return exitOK
		}
		var found *command
		for _, c := range cmds {
			if c.name == args[0] {
				found = c
			}
		}
		if found == nil {
			fmt.Fprintf(e.stderr, "%s: unknown command %q (run '%s help')\n", strings.Join(path, " "), args[0], strings.Join(path, " "))
			return exitUsage
		}
		path = append(path, found.name)
		args = args[1:]
		if found.run != nil {
			return found.run(ctx, e, args)
		}
		cmds = found.sub
	}
}

func printUsage(w io.Writer, path []string, cmds []*command) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", strings.Join(path, " "))
	sorted := append([]*command(nil), cmds...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags.\n", strings.Join(path, " "))
}

// newFlags returns a flag set that prints its usage to e.stderr and
// returns errors instead of exiting.
func newFlags(e env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: posbridge %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns (exit code, false) when the command
// must stop (help asked or bad flags).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// fail prints one line to stderr and returns exitFailure.
func fail(e env, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "posbridge: "+format+"\n", args...)
	return exitFailure
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// printJSON writes v to stdout as indented JSON (the --json outputs).
func printJSON(e env, v any) {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
