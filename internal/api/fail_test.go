package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTillGoneIsNotAnError: a till that hung up before its answer (its
// own timeout, a closed connection) cancels the request's context, and
// the call fails with context.Canceled. That is the till's doing, not a
// fault of the bridge: it is logged as a warning that says what happened
// and what the till should do, not as "till API request failed" at
// ERROR, which put it among the status page's recent errors.
func TestTillGoneIsNotAnError(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/checkouts", nil)
	s.fail(httptest.NewRecorder(), r, fmt.Errorf("store: wait for the accept log: %w", ctx.Err()))
	line := buf.String()
	if strings.Contains(line, "level=ERROR") || !strings.Contains(line, "level=WARN") || !strings.Contains(line, "Idempotency-Key") {
		t.Fatalf("till gone logged as:\n%s", line)
	}
	// A failure while the till still waits stays an error.
	buf.Reset()
	r = httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/v1/checkouts", nil)
	s.fail(httptest.NewRecorder(), r, fmt.Errorf("store: %w", context.Canceled))
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("an internal failure logged as:\n%s", buf.String())
	}
}
