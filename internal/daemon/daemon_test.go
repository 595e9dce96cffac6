package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
)

// startStack starts the demo stack (no serial terminal, the MQTT one
// approving after 50 ms); change may adjust its options first.
func startStack(t *testing.T, change ...func(*demo.Options)) *demo.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0", NoSerial: true, Delay: 50 * time.Millisecond}
	for _, f := range change {
		f(&opts)
	}
	s, err := demo.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		if err := s.Close(cctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

type answer struct {
	status int
	code   pos.Code
	field  string
	msg    string
}

func post(t *testing.T, s *demo.Stack, token, key, ctype, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.Daemon.APIURL()+"/v1/checkouts", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb struct {
		Error struct {
			Code    pos.Code `json:"code"`
			Field   string   `json:"field"`
			Message string   `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &eb)
	return answer{resp.StatusCode, eb.Error.Code, eb.Error.Field, eb.Error.Message}
}

// TestBadTillRequests: each bad request gets the right 4xx, a stable code
// and the field it is about, through the real daemon.
func TestBadTillRequests(t *testing.T) {
	s := startStack(t)
	tok := s.Token
	ok := `{"terminal_id":"29708454","amount":"1.250"}`
	for _, tc := range []struct {
		name, token, key, ctype, body string
		status                        int
		code                          pos.Code
		field                         string
	}{
		{"no token", "", "k1", "", ok, 401, pos.EUnauthorized, ""},
		{"wrong token", tok + "x", "k1", "", ok, 401, pos.EUnauthorized, ""},
		{"no idempotency key", tok, "", "", ok, 400, pos.EInvalid, "Idempotency-Key"},
		{"wrong content type", tok, "k1", "text/plain", ok, 400, pos.EInvalid, "Content-Type"},
		{"not json", tok, "k1", "", `terminal=1`, 400, pos.EInvalid, "body"},
		{"amount as number", tok, "k1", "", `{"terminal_id":"29708454","amount":1.25}`, 400, pos.EInvalid, "amount"},
		{"terminal as number", tok, "k1", "", `{"terminal_id":29708454,"amount":"1.250"}`, 400, pos.EInvalid, "terminal_id"},
		{"missing amount", tok, "k1", "", `{"terminal_id":"29708454"}`, 400, pos.EInvalid, "amount"},
		{"missing terminal", tok, "k1", "", `{"amount":"1.250"}`, 400, pos.EInvalid, "terminal_id"},
		{"negative amount", tok, "k1", "", `{"terminal_id":"29708454","amount":"-1.000"}`, 400, pos.EInvalid, "amount"},
		{"over-precise amount", tok, "k1", "", `{"terminal_id":"29708454","amount":"1.2501"}`, 400, pos.EInvalid, "amount"},
		{"unknown terminal", tok, "k1", "", `{"terminal_id":"777","amount":"1.250"}`, 400, pos.EInvalid, "terminal_id"},
		{"unknown field", tok, "k1", "", `{"terminal_id":"29708454","amount":"1.250","tip":"1"}`, 400, pos.EInvalid, "tip"},
		{"over max amount", tok, "k1", "", `{"terminal_id":"29708454","amount":"99999.000"}`, 422, pos.ELimit, "amount"},
		{"deadline too long", tok, "k1", "", `{"terminal_id":"29708454","amount":"1.250","deadline_seconds":7200}`, 400, pos.EInvalid, "deadline_seconds"},
		{"oversize body", tok, "k1", "", `{"terminal_id":"29708454","amount":"1.250","description":"` + strings.Repeat("x", 20000) + `"}`, 413, pos.EInvalid, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, s, tc.token, tc.key, tc.ctype, tc.body)
			if got.status != tc.status || got.code != tc.code || got.field != tc.field || got.msg == "" {
				t.Fatalf("got %+v, want %d %s field %q", got, tc.status, tc.code, tc.field)
			}
		})
	}
	// The same key with another body is a conflict; nothing was lost.
	if got := post(t, s, tok, "k-conflict", "", ok); got.status != 202 {
		t.Fatalf("create: %+v", got)
	}
	if got := post(t, s, tok, "k-conflict", "", ok); got.status != 200 {
		t.Fatalf("replay: %+v", got)
	}
	if got := post(t, s, tok, "k-conflict", "", `{"terminal_id":"29708454","amount":"9.000"}`); got.status != 409 || got.code != pos.EConflict {
		t.Fatalf("conflict: %+v", got)
	}
}

// TestEventsStream: the SSE stream carries a checkout's changes to paid.
func TestEventsStream(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Daemon.APIURL()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	if got := post(t, s, s.Token, "sse-1", "", `{"terminal_id":"29708454","amount":"1.250"}`); got.status != 202 {
		t.Fatalf("create: %+v", got)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var states []pos.State
	for sc.Scan() {
		line := sc.Text()
		if data, found := strings.CutPrefix(line, "data: "); found {
			var c pos.Checkout
			if err := json.Unmarshal([]byte(data), &c); err != nil {
				t.Fatal(err)
			}
			states = append(states, c.State)
			if c.State == pos.StatePaid {
				break
			}
		}
	}
	if len(states) < 2 || states[len(states)-1] != pos.StatePaid {
		t.Fatalf("states over SSE: %v (%v)", states, sc.Err())
	}
}
