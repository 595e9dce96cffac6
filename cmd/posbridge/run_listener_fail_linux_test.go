package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/testutil"
)

// wantExitFailure waits up to 30 s for a command whose till API listener
// was broken to exit, and fails unless it exits 1.
func wantExitFailure(t *testing.T, what string, code <-chan int, cancel context.CancelFunc, stderr *testutil.SyncBuffer) {
	t.Helper()
	select {
	case c := <-code:
		if c != exitFailure {
			t.Fatalf("exit code %d, want %d; stderr:\n%s", c, exitFailure, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cancel()
		<-code
		t.Fatalf("%s went on after its till API listener failed; stderr:\n%s", what, stderr.String())
	}
}

// TestRunExitsWhenListenerFails: `posbridge run` whose till API listener
// dies after start (its socket shut down under it) exits 1 with one line
// on stderr naming the till API and its address, which is what makes
// systemd's Restart=on-failure (and the Windows recovery actions) start
// it again. Before, it logged the failure and ran on, serving no till.
func TestRunExitsWhenListenerFails(t *testing.T) {
	sim, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	m := hesabesim.SandboxMerchant()
	dir := t.TempDir()
	apiAddr, diagAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	token := "run-listener-test-token-0123456789"
	cfgPath := filepath.Join(dir, "posbridge.yaml")
	cfg := fmt.Sprintf(`data_dir: %q
hesabe:
  merchant_url: %q
  payment_url: %q
  merchant_code: %q
  username: %q
  access_code: %q
  secret_key: %q
  iv_key: %q
  password: %q
api:
  listen: %q
  token: %q
diagnostics:
  listen: %q
  token: %q
mqtt:
  embedded:
    enabled: false
terminals:
  - id: "29708454"
    link: none
`, dir, sim.APIURL(), sim.APIURL(), m.Code, m.Username, m.AccessCode, m.SecretKey, m.IVKey, m.Password,
		apiAddr, token, diagAddr, token)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testutil.SyncBuffer
	code := make(chan int, 1)
	go func() {
		code <- runRun(ctx, env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &stderr}, []string{"--config", cfgPath})
	}()
	waitFor(t, "the till API", 30*time.Second, func() bool { return dialable(apiAddr) && dialable(diagAddr) })
	testutil.BreakListener(t, apiAddr)

	wantExitFailure(t, "posbridge run", code, cancel, &stderr)
	out := stderr.String()
	var last string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "posbridge: ") {
			last = line
		}
	}
	if !strings.Contains(last, "till API on "+apiAddr+" stopped accepting connections") || !strings.Contains(last, "restarts it") {
		t.Errorf("the error line is %q; stderr:\n%s", last, out)
	}
	if strings.Contains(out, token) {
		t.Error("the API token is on stderr")
	}
	if dialable(diagAddr) {
		t.Error("the diagnostics endpoint still listens after the exit")
	}
}
