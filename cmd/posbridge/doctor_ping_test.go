package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/doctor"
)

// TestDoctorPingMessages: what doctor's "terminal <id> ping" line says
// when the running bridge does not give an answer. A terminal whose link
// is up but whose app hangs used to read "no answer: ask the running
// posbridge: Post \"http://127.0.0.1:8471/terminals/48515/ping\": context
// deadline exceeded" (as if posbridge itself did not answer: the bridge
// waits up to 10 s for the pong, doctor only 5 s), and a diagnostics token
// the running bridge does not accept (changed in the config since it
// started) "diagnostics endpoint answered HTTP 401", with the fix "check
// that the terminal is on".
func TestDoctorPingMessages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const token = "diag-token-ping-test-0123456789"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "diagnostics token required", http.StatusUnauthorized)
			return
		}
		<-r.Context().Done() // a terminal that never answers
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "posbridge.yaml")
	write := func(tok string) {
		cfg := "data_dir: " + dir + "\ndiagnostics:\n  listen: " + ln.Addr().String() + "\n  token: " + tok +
			"\nterminals:\n  - id: \"48515\"\n    link: serial\n    serial: {port: /dev/ttyACM0}\n"
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	term := config.Terminal{ID: "48515", Link: "serial"}

	write(token)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = daemonPinger{cfgPath: cfgPath}.Ping(ctx, term)
	if err == nil || !strings.Contains(err.Error(), "the terminal did not answer within") || strings.Contains(err.Error(), "Post ") {
		t.Errorf("silent terminal: %v", err)
	}

	write("a-token-the-bridge-does-not-know")
	_, err = daemonPinger{cfgPath: cfgPath}.Ping(context.Background(), term)
	if err == nil || !strings.Contains(err.Error(), "refused the diagnostics token") || errors.Is(err, doctor.ErrNotRunning) {
		t.Errorf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "a-token-the-bridge-does-not-know") {
		t.Errorf("the token is in the error: %v", err)
	}
}
