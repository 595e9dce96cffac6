// Package termsim is a card terminal simulator: it speaks the posbridge
// terminal protocol over serial or MQTT the way a terminal app (a PAX A99)
// would, and approves, declines, times out or goes silent on command, so
// the whole payment flow runs without hardware. `posbridge sim terminal`
// is a thin CLI over Run.
package termsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// Action is what the simulated customer/terminal does with one invoice.
type Action string

// The actions.
const (
	// Approve: after Delay, result approved with a reference.
	Approve Action = "approve"
	// Decline: after Delay, result declined.
	Decline Action = "decline"
	// Timeout: the customer never taps; after Delay, result canceled with
	// reason "timeout".
	Timeout Action = "timeout"
	// Silent: the terminal app hangs: the invoice is not acknowledged and
	// no result comes. In Mode silent the terminal answers nothing at all
	// (no pong either), though its link layer still works.
	Silent Action = "silent"
)

// ParseScript reads a comma-separated list of actions, e.g.
// "approve,decline,silent". Invoices take the actions in turn, wrapping
// around at the end.
func ParseScript(s string) ([]Action, error) {
	var out []Action
	for _, f := range strings.Split(s, ",") {
		a := Action(strings.ToLower(strings.TrimSpace(f)))
		switch a {
		case Approve, Decline, Timeout, Silent:
			out = append(out, a)
		case "":
		default:
			return nil, fmt.Errorf("termsim: unknown action %q (want approve, decline, timeout or silent)", f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("termsim: empty script")
	}
	return out, nil
}

// Config configures a simulated terminal. Set exactly one transport:
// SerialPath, Port or MQTT.
type Config struct {
	// TerminalID is the Hesabe terminal_id to identify as.
	TerminalID   string
	Model        string // default "PAX A99 (simulated)"
	SerialNumber string // default "SIM-" + TerminalID
	AppVersion   string // default "termsim 1"

	// SerialPath: open this serial port (reopened if it goes away).
	SerialPath string
	Baud       int
	// Port: use this already open stream (e.g. a pty master in tests).
	Port io.ReadWriteCloser
	// NextPort, with Port: each stream received replaces the current one,
	// which is closed, as when the cable is unplugged and another plugged
	// in: the terminal app keeps its payments and says hello again.
	NextPort <-chan io.ReadWriteCloser
	// MQTT: connect to this broker as the terminal.
	MQTT *mqtt.Config

	// Mode is approve, decline, timeout or silent; Script, when set,
	// overrides it with one action per invoice (see ParseScript).
	Mode   Action
	Script []Action
	// Delay before the result (the customer's time to tap). Default 0.
	Delay time.Duration
	// ResendInterval: a result or hello not acknowledged by the bridge is
	// sent again this often. Default 2s.
	ResendInterval time.Duration

	// OnPayment, if set, is called when a payment ends (before the result
	// is sent), e.g. to mark the invoice paid at the Hesabe simulator.
	// An error is logged; the result is still sent.
	OnPayment func(ctx context.Context, inv terminal.InvoicePush, outcome pos.Outcome) error
	// OnInvoice, if set, is told of every new invoice the terminal shows.
	OnInvoice func(inv terminal.InvoicePush)
	Logger    *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Model == "" {
		c.Model = "PAX A99 (simulated)"
	}
	if c.SerialNumber == "" {
		c.SerialNumber = "SIM-" + c.TerminalID
	}
	if c.AppVersion == "" {
		c.AppVersion = "termsim 1"
	}
	if c.Mode == "" {
		c.Mode = Approve
	}
	if c.ResendInterval <= 0 {
		c.ResendInterval = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c Config) validate() error {
	n := 0
	for _, set := range []bool{c.SerialPath != "", c.Port != nil, c.MQTT != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("termsim: set exactly one of serial path, port or mqtt")
	}
	if c.TerminalID == "" {
		return errors.New("termsim: terminal id is empty")
	}
	switch c.Mode {
	case "", Approve, Decline, Timeout, Silent:
	default:
		return fmt.Errorf("termsim: unknown mode %q", c.Mode)
	}
	return nil
}

// Run simulates the terminal until ctx ends. It returns nil then, or an
// error if the transport cannot be set up.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg.setDefaults()
	s := newSim(cfg)
	return s.run(ctx)
}

// transport is what the simulator needs from a link.
type transport interface {
	send(ctx context.Context, payload []byte) error
}

type serialLink struct{ l *serial.Link }

func (s serialLink) send(ctx context.Context, p []byte) error { return s.l.Send(ctx, p) }

// swapConn is the serial connection on the current Port, replaced when
// another port comes (Config.NextPort).
type swapConn struct {
	mu     sync.Mutex
	c      *serial.Conn
	closed bool
}

func (s *swapConn) send(ctx context.Context, p []byte) error {
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	if c == nil {
		return serial.ErrNotConnected
	}
	return c.Send(ctx, p)
}

// set makes c the connection, closing the one before; after close it
// closes c instead.
func (s *swapConn) set(c *serial.Conn) {
	s.mu.Lock()
	old := s.c
	if s.closed {
		old = c
	} else {
		s.c = c
	}
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (s *swapConn) close() {
	s.mu.Lock()
	s.closed = true
	c := s.c
	s.c = nil
	s.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

type mqttLink struct{ t *mqtt.Terminal }

func (m mqttLink) send(ctx context.Context, p []byte) error { return m.t.Publish(ctx, p) }
