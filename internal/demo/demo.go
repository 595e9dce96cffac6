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
	"path/filepath"
	"slices"
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
	// MQTTTerminals adds this many simulated terminals over MQTT (ids
	// M0001…) beside the A99, known to the simulator.
	MQTTTerminals int
	// BrokerURL, when set, is an MQTT broker (tcp://127.0.0.1:PORT) the
	// daemon and the simulated terminals use instead of the daemon's
	// embedded one: the soak restarts it to drop every connection.
	BrokerURL string
	// TerminalBrokerURL, when set, is where the simulated MQTT terminals
	// connect instead (a proxy to the broker that can cut them off).
	TerminalBrokerURL string
	// ReplugSerial makes the daemon open the serial terminal's pty through
	// a symbolic link, so ReplugSerial can unplug it and plug in a new one
	// at the same path.
	ReplugSerial bool
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

	simLog   *slog.Logger
	tmpDir   string
	linkDir  string // holds the serial terminal's link (ReplugSerial)
	cancel   context.CancelFunc
	runCtx   context.Context
	wg       sync.WaitGroup
	simErrMu sync.Mutex
	simErrs  []error

	termMu sync.Mutex
	terms  map[string]*simTerm
}

// simTerm is one running simulated terminal.
type simTerm struct {
	done chan struct{}
	// closePort closes the serial terminal's pty (both ends): nil for
	// an MQTT terminal. next hands the serial terminal a new pty.
	closePort func() error
	next      chan io.ReadWriteCloser
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
	mqttExtra := make([]string, opts.MQTTTerminals)
	for i := range mqttExtra {
		mqttExtra[i] = fmt.Sprintf("M%04d", i+1)
		simOpts.Merchants[0].Terminals = append(simOpts.Merchants[0].Terminals,
			hesabe.Terminal{ID: int64(5000 + i), TerminalID: mqttExtra[i], TerminalName: "A99", PosType: 1, MerchantID: 84, MerchantCode: "842217"})
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
	if opts.BrokerURL != "" {
		cfg.MQTT.Broker = opts.BrokerURL
	} else {
		cfg.MQTT.Embedded.Enabled = true
		cfg.MQTT.Embedded.Listen = "127.0.0.1:0"
	}
	cfg.Checkout.PollInterval = config.Duration(time.Second)
	cfg.Checkout.DrainRate = 0
	cfg.Terminals = []config.Terminal{{ID: MQTTTerminal, Name: "Lane 1 (simulated A99)", Link: "mqtt"}}
	for _, id := range mqttExtra {
		cfg.Terminals = append(cfg.Terminals, config.Terminal{ID: id, Name: "Simulated A99 " + id, Link: "mqtt"})
	}
	for _, id := range extra {
		cfg.Terminals = append(cfg.Terminals, config.Terminal{ID: id, Link: "none"})
	}

	s.runCtx, s.cancel = context.WithCancel(context.Background())
	s.terms = make(map[string]*simTerm)
	var serialTerm *termsim.Config
	var serialClose func() error
	if !opts.NoSerial {
		port, termSide, closer, perr := openPTY()
		if perr != nil && !errors.Is(perr, errNoPTY) {
			return nil, perr
		}
		if perr == nil {
			serialClose = closer
			s.SerialPort = port
			if opts.ReplugSerial {
				if s.linkDir, err = os.MkdirTemp("", "posbridge-demo-serial-"); err != nil {
					_ = closer()
					return nil, fmt.Errorf("serial link dir: %w", err)
				}
				s.SerialPort = filepath.Join(s.linkDir, "tty-"+SerialTerminal)
				if err := pointLink(s.SerialPort, port); err != nil {
					_ = closer()
					return nil, err
				}
			}
			cfg.Terminals = append(cfg.Terminals, config.Terminal{ID: SerialTerminal, Name: "Lane 2 (simulated A920, serial)",
				Link: "serial", Serial: config.SerialLink{Port: s.SerialPort, Baud: 115200}})
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
		if serialClose != nil {
			_ = serialClose()
		}
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
	brokerURL := opts.BrokerURL
	if brokerURL == "" {
		brokerURL = "tcp://" + s.Daemon.BrokerAddr()
	}
	if opts.TerminalBrokerURL != "" {
		brokerURL = opts.TerminalBrokerURL
	}
	s.simLog = log.With("component", "termsim") // for its own lines: termsim adds the component to its logger itself
	mqttTerms := []termsim.Config{{TerminalID: MQTTTerminal, Model: "PAX A99 (simulated)"}}
	for _, id := range mqttExtra {
		mqttTerms = append(mqttTerms, termsim.Config{TerminalID: id, Model: "PAX A99 (simulated)"})
	}
	for _, tc := range mqttTerms {
		tc.MQTT = &mqtt.Config{BrokerURL: brokerURL, ClientID: "termsim-" + tc.TerminalID,
			TopicPrefix: cfg.MQTT.TopicPrefix, Username: cfg.MQTT.Username, Password: cfg.MQTT.Password.Value()}
		tc.Mode, tc.Delay, tc.Script, tc.Logger = mode, delay, opts.Script[tc.TerminalID], log
		tc.OnPayment = s.markAtGateway
		s.startTerm(tc, nil)
	}
	if serialTerm != nil {
		tc := *serialTerm
		tc.Mode, tc.Delay, tc.Script, tc.Logger = mode, delay, opts.Script[tc.TerminalID], log
		tc.OnPayment = s.markAtGateway
		s.startTerm(tc, serialClose)
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

// WaitTerminals waits until every configured terminal with a link is up
// (those without one, ExtraTerminals, never connect).
func (s *Stack) WaitTerminals(ctx context.Context) error {
	c := s.Client()
	for {
		list, err := c.Terminals(ctx)
		if err == nil {
			up, linked := 0, 0
			for _, t := range list {
				if t.Link != "none" {
					linked++
				}
				if t.Connected {
					up++
				}
			}
			if up == linked {
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

// startTerm runs one simulated terminal until the stack closes.
// closePort, for the serial terminal, closes its pty.
func (s *Stack) startTerm(tc termsim.Config, closePort func() error) {
	st := &simTerm{done: make(chan struct{}), closePort: closePort}
	if closePort != nil {
		st.next = make(chan io.ReadWriteCloser)
		tc.NextPort = st.next
	}
	s.termMu.Lock()
	s.terms[tc.TerminalID] = st
	s.termMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(st.done)
		if err := termsim.Run(s.runCtx, tc); err != nil && s.runCtx.Err() == nil {
			s.simErrMu.Lock()
			s.simErrs = append(s.simErrs, fmt.Errorf("terminal %s: %w", tc.TerminalID, err))
			s.simErrMu.Unlock()
			s.simLog.Error("simulated terminal stopped", "terminal", tc.TerminalID, "err", err)
		}
	}()
}

// Terminals lists the simulated terminals' ids (MQTT ones and the serial
// one, if any), sorted.
func (s *Stack) Terminals() []string {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	ids := make([]string, 0, len(s.terms))
	for id := range s.terms {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ReplugSerial pulls the serial terminal's cable: it plugs a new pty in
// at the same path, hands it to the simulated terminal (which keeps its
// payments) and closes the old one, so the daemon's port fails and it
// opens the path again. The stack must have been started with
// ReplugSerial.
func (s *Stack) ReplugSerial(ctx context.Context) error {
	s.termMu.Lock()
	st := s.terms[SerialTerminal]
	s.termMu.Unlock()
	if s.linkDir == "" || st == nil {
		return errors.New("demo: the serial terminal cannot be replugged (start the stack with ReplugSerial)")
	}
	port, termSide, closer, err := openPTY()
	if err != nil {
		return fmt.Errorf("demo: replug serial: %w", err)
	}
	if err := pointLink(s.SerialPort, port); err != nil {
		return errors.Join(err, closer())
	}
	select {
	case st.next <- termSide:
	case <-st.done:
		return errors.Join(errors.New("demo: replug serial: the simulated terminal has stopped"), closer())
	case <-ctx.Done():
		return errors.Join(fmt.Errorf("demo: replug serial: %w", ctx.Err()), closer())
	}
	s.termMu.Lock()
	old := st.closePort
	st.closePort = closer
	s.termMu.Unlock()
	return old()
}

// pointLink makes link a symbolic link to target, replacing what was
// there in one step.
func pointLink(link, target string) error {
	tmp := link + ".new"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("demo: serial link: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		return fmt.Errorf("demo: serial link: %w", err)
	}
	return nil
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
	s.termMu.Lock()
	for _, st := range s.terms {
		if st.closePort != nil {
			errs = append(errs, st.closePort())
		}
	}
	s.termMu.Unlock()
	s.wg.Wait()
	if s.Sim != nil {
		errs = append(errs, s.Sim.Close(ctx))
	}
	if s.tmpDir != "" {
		errs = append(errs, os.RemoveAll(s.tmpDir))
	}
	if s.linkDir != "" {
		errs = append(errs, os.RemoveAll(s.linkDir))
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
