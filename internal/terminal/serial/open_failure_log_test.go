package serial_test

import (
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// logLines captures JSON log lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logLines) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logLines) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// at returns the records at level.
func (l *logLines) at(t *testing.T, level string) []map[string]any {
	var out []map[string]any
	for _, r := range l.records(t) {
		if r["level"] == level {
			out = append(out, r)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLinkOpenFailureLogged: a port that does not exist is logged at Warn
// with the terminal, the port and the OS error when it starts failing,
// then only about once per OpenFailureLogEvery (not on every retry), and
// an Info line says when it opens after the failures. Until it first
// opens, Stats reports the path it tries and the last open error.
func TestLinkOpenFailureLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttyACM-nosuch")
	var logs logLines
	var attempts atomic.Int64
	const every = 300 * time.Millisecond
	h := startLink(t, serial.LinkConfig{
		Port:                serial.PortSpec{Path: path},
		Name:                "T-7",
		Logger:              logs.logger(),
		ReopenDelay:         5 * time.Millisecond,
		MaxBackoff:          5 * time.Millisecond,
		OpenFailureLogEvery: every,
		OpenPort: func(p string, baud int) (io.ReadWriteCloser, error) {
			attempts.Add(1)
			return serial.OpenPort(p, baud)
		},
	})
	waitFor(t, "a warning", func() bool { return len(logs.at(t, "WARN")) > 0 })
	w := logs.at(t, "WARN")[0]
	if w["terminal"] != "T-7" || w["port"] != path || !strings.Contains(w["err"].(string), "no such file") {
		t.Errorf("warning lacks terminal, port or OS error: %v", w)
	}
	if s := h.link.Stats(); s.Connected || s.Path != path || !strings.Contains(s.LastError, "no such file") {
		t.Errorf("never-opened stats = %+v, want path %s and the open error", s, path)
	}

	start := time.Now()
	time.Sleep(4 * every)
	warns := len(logs.at(t, "WARN"))
	elapsed := time.Since(start) + every // the first warning came before start
	if n := attempts.Load(); n < 20 {
		t.Fatalf("only %d open attempts; the test needs many retries", n)
	}
	if max := int(elapsed/every) + 1; warns > max || warns < 2 {
		t.Errorf("%d warnings in %v over %d attempts, want 2..%d (one per %v)", warns, elapsed, attempts.Load(), max, every)
	}
	if n := len(logs.at(t, "INFO")); n != 0 {
		t.Errorf("info lines while failing: %v", logs.at(t, "INFO"))
	}

	// The device appears: one Info line, and no more warnings.
	_, tty, _ := ptyPair(t)
	if err := os.Symlink(tty, path); err != nil {
		t.Fatal(err)
	}
	h.waitUp(t)
	waitFor(t, "the info line", func() bool { return len(logs.at(t, "INFO")) > 0 })
	info := logs.at(t, "INFO")
	if len(info) != 1 || info[0]["terminal"] != "T-7" || info[0]["port"] != path {
		t.Errorf("info after failures = %v", info)
	}
	if f, _ := info[0]["failures"].(float64); f < 20 {
		t.Errorf("info line should count the failed attempts: %v", info[0])
	}
	warnsAfter := len(logs.at(t, "WARN"))
	time.Sleep(2 * every)
	if n := len(logs.at(t, "WARN")); n != warnsAfter {
		t.Errorf("warnings went on after the port opened: %d → %d", warnsAfter, n)
	}
	if s := h.link.Stats(); !s.Connected || s.LastError != "" {
		t.Errorf("stats after opening = %+v", s)
	}
}

// TestLinkOpenPermissionDeniedIsError: permission denied is not going to
// fix itself (the service user is not in the dialout group, or a udev rule
// is missing), so it is logged at Error.
func TestLinkOpenPermissionDeniedIsError(t *testing.T) {
	var logs logLines
	h := startLink(t, serial.LinkConfig{
		Port:   serial.PortSpec{Path: "/dev/ttyACM9"},
		Name:   "T-8",
		Logger: logs.logger(),
		OpenPort: func(p string, baud int) (io.ReadWriteCloser, error) {
			return nil, &fs.PathError{Op: "open", Path: p, Err: syscall.EACCES}
		},
	})
	waitFor(t, "an error line", func() bool { return len(logs.at(t, "ERROR")) > 0 })
	e := logs.at(t, "ERROR")[0]
	if e["terminal"] != "T-8" || e["port"] != "/dev/ttyACM9" || !strings.Contains(e["err"].(string), "permission denied") {
		t.Errorf("error line = %v", e)
	}
	if w := logs.at(t, "WARN"); len(w) != 0 {
		t.Errorf("permission denied also logged at warn: %v", w)
	}
	if s := h.link.Stats(); s.Path != "/dev/ttyACM9" || !strings.Contains(s.LastError, "permission denied") {
		t.Errorf("stats = %+v", s)
	}
}

// TestLinkUSBNotFoundLogged: a terminal pinned by USB identity that is not
// plugged in is logged with the identity it looks for, and Stats shows
// that identity as what it tries to open.
func TestLinkUSBNotFoundLogged(t *testing.T) {
	var logs logLines
	id := &serial.USBID{VID: "2fb8", PID: "2101", SerialNumber: "A99-111"}
	h := startLink(t, serial.LinkConfig{
		Port:      serial.PortSpec{USB: id},
		Name:      "T-9",
		Logger:    logs.logger(),
		ListPorts: func() ([]serial.PortInfo, error) { return nil, nil },
	})
	waitFor(t, "a warning", func() bool { return len(logs.at(t, "WARN")) > 0 })
	w := logs.at(t, "WARN")[0]
	if w["terminal"] != "T-9" || w["port"] != "usb 2fb8:2101 serial A99-111" ||
		!strings.Contains(w["err"].(string), "no USB serial ports present") {
		t.Errorf("warning = %v", w)
	}
	s := h.link.Stats()
	if s.Path != "usb 2fb8:2101 serial A99-111" || !strings.Contains(s.LastError, serial.ErrPortNotFound.Error()) {
		t.Errorf("stats = %+v", s)
	}
}
