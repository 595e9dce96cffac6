package daemon_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/logging"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
)

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestListenerFailureStopsDaemon: a till API or diagnostics listener that
// dies after start (here its socket is shut down under the daemon, so
// accept fails with EINVAL) makes Run return an error naming the listener,
// after closing everything, so that `posbridge run` exits non-zero and the
// service manager restarts it. Before, the failure was logged and Run
// kept running with nothing answering the till.
func TestListenerFailureStopsDaemon(t *testing.T) {
	for _, which := range []string{"till API", "diagnostics endpoint"} {
		t.Run(which, func(t *testing.T) {
			sim, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sim.Close(context.Background()) })
			m := hesabesim.SandboxMerchant()
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Hesabe = config.Hesabe{MerchantURL: sim.APIURL(), PaymentURL: sim.APIURL(), MerchantCode: m.Code,
				AccessCode: config.Secret(m.AccessCode), SecretKey: config.Secret(m.SecretKey), IVKey: config.Secret(m.IVKey),
				Username: m.Username, Password: config.Secret(m.Password), Timeout: config.Duration(10 * time.Second)}
			apiAddr, diagAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
			token := "listener-test-token-0123456789"
			cfg.API = config.Listener{Listen: apiAddr, Token: config.Secret(token)}
			cfg.Diagnostics = config.Listener{Listen: diagAddr, Token: config.Secret(token)}
			cfg.MQTT.Embedded.Listen = "127.0.0.1:0"
			cfg.Terminals = []config.Terminal{{ID: "29708454", Link: "none"}}
			var logs testutil.SyncBuffer
			red := &logging.Redactor{}
			red.Add(cfg.SecretValues()...)
			d, err := daemon.New(daemon.Options{Config: cfg, Logger: logging.New(&logs, logging.Options{Redact: red}),
				CloseTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			deadline := time.Now().Add(30 * time.Second)
			for !dialable(apiAddr) || !dialable(diagAddr) {
				if time.Now().After(deadline) {
					t.Fatalf("the daemon never listened; its log:\n%s", logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			broken := apiAddr
			if which == "diagnostics endpoint" {
				broken = diagAddr
			}
			testutil.BreakListener(t, broken)

			var runErr error
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				cancel()
				<-done
				t.Fatalf("Run went on after the %s's listener failed; its log:\n%s", which, logs.String())
			}
			if runErr == nil || !strings.Contains(runErr.Error(), which) || !strings.Contains(runErr.Error(), broken) ||
				!strings.Contains(runErr.Error(), "restart") {
				t.Fatalf("Run = %v; want an error naming the %s on %s and saying it is to be restarted", runErr, which, broken)
			}
			if strings.Contains(runErr.Error(), token) || strings.Contains(logs.String(), token) {
				t.Fatal("the token is in the error or the log")
			}
			// Everything was closed: both ports are free again and the
			// database can be opened by the next start.
			if dialable(apiAddr) || dialable(diagAddr) {
				t.Errorf("still listening after Run returned: api %v, diagnostics %v", dialable(apiAddr), dialable(diagAddr))
			}
			st, err := queue.Open(filepath.Join(cfg.DataDir, daemon.DBFile), queue.Options{LockTimeout: time.Second})
			if err != nil {
				t.Fatalf("the database is still held after Run returned: %v", err)
			}
			_ = st.Close()
			if !strings.Contains(logs.String(), "stopped accepting connections") {
				t.Errorf("the log does not say the listener failed:\n%s", logs.String())
			}
		})
	}
}
