package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/demo"
)

// TestPayLostAnswerTellsKey: when `posbridge pay` loses the answer to its
// create (the bridge stored the checkout, the connection dropped before
// the answer came back), the technician must be able to retry the same
// payment, which means the same idempotency key. pay made up a random key
// and printed it only on success: its failure line did not say it, so the
// only way to try again was a new key, a second checkout for the same
// sale.
func TestPayLostAnswerTellsKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := silentStack(ctx, t)
	// A link that delivers the request and drops the answer.
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, s.Daemon.APIURL()+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer drop.Close()

	code, _, errs := runCLI(t, "", "pay", "--url", drop.URL, "--token", s.Token, "--terminal", demo.MQTTTerminal, "--amount", "1.250")
	if code != exitFailure {
		t.Fatalf("pay through a link that drops answers: code %d, stderr %q", code, errs)
	}
	list, _, err := s.Client().Recent(ctx, 10, "")
	if err != nil || len(list) != 1 {
		t.Fatalf("the bridge has %d checkouts (%v), want the one pay sent", len(list), err)
	}
	key := list[0].IdempotencyKey
	if !strings.Contains(errs, "--key "+key) {
		t.Fatalf("pay's failure does not give the key %q to retry with:\n%s", key, errs)
	}
	// Retrying with that key finds the same checkout, no second one.
	code, _, errs = runCLI(t, "", "pay", "--url", s.Daemon.APIURL(), "--token", s.Token, "--terminal", demo.MQTTTerminal,
		"--amount", "1.250", "--key", key, "--no-wait")
	if code != exitOK || !regexp.MustCompile(`checkout `+list[0].ID+` already accepted`).MatchString(errs) {
		t.Fatalf("retry with the key: code %d, stderr %q", code, errs)
	}
}
