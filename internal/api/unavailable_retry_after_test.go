package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestUnavailableHasRetryAfter: a create refused because the bridge's
// disk is full was a 500 "internal error"; an UnavailableError is a 503
// `unavailable` with its message and a Retry-After in whole seconds, and
// its cause is logged as a warning (not among the errors), with the cause.
func TestUnavailableHasRetryAfter(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}
	r := httptest.NewRequest(http.MethodPost, "/v1/checkouts", nil)
	w := httptest.NewRecorder()
	cause := errors.New("engine: create: queue: grow accept log: write x: " + syscall.ENOSPC.Error())
	s.fail(w, r, &UnavailableError{Message: "the bridge's disk is full; nothing was stored", RetryAfter: 1500 * time.Millisecond, Err: cause})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
		t.Errorf("status %d, Retry-After %q; want 503, 2", w.Code, w.Header().Get("Retry-After"))
	}
	var eb errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil {
		t.Fatal(err)
	}
	if eb.Error.Code != pos.EUnavailable || eb.Error.Message != "the bridge's disk is full; nothing was stored" {
		t.Errorf("body %s", w.Body.Bytes())
	}
	if line := buf.String(); !strings.Contains(line, "level=WARN") || !strings.Contains(line, "no space left") {
		t.Errorf("logged as:\n%s", line)
	}
}
