package daemon_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/testutil"
)

// logKeys returns the keys of one slog text line, in order.
func logKeys(line string) ([]string, error) {
	var keys []string
	for s := strings.TrimSpace(line); s != ""; s = strings.TrimLeft(s, " ") {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return keys, strconv.ErrSyntax
		}
		keys = append(keys, s[:eq])
		s = s[eq+1:]
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return keys, err
			}
			s = s[len(q):]
		} else if sp := strings.IndexByte(s, ' '); sp >= 0 {
			s = s[sp:]
		} else {
			s = ""
		}
	}
	return keys, nil
}

// TestLogLinesHaveUniqueKeys: no log line of a running daemon (terminal
// links, the embedded broker, the engine, a paid checkout) repeats a key.
// A repeated key ("component=terminal component=mqtt-broker") is ambiguous
// to a technician's log tools: JSON parsers keep only one of them.
func TestLogLinesHaveUniqueKeys(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := demo.Start(ctx, demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0", NoSerial: true,
		Delay: 50 * time.Millisecond, Log: logs, LogLevel: -4})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	c, _, err := s.Client().Create(ctx, "logkeys-1", api.CreateBody{TerminalID: demo.MQTTTerminal, Amount: "1.500",
		Customer: &pos.Customer{Name: "Log"}})
	if err != nil {
		t.Fatal(err)
	}
	if c, err = s.Client().Wait(ctx, c.ID, c.UpdatedAt, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	for !c.State.Final() {
		if c, err = s.Client().Wait(ctx, c.ID, c.UpdatedAt, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d log lines", len(lines))
	}
	for _, line := range lines {
		keys, err := logKeys(line)
		if err != nil {
			t.Fatalf("cannot parse log line %q: %v", line, err)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("key %q twice in: %s", k, line)
			}
			seen[k] = true
		}
	}
}
