// Package soak runs the whole bridge (internal/demo's stack) for a long
// time under a steady trickle of payments while it disturbs every link
// again and again, and watches the process's resources: goroutines, open
// file descriptors, Go heap, RSS and the database's size. Anything that
// keeps growing while the load stays the same is a leak. `posbridge soak`
// prints its report; the package's test runs a short soak in the normal
// suite.
//
// The stack is real: the Hesabe simulator behind a loopback TCP proxy
// that can vanish (the gateway going away), the embedded MQTT broker run
// by the soak so it can be restarted (every MQTT connection drops),
// simulated terminals over MQTT that reach it through another such proxy
// (their network goes away and comes back), one over a pseudo-terminal
// that is unplugged and plugged in again, and the real daemon with its
// till API, on 127.0.0.1 only.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// Options configures a soak.
type Options struct {
	// Duration of the load and churn (default 10 min).
	Duration time.Duration
	// Churn: how often the links are disturbed (default 20 s; negative:
	// never).
	Churn time.Duration
	// Sample: how often resources are recorded (default 10 s).
	Sample time.Duration
	// Tills paying at once, each one checkout at a time with a pause
	// between them (default 2).
	Tills int
	// InFlight bounds the checkouts being followed at once, all tills
	// together (default 4 per till).
	InFlight int
	// MQTTTerminals: simulated terminals over MQTT (default 3), beside
	// the serial one.
	MQTTTerminals int
	// Settle bounds the wait, once the load and churn stop and every link
	// is back, for goroutines and descriptors to come back near the
	// baseline (default 2 min).
	Settle time.Duration
	// GoroutineSlack and FDSlack are the growth allowed, last third of
	// the samples against the first and settled against the baseline
	// (defaults 25 and 10), not counting the gateway connections.
	// GatewayConnSlack is theirs (default 24): the bridge keeps up to 8
	// idle, and its polls of active and of expired checkouts (watched 30
	// min for a late payment) run up to 16 each at a time.
	GoroutineSlack, FDSlack, GatewayConnSlack int
	// ProfileDir, when set, receives goroutine dumps (runtime/pprof,
	// debug=1), heap profiles (after a collection) and lists of the open
	// descriptors: at the baseline, at the end of the load and once
	// settled.
	ProfileDir string
	// Progress gets one line per sample (nil: none).
	Progress io.Writer
	// Log is the daemon's log (nil: discarded).
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Minute
	}
	if o.Churn == 0 {
		o.Churn = 20 * time.Second
	}
	if o.Sample <= 0 {
		o.Sample = 10 * time.Second
	}
	if o.Tills <= 0 {
		o.Tills = 2
	}
	if o.InFlight <= 0 {
		o.InFlight = 4 * o.Tills
	}
	if o.MQTTTerminals <= 0 {
		o.MQTTTerminals = 3
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Minute
	}
	if o.GoroutineSlack <= 0 {
		o.GoroutineSlack = 25
	}
	if o.FDSlack <= 0 {
		o.FDSlack = 10
	}
	if o.GatewayConnSlack <= 0 {
		o.GatewayConnSlack = 24
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Report is what a soak saw.
type Report struct {
	Options Options
	// Baseline: the stack up and every terminal connected, before the
	// load. Samples: during the load. Settled: after the load and churn
	// stopped and every link came back.
	Baseline Sample
	Samples  []Sample
	Settled  Sample
	// Outcomes counts the checkouts that ended, by final state.
	Outcomes map[pos.State]int
	// TillErrors counts till API calls that failed (expected now and
	// then while links are down); FirstTillErr is the first one.
	TillErrors   int
	FirstTillErr string
	// Churns is how many rounds of disturbances ran; ChurnErrors the
	// disturbances that failed (the first few).
	Churns      int
	ChurnErrors []string
	// Events counts the checkout changes the till event stream received.
	Events int
}

// Run brings the stack up, loads and disturbs it for o.Duration, waits
// for it to settle, and takes it down again. The error is about the run
// itself (the stack did not start, ctx ended); whether anything leaked is
// for Report.Check.
func Run(ctx context.Context, o Options) (rep Report, err error) {
	o = o.withDefaults()
	rep = Report{Options: o, Outcomes: map[pos.State]int{}}
	if o.ProfileDir != "" {
		// Fine enough heap profiles to tell what a few hundred KB of
		// growth is (the default samples one allocation per 512 KB).
		runtime.MemProfileRate = 4096
	}

	r := &runner{o: o, rep: &rep, followers: make(chan struct{}, o.InFlight), onTerminal: map[string]int{}}
	defer func() { err = errors.Join(err, r.close()) }()
	if err := r.start(ctx); err != nil {
		return rep, err
	}
	rep.Baseline = r.sample(0)
	r.profile("start")

	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range o.Tills {
		wg.Go(func() { r.till(loadCtx, i) })
	}
	wg.Go(func() { r.events(loadCtx) })
	wg.Go(func() { r.technician(loadCtx) })
	if o.Churn > 0 {
		wg.Go(func() { r.churn(loadCtx) })
	}

	tick := time.NewTicker(o.Sample)
	end := time.NewTimer(o.Duration)
	func() {
		defer tick.Stop()
		defer end.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-end.C:
				return
			case <-tick.C:
				s := r.sample(time.Since(start))
				rep.Samples = append(rep.Samples, s)
				fmt.Fprintln(o.Progress, s.line())
			}
		}
	}()
	stopLoad()
	wg.Wait()
	r.background.Wait()
	r.profile("end")
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("soak: %w", err)
	}

	// Settle: every link back, then resources near the baseline.
	if err := r.restore(ctx); err != nil {
		return rep, err
	}
	r.tillTransport.CloseIdleConnections()
	deadline := time.Now().Add(o.Settle)
	for {
		s := r.sample(time.Since(start))
		rep.Settled = s
		if rep.settledErr() == nil {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("soak: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	r.profile("settled")
	return rep, nil
}

// runner is one soak's parts.
type runner struct {
	o   Options
	rep *Report

	broker        *mqtt.Broker
	brokerUp      bool // churn's goroutine, then Run's
	gateway       *proxy
	terminalNet   *proxy // between the MQTT terminals and the broker
	stack         *demo.Stack
	client        *api.Client
	tillTransport *http.Transport

	// followers bounds the checkouts in flight; background waits for
	// their followers.
	followers  chan struct{}
	background sync.WaitGroup

	mu         sync.Mutex     // guards rep's counters, written by the tills and churn, and onTerminal
	onTerminal map[string]int // checkouts under way per terminal
}

// start brings up the broker, the stack (with the gateway behind the
// proxy) and waits for every terminal.
func (r *runner) start(ctx context.Context) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	r.broker = mqtt.NewBroker(mqtt.BrokerConfig{Addr: addr, Logger: slog.New(slog.DiscardHandler)})
	if err := r.openBroker(ctx); err != nil {
		return err
	}
	if r.terminalNet, err = startProxy(addr); err != nil {
		return err
	}
	var proxyErr error
	r.stack, err = demo.Start(ctx, demo.Options{
		APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0",
		BrokerURL: r.broker.URL(), TerminalBrokerURL: "tcp://" + r.terminalNet.addr, MQTTTerminals: max(r.o.MQTTTerminals-1, 0), ReplugSerial: true,
		ExtraTerminals: 1, // no local link: its checkouts expire
		Script:         scripts(), Delay: 300 * time.Millisecond, Log: r.o.Log,
		Configure: func(c *config.Config) {
			u, err := url.Parse(c.Hesabe.MerchantURL)
			if err != nil {
				proxyErr = fmt.Errorf("soak: gateway URL: %w", err)
				return
			}
			r.gateway, err = startProxy(u.Host)
			if err != nil {
				proxyErr = err
				return
			}
			u.Host = r.gateway.addr
			c.Hesabe.MerchantURL, c.Hesabe.PaymentURL = u.String(), u.String()
		},
	})
	if err == nil {
		err = proxyErr
	}
	if err != nil {
		return fmt.Errorf("soak: start the stack: %w", err)
	}
	r.tillTransport = &http.Transport{MaxIdleConnsPerHost: r.o.Tills + 2}
	r.client = &api.Client{URL: r.stack.Daemon.APIURL(), Token: r.stack.Token, HTTP: &http.Client{Transport: r.tillTransport}}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.stack.WaitTerminals(wctx); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	return nil
}

// scripts gives the simulated terminals a mix of outcomes: mostly paid,
// some declined, now and then a customer who never taps (canceled by
// timeout at the terminal).
func scripts() map[string][]termsim.Action {
	mix := []termsim.Action{termsim.Approve, termsim.Approve, termsim.Approve, termsim.Decline,
		termsim.Approve, termsim.Approve, termsim.Timeout, termsim.Approve}
	m := map[string][]termsim.Action{demo.MQTTTerminal: mix, demo.SerialTerminal: mix}
	for i := range 16 {
		m[fmt.Sprintf("M%04d", i+1)] = mix
	}
	return m
}

// restore brings every link back after the churn: broker and gateway up,
// every terminal connected.
func (r *runner) restore(ctx context.Context) error {
	// One more outage cuts the bridge's idle gateway connections (its
	// client keeps up to 8 for 90 s): what is open after it is what the
	// bridge needs now, comparable with the baseline.
	r.gateway.down()
	if err := r.gateway.up(); err != nil {
		return err
	}
	if err := r.terminalNet.up(); err != nil {
		return err
	}
	if err := r.openBroker(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := r.stack.WaitTerminals(wctx); err != nil {
		return fmt.Errorf("soak: after the churn: %w", err)
	}
	return nil
}

// close takes everything down.
func (r *runner) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if r.tillTransport != nil {
		r.tillTransport.CloseIdleConnections()
	}
	if r.stack != nil {
		errs = append(errs, r.stack.Close(ctx))
	}
	if r.gateway != nil {
		errs = append(errs, r.gateway.close())
	}
	if r.terminalNet != nil {
		errs = append(errs, r.terminalNet.close())
	}
	if r.broker != nil {
		errs = append(errs, r.broker.Close(ctx))
	}
	return errors.Join(errs...)
}

// sample measures the process and reads the bridge's counts.
func (r *runner) sample(at time.Duration) Sample {
	s := measure(at, filepath.Join(r.stack.Config.DataDir, daemon.DBFile))
	st := r.stack.Daemon.Engine().Status()
	s.Active, s.Queued = st.Active, st.Queued
	s.Invoices = r.stack.Sim.Stats().InvoiceCount
	s.GatewayConns = r.gateway.open()
	r.mu.Lock()
	for _, n := range r.rep.Outcomes {
		s.Finished += n
	}
	r.mu.Unlock()
	return s
}

// profile writes a goroutine dump named goroutines-NAME.txt.
func (r *runner) profile(name string) {
	if r.o.ProfileDir == "" {
		return
	}
	f, err := os.Create(filepath.Join(r.o.ProfileDir, "goroutines-"+name+".txt"))
	if err != nil {
		fmt.Fprintf(r.o.Progress, "goroutine profile: %v\n", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 1); err != nil {
		fmt.Fprintf(r.o.Progress, "goroutine profile: %v\n", err)
	}
	// The live heap (after a collection), for go tool pprof -base.
	runtime.GC()
	if hf, err := os.Create(filepath.Join(r.o.ProfileDir, "heap-"+name+".pb.gz")); err == nil {
		if err := pprof.Lookup("heap").WriteTo(hf, 0); err != nil {
			fmt.Fprintf(r.o.Progress, "heap profile: %v\n", err)
		}
		hf.Close()
	}
	// And what each open descriptor is, where /proc tells.
	if fds := listFDs(); len(fds) > 0 {
		if err := os.WriteFile(filepath.Join(r.o.ProfileDir, "fds-"+name+".txt"), []byte(strings.Join(fds, "\n")+"\n"), 0o644); err != nil {
			fmt.Fprintf(r.o.Progress, "fd list: %v\n", err)
		}
	}
}

// freeAddr is a loopback address whose port was free a moment ago: the
// broker must come back on the same port after each restart.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("soak: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
