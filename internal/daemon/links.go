package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/diag"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// links runs the terminal hub (and the embedded MQTT broker when the
// config asks for it) and adapts it to the engine, the till API and the
// diagnostics page.
type links struct {
	cfg    config.Config
	base   *slog.Logger // the daemon's: each part adds its own component
	log    *slog.Logger // component terminal
	trace  *diag.Trace
	mets   *diag.Metrics
	names  map[string]string
	broker *mqtt.Broker
	hub    *terminal.Hub
}

func newLinks(cfg config.Config, log *slog.Logger, trace *diag.Trace, mets *diag.Metrics) (*links, error) {
	l := &links{cfg: cfg, base: log, log: log.With("component", "terminal"), trace: trace, mets: mets, names: map[string]string{}}
	for _, t := range cfg.Terminals {
		l.names[t.ID] = t.Name
	}
	return l, nil
}

// hubConfig maps the config file's terminals to the hub's.
func (l *links) hubConfig(onEvent func(context.Context, pos.TerminalEvent) error) (terminal.Config, error) {
	hc := terminal.Config{
		Logger: l.base, // the hub adds component terminal
		// A result the engine could not take stays unacknowledged at the
		// terminal, which sends it again: at least once, never lost.
		OnEvent: onEvent,
		Trace: func(t terminal.Trace) {
			f := diag.Frame{At: t.At, Dir: string(t.Dir), Terminal: t.TerminalID, Link: string(t.Link), Kind: t.Kind, Bytes: t.Bytes}
			l.trace.Record(f)
			l.mets.ObserveFrame(f)
		},
	}
	usesMQTT := false
	for _, t := range l.cfg.Terminals {
		tc := terminal.TerminalConfig{ID: t.ID}
		switch t.Link {
		case "mqtt":
			tc.MQTT, usesMQTT = true, true
		case "serial":
			spec := serial.PortSpec{Path: t.Serial.Port, Baud: t.Serial.Baud}
			if t.Serial.USB.VID != "" || t.Serial.USB.Serial != "" {
				spec.USB = &serial.USBID{VID: t.Serial.USB.VID, PID: t.Serial.USB.PID, SerialNumber: t.Serial.USB.Serial}
			}
			tc.Serial = &spec
		default:
			continue // "none": results come from gateway polling only
		}
		hc.Terminals = append(hc.Terminals, tc)
	}
	if usesMQTT {
		m := l.cfg.MQTT
		hc.MQTT = &mqtt.Config{BrokerURL: m.Broker, Username: m.Username, Password: m.Password.Value(),
			ClientID: m.ClientID, TopicPrefix: m.TopicPrefix, CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile}
		if hc.MQTT.ClientID == "" {
			hc.MQTT.ClientID = "posbridge-" + l.cfg.Hesabe.MerchantCode
		}
	}
	return hc, nil
}

// open starts the embedded broker (if used) and the hub. Terminal events
// go to onEvent.
func (l *links) open(ctx context.Context, onEvent func(context.Context, pos.TerminalEvent) error) error {
	hc, err := l.hubConfig(onEvent)
	if err != nil {
		return err
	}
	if len(hc.Terminals) == 0 {
		return nil
	}
	if hc.MQTT != nil && hc.MQTT.BrokerURL == "" {
		l.broker = mqtt.NewBroker(mqtt.BrokerConfig{Addr: l.cfg.MQTT.Embedded.Listen, Username: l.cfg.MQTT.Username,
			Password: l.cfg.MQTT.Password.Value(), Logger: l.base.With("component", "mqtt-broker")})
		if err := l.broker.Open(ctx); err != nil {
			return fmt.Errorf("embedded MQTT broker: %w", err)
		}
		hc.MQTT.BrokerURL = l.broker.URL()
		l.log.Info("embedded MQTT broker listening", "addr", l.broker.Addr())
	}
	hub, err := terminal.New(hc)
	if err != nil {
		return err
	}
	if err := hub.Open(ctx); err != nil {
		return fmt.Errorf("terminal links: %w", err)
	}
	l.hub = hub
	return nil
}

func (l *links) close(ctx context.Context) error {
	var errs []error
	if l.hub != nil {
		errs = append(errs, l.hub.Close(ctx))
	}
	if l.broker != nil {
		errs = append(errs, l.broker.Close(ctx))
	}
	return errors.Join(errs...)
}

// BrokerAddr is the embedded broker's address, "" when none runs.
func (l *links) BrokerAddr() string {
	if l.broker == nil {
		return ""
	}
	return l.broker.Addr()
}

// ping asks a terminal to answer over its link.
func (l *links) ping(ctx context.Context, id string) error {
	if !l.linked(id) {
		return fmt.Errorf("terminal %q has no local link (link: none or not configured)", id)
	}
	if l.hub == nil {
		return terminal.ErrClosed
	}
	return l.hub.Ping(ctx, id)
}

// PushInvoice implements engine.TerminalLink.
func (l *links) PushInvoice(ctx context.Context, c pos.Checkout) error {
	if l.hub == nil || !l.linked(c.TerminalID) {
		return nil
	}
	return terminal.CheckoutLink{Hub: l.hub}.PushInvoice(ctx, c)
}

// CancelInvoice implements engine.TerminalLink.
func (l *links) CancelInvoice(ctx context.Context, c pos.Checkout) error {
	if l.hub == nil || !l.linked(c.TerminalID) {
		return nil
	}
	return terminal.CheckoutLink{Hub: l.hub}.CancelInvoice(ctx, c)
}

func (l *links) linked(id string) bool {
	for _, t := range l.cfg.Terminals {
		if t.ID == id {
			return t.Link == "mqtt" || t.Link == "serial"
		}
	}
	return false
}

// statuses returns the hub's view of every configured terminal, with
// "none" links filled in.
func (l *links) statuses() []terminal.Status {
	byID := map[string]terminal.Status{}
	if l.hub != nil {
		for _, s := range l.hub.Terminals() {
			byID[s.TerminalID] = s
		}
	}
	out := make([]terminal.Status, 0, len(l.cfg.Terminals))
	for _, t := range l.cfg.Terminals {
		s, ok := byID[t.ID]
		if !ok {
			s = terminal.Status{TerminalID: t.ID, Known: true, Link: terminal.LinkKind(t.Link)}
		}
		out = append(out, s)
	}
	return out
}

// List implements api.Terminals.
func (l *links) List() []api.TerminalInfo {
	var out []api.TerminalInfo
	for _, s := range l.statuses() {
		out = append(out, api.TerminalInfo{ID: s.TerminalID, Name: l.names[s.TerminalID], Model: s.Model,
			Link: string(s.Link), Connected: s.Connected, Busy: s.Busy, LastSeen: s.LastSeen})
	}
	return out
}

// health feeds the diagnostics page. A terminal with link "none" is
// reported connected: nothing can be down.
func (l *links) health() []diag.TerminalHealth {
	var out []diag.TerminalHealth
	for _, s := range l.statuses() {
		h := diag.TerminalHealth{ID: s.TerminalID, Name: l.names[s.TerminalID], Model: s.Model, Link: string(s.Link),
			Address: s.Port, Connected: s.Connected || s.Link == "none", Busy: s.Busy, LastSeen: s.LastSeen,
			Reconnects: int64(s.Reconnects), FrameErrors: int64(s.FrameErrors), DroppedEvents: int64(s.DroppedEvents), LastError: s.LastError}
		if s.Link == terminal.LinkMQTT && h.Address == "" {
			h.Address = strings.TrimSuffix(l.cfg.MQTT.TopicPrefix, "/") + "/" + s.TerminalID
		}
		out = append(out, h)
	}
	return out
}

// listPorts feeds the diagnostics page's port list.
func listPorts() ([]diag.PortInfo, error) {
	ports, err := serial.ListPorts()
	if err != nil {
		return nil, err
	}
	out := make([]diag.PortInfo, 0, len(ports))
	for _, p := range ports {
		out = append(out, diag.PortInfo{Name: p.Name, USB: p.IsUSB, VID: p.VID, PID: p.PID, Serial: p.SerialNumber, Product: p.Product})
	}
	return out, nil
}
