package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestPayDeadlineWholeSeconds: `posbridge pay --deadline` is sent as the
// till API's deadline_seconds. A deadline under a second was sent as 0,
// that is none, so the payment silently got the bridge's default (5
// minutes) instead of what was asked; 1.5s was cut to 1 s. pay now refuses
// a deadline that is not a whole number of seconds, before sending
// anything, and sends whole ones as they are.
func TestPayDeadlineWholeSeconds(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	till := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"co_1","terminal_id":"29708454","amount":"1.250","state":"queued"}`)
	}))
	defer till.Close()
	sent := func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), bodies...)
	}
	reset := func() {
		mu.Lock()
		bodies = nil
		mu.Unlock()
	}
	pay := func(deadline string) (int, string) {
		code, _, errs := runCLI(t, "", "pay", "--url", till.URL, "--token", "t", "--terminal", "29708454", "--amount", "1.250",
			"--no-wait", "--deadline", deadline)
		return code, errs
	}
	for _, d := range []string{"500ms", "1ms", "1.5s", "-5s", "-1ms"} {
		if code, errs := pay(d); code != exitUsage || !strings.Contains(errs, "--deadline") {
			t.Errorf("pay --deadline %s: code %d, stderr %q; want a usage error about --deadline", d, code, errs)
		}
	}
	if got := sent(); len(got) != 0 {
		t.Fatalf("refused deadlines reached the API: %v", got)
	}
	for d, want := range map[string]float64{"1s": 1, "90s": 90, "2m": 120} {
		reset()
		if code, errs := pay(d); code != exitOK || len(sent()) != 1 || sent()[0]["deadline_seconds"] != want {
			t.Errorf("pay --deadline %s: code %d, stderr %q, sent %v; want deadline_seconds %v", d, code, errs, sent(), want)
		}
	}
	reset()
	if code, errs := pay("0s"); code != exitOK || len(sent()) != 1 || sent()[0]["deadline_seconds"] != nil {
		t.Errorf("pay --deadline 0s: code %d, stderr %q, sent %v; want no deadline_seconds (the bridge's default)", code, errs, sent())
	}
}
