// Package doctor checks a posbridge installation and explains what is
// wrong: one result per check, each with what was found and, when it is not
// ok, the fix. It backs `posbridge doctor`, which exits 0 only when no check
// failed.
//
// Checks touch the real things (the config and secrets files, the data
// directory, the bbolt file, DNS, the gateway, the broker, the serial
// ports) with short timeouts; none of them changes anything, and no
// result ever contains a key, password or token: every detail is scrubbed
// of the configured secret values before it is returned.
package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/logging"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// Status is a check's verdict.
type Status string

// The verdicts. Only Fail makes `posbridge doctor` exit non-zero.
const (
	OK   Status = "ok"
	Fail Status = "fail"
	Warn Status = "warn"
	Skip Status = "skip"
)

// Result is one check's outcome.
type Result struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Pinger asks a terminal to answer a ping over its configured link. The
// terminal hub implements it; until it is wired in, the ping check is
// skipped.
type Pinger interface {
	Ping(ctx context.Context, t config.Terminal) (time.Duration, error)
}

// ErrNotRunning is returned by a Pinger that pings through the running
// bridge when none runs: the ping check is then skipped, not failed.
var ErrNotRunning = errors.New("posbridge is not running")

// ErrDiagnosticsToken is returned by a Pinger whose diagnostics token
// (from the config) the running bridge refuses: the ping check is then a
// warning naming the token, not a terminal failure.
var ErrDiagnosticsToken = errors.New("the running posbridge refused the diagnostics token in the config")

// Options configures a run. Zero fields take defaults.
type Options struct {
	// ConfigPath is the file to check.
	ConfigPath string
	// ServiceUser is the account the service runs as (Linux: "posbridge").
	// Files and devices are checked against it as well as against the
	// user running doctor; "" skips that analysis.
	ServiceUser string
	// Pinger, if set, pings each terminal.
	Pinger Pinger
	// Timeout bounds each network check. Default 5 s.
	Timeout time.Duration
	// Now is the clock (tests set it to simulate skew). Default time.Now.
	Now func() time.Time
	// ListPorts lists serial ports for USB selection. Default
	// serial.ListPorts.
	ListPorts func() ([]serial.PortInfo, error)
	// HTTPClient is used for the gateway's Date header. Default: a client
	// with Timeout.
	HTTPClient *http.Client
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ListPorts == nil {
		o.ListPorts = serial.ListPorts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	return o
}

// run carries one doctor run's state between checks.
type run struct {
	opt    Options
	cfg    config.Config
	loaded bool // cfg is usable (it parsed; it may not validate)
	// configValid: the config and the secrets file load as posbridge
	// run loads them (their checks passed).
	configValid bool
	results     []Result
	// posbridgeRunning: the database lock is held by a posbridge process,
	// so busy ports are probably its own.
	posbridgeRunning bool
	runningPID       int
	gatewayReachable bool
}

func (r *run) add(name string, st Status, detail, fix string) {
	r.results = append(r.results, Result{Name: name, Status: st, Detail: detail, Fix: fix})
}

// failed reports whether the named check has failed so far.
func (r *run) failed(name string) bool {
	for _, res := range r.results {
		if res.Name == name && res.Status == Fail {
			return true
		}
	}
	return false
}

// Run performs every check and returns the results in order.
func Run(ctx context.Context, opt Options) []Result {
	r := &run{opt: opt.withDefaults()}
	r.checkConfig()
	if r.loaded {
		r.checkSecretsFile()
		r.checkDataDir()
		r.checkDatabase(ctx)
		r.checkGateway(ctx)
		r.checkRequestGateways(ctx)
		r.checkMQTT(ctx)
		r.checkTerminals(ctx)
		r.checkPorts()
	} else {
		r.add("others", Skip, "the remaining checks need a config that loads", "fix the config first")
	}
	return r.scrub()
}

// scrub removes every configured secret value from the results: a check
// must never print one, even inside an error from a library.
func (r *run) scrub() []Result {
	red := &logging.Redactor{}
	red.Add(r.cfg.SecretValues()...)
	for i := range r.results {
		r.results[i].Detail = red.Scrub(r.results[i].Detail)
		r.results[i].Fix = red.Scrub(r.results[i].Fix)
	}
	return r.results
}

// Failed reports whether any result is a failure.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// WriteText writes one line per result:
//
//	ok    name: detail
//	FAIL  name: detail — fix
func WriteText(w io.Writer, rs []Result) error {
	var b strings.Builder
	counts := map[Status]int{}
	for _, r := range rs {
		counts[r.Status]++
		label := string(r.Status)
		if r.Status == Fail {
			label = "FAIL"
		}
		fmt.Fprintf(&b, "%-5s %s: %s", label, r.Name, r.Detail)
		if r.Fix != "" && r.Status != OK {
			fmt.Fprintf(&b, " — %s", r.Fix)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\n%d ok, %d failed, %d warnings, %d skipped\n", counts[OK], counts[Fail], counts[Warn], counts[Skip])
	_, err := io.WriteString(w, b.String())
	return err
}

// Report is the --json document.
type Report struct {
	OK     bool     `json:"ok"`
	Checks []Result `json:"checks"`
}

// WriteJSON writes the results as a Report.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if rs == nil {
		rs = []Result{}
	}
	return enc.Encode(Report{OK: !Failed(rs), Checks: rs})
}

// oneLine flattens multi-line errors (errors.Join) into one line. A list
// introduced by a colon ("unmarshal errors:", which the config package
// has already joined with "; ") reads "errors: line 3: ...", not ":;".
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	return strings.ReplaceAll(s, ":; ", ": ")
}
