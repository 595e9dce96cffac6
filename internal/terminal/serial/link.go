package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bugserial "go.bug.st/serial"
)

// ErrNotConnected is returned by Link.Send while the port is not open.
var ErrNotConnected = errors.New("serial: port not open")

// LinkConfig configures a Link. Zero durations take defaults.
type LinkConfig struct {
	Port PortSpec
	// Conn tunes each connection; its OnData receives every payload.
	Conn ConnConfig
	// ListPorts lists ports for USB selection. Default ListPorts; tests
	// set it because pseudo-terminals never appear in the real list.
	ListPorts func() ([]PortInfo, error)
	// OpenPort opens a resolved path. Default OpenPort.
	OpenPort func(path string, baud int) (io.ReadWriteCloser, error)
	// ReopenDelay is the wait before opening the port again after it
	// failed or vanished: a replugged USB device needs a moment before it
	// can be opened. Default 500ms. Repeated failures double it up to
	// MaxBackoff (default 5s).
	ReopenDelay time.Duration
	MaxBackoff  time.Duration
	// OnUp is called (on the Run goroutine) with each new connection, e.g.
	// to send identify. OnDown is called when it ends. Neither may block
	// for long.
	OnUp   func(c *Conn)
	OnDown func(err error)

	// Name (the terminal id) and Logger are for the log lines about a
	// port that does not open: a Warn (Error for permission denied) when
	// it starts failing, again at most once per OpenFailureLogEvery
	// (default 1 minute) while it keeps failing, and an Info line when it
	// opens after failing. Logger default slog.Default().
	Name                string
	Logger              *slog.Logger
	OpenFailureLogEvery time.Duration
}

// LinkStats is a Link's state for the registry and diagnostics.
type LinkStats struct {
	Connected bool
	// Path is the path last opened; until the port first opens, the one
	// it tries to open (for a USB identity no device matches yet, that
	// identity, e.g. "usb 2fb8:2101 serial A99-111").
	Path        string
	Reconnects  uint64 // connections opened after the first
	FrameErrors uint64 // CRC errors, abandoned partial frames, NAKs received
	Retransmits uint64
	LastError   string
}

// Link keeps one serial port open for as long as Run runs: it resolves the
// spec (path or USB identity), opens the port, runs a Conn on it, and when
// the port fails (unplugged, closed by the far end) waits and opens it
// again, backing off while it keeps failing.
type Link struct {
	cfg LinkConfig

	mu        sync.Mutex
	conn      *Conn
	path      string
	trying    string // what open last tried: a path, or the USB identity
	lastErr   string
	past      ConnStats // sums of closed connections
	openCount uint64
	resetReq  chan struct{}

	// The current run of failed opens (Run's goroutine only).
	failures   int
	failingAt  time.Time
	lastLogged time.Time

	reconnects atomic.Uint64
}

// NewLink returns a Link; call Run to start it.
func NewLink(cfg LinkConfig) *Link {
	if cfg.ListPorts == nil {
		cfg.ListPorts = ListPorts
	}
	if cfg.OpenPort == nil {
		cfg.OpenPort = OpenPort
	}
	if cfg.ReopenDelay <= 0 {
		cfg.ReopenDelay = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff < cfg.ReopenDelay {
		cfg.MaxBackoff = cfg.ReopenDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OpenFailureLogEvery <= 0 {
		cfg.OpenFailureLogEvery = time.Minute
	}
	if cfg.Conn.Baud == 0 {
		cfg.Conn.Baud = cfg.Port.Baud
	}
	return &Link{cfg: cfg, resetReq: make(chan struct{}, 1)}
}

// Run keeps the port open until ctx is done; it then closes the port and
// returns nil. It returns an error only for an invalid spec.
func (l *Link) Run(ctx context.Context) error {
	if err := l.cfg.Port.Validate(); err != nil {
		return err
	}
	backoff := l.cfg.ReopenDelay
	for {
		c, err := l.open()
		if err != nil {
			l.setErr(err)
			l.openFailed(err)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(backoff*2, l.cfg.MaxBackoff)
			continue
		}
		backoff = l.cfg.ReopenDelay
		l.opened()
		if l.cfg.OnUp != nil {
			l.cfg.OnUp(c)
		}
		var why error
		select {
		case <-ctx.Done():
		case <-c.Done():
			why = c.Err()
		case <-l.resetReq:
			why = errors.New("reset after the terminal stopped answering")
		}
		c.Close()
		l.mu.Lock()
		l.conn = nil
		l.past = addStats(l.past, c.Stats())
		l.mu.Unlock()
		if ctx.Err() != nil {
			return nil
		}
		l.setErr(why)
		if l.cfg.OnDown != nil {
			l.cfg.OnDown(why)
		}
		if !sleep(ctx, l.cfg.ReopenDelay) {
			return nil
		}
	}
}

func (l *Link) open() (*Conn, error) {
	path, err := l.cfg.Port.Resolve(l.cfg.ListPorts)
	if err != nil {
		l.tried(l.cfg.Port.String())
		return nil, err
	}
	l.tried(path)
	p, err := l.cfg.OpenPort(path, l.cfg.Port.Baud)
	if err != nil {
		return nil, err
	}
	c := NewConn(p, l.cfg.Conn)
	l.mu.Lock()
	l.conn = c
	l.path = path
	l.lastErr = ""
	l.openCount++
	if l.openCount > 1 {
		l.reconnects.Add(1)
	}
	l.mu.Unlock()
	return c, nil
}

// tried records what a port that never opened tries to open, so Stats
// (and the status page) can show it.
func (l *Link) tried(what string) {
	l.mu.Lock()
	l.trying = what
	if l.openCount == 0 {
		l.path = what
	}
	l.mu.Unlock()
}

// openFailed logs a failed open: when a run of failures starts, then at
// most once per OpenFailureLogEvery. Permission denied is an Error: it
// does not go away by waiting.
func (l *Link) openFailed(err error) {
	now := time.Now()
	l.failures++
	if l.failures == 1 {
		l.failingAt = now
	} else if now.Sub(l.lastLogged) < l.cfg.OpenFailureLogEvery {
		return
	}
	l.lastLogged = now
	level, msg := slog.LevelWarn, "cannot open the serial port; retrying"
	if permissionDenied(err) {
		level, msg = slog.LevelError, "no permission to open the serial port (is the service user in the dialout group?); retrying"
	}
	attrs := l.logAttrs()
	l.mu.Lock()
	if path := l.trying; path != l.cfg.Port.String() {
		attrs = append(attrs, slog.String("path", path))
	}
	l.mu.Unlock()
	if l.failures > 1 {
		attrs = append(attrs, slog.Int("failures", l.failures), slog.Duration("failing_for", now.Sub(l.failingAt).Round(time.Second)))
	}
	attrs = append(attrs, slog.String("err", err.Error()))
	l.cfg.Logger.LogAttrs(context.Background(), level, msg, attrs...)
}

// opened ends a run of failed opens with an Info line.
func (l *Link) opened() {
	if l.failures == 0 {
		return
	}
	attrs := append(l.logAttrs(),
		slog.Int("failures", l.failures),
		slog.Duration("failed_for", time.Since(l.failingAt).Round(time.Millisecond)))
	l.mu.Lock()
	if path := l.trying; path != l.cfg.Port.String() {
		attrs = append(attrs, slog.String("path", path))
	}
	l.mu.Unlock()
	l.cfg.Logger.LogAttrs(context.Background(), slog.LevelInfo, "serial port open after failing", attrs...)
	l.failures = 0
}

func (l *Link) logAttrs() []slog.Attr {
	var a []slog.Attr
	if l.cfg.Name != "" {
		a = append(a, slog.String("terminal", l.cfg.Name))
	}
	return append(a, slog.String("port", l.cfg.Port.String()))
}

func permissionDenied(err error) bool {
	var pe *bugserial.PortError
	if errors.As(err, &pe) && pe.Code() == bugserial.PermissionDenied {
		return true
	}
	return errors.Is(err, fs.ErrPermission)
}

func (l *Link) setErr(err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	l.lastErr = err.Error()
	l.mu.Unlock()
}

// Reset closes the current connection so Run opens the port again. The
// registry calls it when an open port stops answering.
func (l *Link) Reset() {
	select {
	case l.resetReq <- struct{}{}:
	default:
	}
}

// Send sends one payload on the current connection (see Conn.Send). It
// returns ErrNotConnected while the port is closed.
func (l *Link) Send(ctx context.Context, payload []byte) error {
	l.mu.Lock()
	c := l.conn
	l.mu.Unlock()
	if c == nil {
		return ErrNotConnected
	}
	if err := c.Send(ctx, payload); err != nil {
		return fmt.Errorf("send on %s: %w", l.cfg.Port, err)
	}
	return nil
}

// Stats returns the link's state and counters.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.past
	if l.conn != nil {
		s = addStats(s, l.conn.Stats())
	}
	return LinkStats{
		Connected:   l.conn != nil,
		Path:        l.path,
		Reconnects:  l.reconnects.Load(),
		FrameErrors: s.FrameErrors(),
		Retransmits: s.Retransmits,
		LastError:   l.lastErr,
	}
}

func addStats(a, b ConnStats) ConnStats {
	a.FramesIn += b.FramesIn
	a.FramesOut += b.FramesOut
	a.Retransmits += b.Retransmits
	a.Duplicates += b.Duplicates
	a.NaksIn += b.NaksIn
	a.NaksOut += b.NaksOut
	a.Decoder.Frames += b.Decoder.Frames
	a.Decoder.SkippedBytes += b.Decoder.SkippedBytes
	a.Decoder.CRCErrors += b.Decoder.CRCErrors
	a.Decoder.Partial += b.Decoder.Partial
	return a
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
