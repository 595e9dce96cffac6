package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/protocol"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// LinkKind says how a terminal is connected.
type LinkKind string

// The link kinds.
const (
	LinkSerial LinkKind = "serial"
	LinkMQTT   LinkKind = "mqtt"
)

// TerminalConfig is one terminal the bridge serves.
type TerminalConfig struct {
	// ID is the Hesabe terminal_id; it is also the protocol's terminal_id.
	ID string `yaml:"terminal_id" json:"terminal_id"`
	// Serial: the terminal is on this port. Exactly one of Serial and MQTT.
	Serial *serial.PortSpec `yaml:"serial,omitempty" json:"serial,omitempty"`
	// MQTT: the terminal talks to the bridge through the broker.
	MQTT bool `yaml:"mqtt,omitempty" json:"mqtt,omitempty"`
}

// Config configures a Hub. Zero durations take defaults.
type Config struct {
	Terminals []TerminalConfig
	// MQTT is the broker connection, required when a terminal uses MQTT.
	// For the embedded broker, set BrokerURL to Broker.URL().
	MQTT *mqtt.Config

	// OnEvent receives terminal events (see the package doc): one
	// terminal's in order, different terminals' concurrently. Its ctx
	// ends when the hub closes. Returning an error for a result event
	// leaves the result unacknowledged so the terminal sends it again.
	// Nil: events are dropped, results acked.
	OnEvent func(ctx context.Context, ev pos.TerminalEvent) error
	// Trace sees every protocol message and serial control frame; it must
	// not block. Nil: no tracing.
	Trace TraceFunc
	// Logger; default slog.Default(). Payloads and passwords are never
	// logged.
	Logger *slog.Logger

	// ResendInterval: an unacknowledged reliable message is sent again
	// this long after the last try (and at once after a reconnect).
	// Default 2s.
	ResendInterval time.Duration
	// DefaultInvoiceTTL: how long an invoice without a deadline is kept in
	// the outbox. Default 5 minutes.
	DefaultInvoiceTTL time.Duration
	// PingInterval: a connected terminal not heard from for this long is
	// pinged; not heard from for 3× this long it is reported disconnected
	// (and its serial port reopened). Default 15s.
	PingInterval time.Duration
	// SendTimeout bounds one transmission (serial retransmits included,
	// or one MQTT PUBACK). Default 10s.
	SendTimeout time.Duration

	// Serial tunes the serial links (ReopenDelay, ACK timeout, ...); its
	// OnData, OnUp and OnDown are set by the hub.
	Serial SerialOptions
}

// SerialOptions tunes every serial link.
type SerialOptions struct {
	Conn        serial.ConnConfig
	ReopenDelay time.Duration
	MaxBackoff  time.Duration
	// ListPorts and OpenPort are seams for tests (pseudo-terminals never
	// show up in the USB enumerator). Nil: the real ones.
	ListPorts func() ([]serial.PortInfo, error)
	OpenPort  func(path string, baud int) (io.ReadWriteCloser, error)
}

func (c *Config) setDefaults() {
	if c.ResendInterval <= 0 {
		c.ResendInterval = 2 * time.Second
	}
	if c.DefaultInvoiceTTL <= 0 {
		c.DefaultInvoiceTTL = 5 * time.Minute
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// ConfigError is a config problem: which field, and what is wrong.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("terminal config: %s: %v", e.Field, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Validate checks the config without opening anything.
func (c Config) Validate() error {
	seen := map[string]bool{}
	usesMQTT := false
	for i, t := range c.Terminals {
		field := fmt.Sprintf("terminals[%d]", i)
		if !protocol.ValidID(t.ID) {
			return &ConfigError{field + ".terminal_id", fmt.Errorf("%q: 1-64 printable characters, no spaces, '/', '+' or '#'", t.ID)}
		}
		if seen[t.ID] {
			return &ConfigError{field + ".terminal_id", fmt.Errorf("%q listed twice", t.ID)}
		}
		seen[t.ID] = true
		switch {
		case t.Serial != nil && t.MQTT:
			return &ConfigError{field, errors.New("choose serial or mqtt, not both")}
		case t.Serial != nil:
			if err := t.Serial.Validate(); err != nil {
				return &ConfigError{field + ".serial", err}
			}
		case t.MQTT:
			usesMQTT = true
		default:
			return &ConfigError{field, errors.New("no link: set serial or mqtt")}
		}
	}
	if usesMQTT {
		if c.MQTT == nil {
			return &ConfigError{"mqtt", errors.New("a terminal uses mqtt but no broker is configured")}
		}
		if err := c.MQTT.Validate(); err != nil {
			return &ConfigError{"mqtt", errors.New(strings.TrimPrefix(err.Error(), "mqtt: "))}
		}
		if c.MQTT.ClientID == "" {
			return &ConfigError{"mqtt.client_id", errors.New("each bridge needs its own client id")}
		}
	}
	return nil
}

// InvoicePush is an invoice to show on a terminal.
type InvoicePush struct {
	// TransactionID is Hesabe's transaction id; the result carries it back.
	TransactionID string
	// InvoiceNumber is the bridge's own unique reference.
	InvoiceNumber string
	Amount        pos.Money
	Description   string
	CustomerName  string
	// Deadline: the hub stops delivering the invoice after it, and the
	// terminal stops offering it. Zero: now + DefaultInvoiceTTL.
	Deadline time.Time
}

func (p InvoicePush) message() *protocol.Invoice {
	return &protocol.Invoice{
		TransactionID: p.TransactionID, InvoiceNumber: p.InvoiceNumber, Amount: p.Amount,
		Description: p.Description, CustomerName: p.CustomerName, Deadline: p.Deadline,
	}
}

// InvoicePushFrom converts a protocol invoice (what a terminal receives).
func InvoicePushFrom(in *protocol.Invoice) InvoicePush {
	return InvoicePush{
		TransactionID: in.TransactionID, InvoiceNumber: in.InvoiceNumber, Amount: in.Amount,
		Description: in.Description, CustomerName: in.CustomerName, Deadline: in.Deadline,
	}
}

// Status is what the registry knows about one terminal.
type Status struct {
	TerminalID string   `json:"terminal_id"`
	Known      bool     `json:"known"` // in the config (false: it spoke to us unasked)
	Link       LinkKind `json:"link"`
	// Connected: the link is up and the terminal identified itself and
	// has not gone silent.
	Connected      bool      `json:"connected"`
	Busy           bool      `json:"busy"`
	TransactionID  string    `json:"transaction_id,omitempty"` // what it is busy with
	LastSeen       time.Time `json:"last_seen,omitzero"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	Model          string    `json:"model,omitempty"`
	SerialNumber   string    `json:"serial_number,omitempty"`
	AppVersion     string    `json:"app_version,omitempty"`
	// Port is the serial path last opened; until the port first opens,
	// what it tries to open (the path, or a USB identity no device
	// matches yet), LastError saying why it fails.
	Port        string `json:"port,omitempty"`
	Reconnects  uint64 `json:"reconnects"`
	FrameErrors uint64 `json:"frame_errors"`
	// Pending counts messages waiting for the terminal's acknowledgement.
	Pending   int    `json:"pending"`
	LastError string `json:"last_error,omitempty"`
	// DroppedEvents counts events not passed to OnEvent because the
	// terminal's event queue was full (results among them were left
	// unacknowledged, and so come again).
	DroppedEvents uint64 `json:"dropped_events"`
}

// Direction of a traced message.
type Direction string

// The trace directions.
const (
	In  Direction = "in"  // terminal → bridge
	Out Direction = "out" // bridge → terminal
)

// Trace is one traced frame: never its content.
type Trace struct {
	At         time.Time `json:"at"`
	Dir        Direction `json:"dir"`
	TerminalID string    `json:"terminal_id"`
	Link       LinkKind  `json:"link"`
	// Kind is the protocol message kind, "frame-ack"/"frame-nak" for
	// serial control frames, or "invalid" for an undecodable message.
	Kind  string `json:"kind"`
	Bytes int    `json:"bytes"`
}

// TraceFunc receives traces; it must return quickly.
type TraceFunc func(Trace)
