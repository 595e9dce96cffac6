// Package demo runs the whole bridge on one machine with nothing external:
// the Hesabe simulator, the embedded MQTT broker, simulated terminals (one
// over MQTT, one over a serial pseudo-terminal where the platform has
// them) and the real daemon wired to them. `posbridge demo`, the
// end-to-end tests and the load command all start this stack.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/logging"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
)

// The simulated terminals: the sandbox merchant's two terminal ids.
const (
	MQTTTerminal   = "29708454" // an A99 over MQTT
	SerialTerminal = "48515"    // an A920 over a serial pty
)

// Options configures the stack.
type Options struct {
	// DataDir for the database; "" makes a temporary one, removed by Close.
	DataDir string
	// APIListen and DiagListen: default 127.0.0.1:8470 and :8471; when
	// such a default port is busy, any free port is used instead.
	APIListen, DiagListen string
	// Token for the till API and diagnostics; "" makes a random one.
	Token string
	// NoSerial leaves out the serial terminal.
	NoSerial bool
	// Mode and Delay of the simulated terminals (default approve after 1 s).
	Mode  termsim.Action
	Delay time.Duration
	// Script overrides Mode per terminal id (a sequence of actions).
	Script map[string][]termsim.Action
	// ExtraTerminals adds this many terminals (ids T0001…) known to the
	// simulator, with no local link: results come from gateway polling.
	// The load command uses them to spread checkouts.
	ExtraTerminals int
	// Configure may change the generated config before the daemon starts.
	Configure func(*config.Config)
	// Logger for the daemon (default: discard). LogLevel applies to it.
	Log      io.Writer
	LogLevel slog.Level
}

// Stack is the running demo.
type Stack struct {
	Sim    *hesabesim.Server
	Daemon *daemon.Daemon
	Config config.Config
	Token  string
	// SerialPort is the pty path the daemon uses for the serial terminal
	// ("" without one).
	SerialPort string

	tmpDir   string
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closers  []func() error
	simErrMu sync.Mutex
	simErrs  []error
}

// Start brings the stack up. Close it when done.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	s := &Stack{Token: opts.Token}
	defer func() {
		if err != nil {
			closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Close(closeCtx)
		}
	}()
	if s.Token == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		s.Token = "demo-" + hex.EncodeToString(b)
	}
	dataDir := opts.DataDir
	if dataDir == "" {
		if s.tmpDir, err = os.MkdirTemp("", "posbridge-demo-"); err != nil {
			return nil, err
		}
		dataDir = s.tmpDir
	}
	simOpts := hesabesim.DefaultOptions()
	extra := make([]string, opts.ExtraTerminals)
	for i := range extra {
		extra[i] = fmt.Sprintf("T%04d", i+1)
		simOpts.Merchants[0].Terminals = append(simOpts.Merchants[0].Terminals,
			hesabe.Terminal{ID: int64(1000 + i), TerminalID: extra[i], TerminalName: "A99", PosType: 1, MerchantID: 84, MerchantCode: "842217"})
	}
	s.Sim, err = hesabesim.Start("127.0.0.1:0", simOpts)
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.DataDir = dataDir
	m := hesabesim.SandboxMerchant()
	cfg.Hesabe = config.Hesabe{MerchantURL: s.Sim.APIURL(), PaymentURL: s.Sim.APIURL(), MerchantCode: m.Code,
		AccessCode: config.Secret(m.AccessCode), SecretKey: config.Secret(m.SecretKey), IVKey: config.Secret(m.IVKey),
		Username: m.Username, Password: config.Secret(m.Password), Timeout: config.Duration(10 * time.Second)}
	cfg.API = config.Listener{Listen: pickAddr(opts.APIListen, "127.0.0.1:8470"), Token: config.Secret(s.Token)}
	cfg.Diagnostics = config.Listener{Listen: pickAddr(opts.DiagListen, "127.0.0.1:8471"), Token: config.Secret(s.Token)}
	cfg.MQTT.Embedded.Enabled = true
	cfg.MQTT.Embedded.Listen = "127.0.0.1:0"
	cfg.Checkout.PollInterval = config.Duration(time.Second)
	cfg.Checkout.DrainRate = 0
	cfg.Terminals = []config.Terminal{{ID: MQTTTerminal, Name: "Lane 1 (simulated A99)", Link: "mqtt"}}
	for _, id := range extra {
		cfg.Terminals = append(cfg.Terminals, config.Terminal{ID: id, Link: "none"})
	}

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var serialTerm *termsim.Config
	if !opts.NoSerial {
		port, termSide, closer, perr := openPTY()
		if perr != nil && !errors.Is(perr, errNoPTY) {
			return nil, perr
		}
		if perr == nil {
			s.closers = append(s.closers, closer)
			s.SerialPort = port
			cfg.Terminals = append(cfg.Terminals, config.Terminal{ID: SerialTerminal, Name: "Lane 2 (simulated A920, serial)",
				Link: "serial", Serial: config.SerialLink{Port: port, Baud: 115200}})
			serialTerm = &termsim.Config{TerminalID: SerialTerminal, Model: "PAX A920 (simulated)", Port: termSide}
		}
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	s.Config = cfg

	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	recent := logging.NewRecent(50)
	red := &logging.Redactor{}
	red.Add(s.Token, m.AccessCode, m.SecretKey, m.IVKey, m.Password)
	log := logging.New(logw, logging.Options{Level: opts.LogLevel, Redact: red, Recent: recent})
	s.Daemon, err = daemon.New(daemon.Options{Config: cfg, Version: "demo", Logger: log, Recent: recent, CloseTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	if err := s.Daemon.Open(ctx); err != nil {
		return nil, err
	}

	// The simulated terminals connect once the daemon (and its broker) runs.
	mode, delay := opts.Mode, opts.Delay
	if mode == "" {
		mode = termsim.Approve
	}
	if delay == 0 {
		delay = time.Second
	}
	simLog := log.With("component", "termsim") // for its own lines: termsim adds the component to its logger itself
	mqttTerm := termsim.Config{TerminalID: MQTTTerminal, Model: "PAX A99 (simulated)",
		MQTT: &mqtt.Config{BrokerURL: "tcp://" + s.Daemon.BrokerAddr(), ClientID: "termsim-" + MQTTTerminal,
			TopicPrefix: cfg.MQTT.TopicPrefix, Username: cfg.MQTT.Username, Password: cfg.MQTT.Password.Value()}}
	for _, tc := range []*termsim.Config{&mqttTerm, serialTerm} {
		if tc == nil {
			continue
		}
		tc.Mode, tc.Delay, tc.Script, tc.Logger = mode, delay, opts.Script[tc.TerminalID], log
		tc.OnPayment = s.markAtGateway
		s.wg.Add(1)
		go func(tc termsim.Config) {
			defer s.wg.Done()
			if err := termsim.Run(runCtx, tc); err != nil && runCtx.Err() == nil {
				s.simErrMu.Lock()
				s.simErrs = append(s.simErrs, fmt.Errorf("terminal %s: %w", tc.TerminalID, err))
				s.simErrMu.Unlock()
				simLog.Error("simulated terminal stopped", "terminal", tc.TerminalID, "err", err)
			}
		}(*tc)
	}
	return s, nil
}

// markAtGateway is what a real terminal's payment does at Hesabe: the
// invoice's status changes there, so gateway polling agrees with the
// terminal.
func (s *Stack) markAtGateway(ctx context.Context, inv terminal.InvoicePush, outcome pos.Outcome) error {
	st := hesabe.InvoicePaid
	switch outcome {
	case pos.OutcomeDeclined:
		st = hesabe.InvoiceFailed
	case pos.OutcomeCanceled:
		st = hesabe.InvoiceCanceled
	}
	return s.Sim.SetInvoiceStatusByTransaction(inv.TransactionID, st)
}

// Client returns a till API client for the stack.
func (s *Stack) Client() *api.Client {
	return &api.Client{URL: s.Daemon.APIURL(), Token: s.Token}
}

// WaitTerminals waits until every configured terminal's link is up.
func (s *Stack) WaitTerminals(ctx context.Context) error {
	c := s.Client()
	for {
		list, err := c.Terminals(ctx)
		if err == nil {
			up := 0
			for _, t := range list {
				if t.Connected {
					up++
				}
			}
			if up == len(list) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("terminals not connected: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close stops the terminals, the daemon and the simulator, and removes a
// temporary data dir.
func (s *Stack) Close(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	var errs []error
	if s.Daemon != nil {
		errs = append(errs, s.Daemon.Close(ctx))
	}
	// Close the pty before waiting for the terminals: a simulated serial
	// terminal blocked reading its end returns only when it is closed.
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	s.wg.Wait()
	if s.Sim != nil {
		errs = append(errs, s.Sim.Close(ctx))
	}
	if s.tmpDir != "" {
		errs = append(errs, os.RemoveAll(s.tmpDir))
	}
	return errors.Join(errs...)
}

// pickAddr returns want, or def when want is empty; a busy default falls
// back to any free loopback port.
func pickAddr(want, def string) string {
	if want != "" {
		return want
	}
	ln, err := net.Listen("tcp", def)
	if err != nil {
		return "127.0.0.1:0"
	}
	_ = ln.Close()
	return def
}
