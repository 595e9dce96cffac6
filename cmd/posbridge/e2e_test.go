//go:build !windows

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/termsim"
	"github.com/posbridge/posbridge/internal/testutil"
)

// buildBinary builds posbridge once per test run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "posbridge-e2e-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "posbridge")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		_ = os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

// proc is a child process whose output is collected; stopped at cleanup.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	r, w := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		_ = w.Close()
		// done means the whole output is in out: the scanner may still
		// hold the last lines when Wait returns.
		<-drained
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL, time.Second)
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop sends sig and waits up to d; then kills.
func (p *proc) stop(sig syscall.Signal, d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("did not stop in time: killed")
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// startMosquitto runs a real mosquitto on a loopback port.
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr == nil {
			bin = "/usr/sbin/mosquitto"
		} else if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto is not installed (scripts/test.sh installs it)")
		} else {
			t.Skip("mosquitto not installed")
		}
	}
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\npersistence false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startProc(t, bin, "-c", conf)
	waitFor(t, "mosquitto", 10*time.Second, func() bool { return dialable(addr) })
	return addr
}

// TestEndToEnd runs the real binary against the Hesabe simulator (also the
// real binary, so it can be killed), a real mosquitto, a terminal over
// MQTT and one over a serial pty, and drives checkouts through the till
// API to paid, declined, canceled and expired — with the gateway killed
// mid-run to see store-and-forward through the API.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := buildBinary(t)
	broker := startMosquitto(t)
	simAddr := testutil.FreeAddr(t)
	sim := startProc(t, bin, "sim", "hesabe", "--listen", simAddr)
	waitFor(t, "hesabe simulator", 10*time.Second, func() bool { return dialable(simAddr) })
	simURL := "http://" + simAddr

	master, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	apiAddr, diagAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	const token = "e2e-token-0123456789abcdef"
	m := hesabesim.SandboxMerchant()
	cfg := fmt.Sprintf(`data_dir: %s
hesabe:
  merchant_url: %[2]s/api
  payment_url: %[2]s/api
  merchant_code: "%s"
  access_code: %s
  secret_key: %s
  iv_key: %s
  username: %s
  password: "%s"
  timeout: 3s
api:
  listen: %s
  token: %s
diagnostics:
  listen: %s
checkout:
  poll_interval: 1s
  drain_rate: 0
offline:
  max_count: 2
  max_amount: "100.000"
  max_single: "50.000"
mqtt:
  broker: tcp://%s
  client_id: posbridge-e2e
terminals:
  - {id: "%s", name: Lane 1, link: mqtt}
  - {id: "%s", name: Lane 2, link: serial, serial: {port: %s, baud: 115200}}
log:
  level: debug
`, filepath.Join(dir, "data"), simURL, m.Code, m.AccessCode, m.SecretKey, m.IVKey, m.Username, m.Password,
		apiAddr, token, diagAddr, broker, "29708454", "48515", tty.Name())
	cfgPath := filepath.Join(dir, "posbridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon := startProc(t, bin, "run", "--config", cfgPath)
	waitFor(t, "till API", 15*time.Second, func() bool { return dialable(apiAddr) })

	// The simulated terminals: they mark the invoice at the gateway as a
	// real payment would, through the simulator's admin API.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := hesabesim.Admin{URL: simURL}
	onPayment := func(ctx context.Context, inv terminal.InvoicePush, o pos.Outcome) error {
		st := map[pos.Outcome]hesabe.InvoiceStatus{pos.OutcomeApproved: hesabe.InvoicePaid,
			pos.OutcomeDeclined: hesabe.InvoiceFailed, pos.OutcomeCanceled: hesabe.InvoiceCanceled}[o]
		return admin.SetTransactionStatus(ctx, inv.TransactionID, st)
	}
	termCtx, stopTerms := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// A blocking read on the pty master returns only once the tty side is
	// closed too; then the simulated terminals can stop.
	defer func() { stopTerms(); master.Close(); tty.Close(); wg.Wait() }()
	for _, tc := range []termsim.Config{
		{TerminalID: "29708454", MQTT: &mqtt.Config{BrokerURL: "tcp://" + broker, ClientID: "e2e-term-1"},
			Script: []termsim.Action{termsim.Approve, termsim.Decline, termsim.Approve}, Delay: 200 * time.Millisecond},
		{TerminalID: "48515", Port: master, Mode: termsim.Approve, Delay: 4 * time.Second},
	} {
		tc.OnPayment = onPayment
		wg.Add(1)
		go func() { defer wg.Done(); _ = termsim.Run(termCtx, tc) }()
	}
	c := &api.Client{URL: "http://" + apiAddr, Token: token}
	waitFor(t, "terminals connected", 20*time.Second, func() bool {
		list, err := c.Terminals(ctx)
		if err != nil || len(list) != 2 {
			return false
		}
		return list[0].Connected && list[1].Connected
	})

	// doctor pings both terminals through the running bridge.
	out, _ := exec.Command(bin, "doctor", "--config", cfgPath, "--service-user", "").CombinedOutput()
	for _, id := range []string{"29708454", "48515"} {
		if !strings.Contains(string(out), "ok    terminal "+id+" ping: answered in") {
			t.Fatalf("doctor did not ping terminal %s through the bridge:\n%s", id, out)
		}
	}

	pay := func(key, terminal, amount string, deadline int64) pos.Checkout {
		t.Helper()
		co, _, err := c.Create(ctx, key, api.CreateBody{TerminalID: terminal, Amount: amount, TillRef: key, DeadlineSeconds: deadline})
		if err != nil {
			t.Fatalf("create %s: %v", key, err)
		}
		return co
	}
	follow := func(co pos.Checkout, want pos.State) pos.Checkout {
		t.Helper()
		var seen []pos.State
		final, err := c.Follow(ctx, co.ID, func(c pos.Checkout) { seen = append(seen, c.State) })
		if err != nil {
			t.Fatalf("follow %s: %v", co.ID, err)
		}
		if final.State != want {
			t.Fatalf("%s ended %s (%+v, last error %q), want %s; seen %v", co.TillRef, final.State, final.Result, final.LastError, want, seen)
		}
		t.Logf("%s: %v", co.TillRef, seen)
		return final
	}

	// paid and declined over MQTT.
	follow(pay("e2e-paid", "29708454", "1.250", 0), pos.StatePaid)
	follow(pay("e2e-declined", "29708454", "2.000", 0), pos.StateDeclined)
	// The same idempotency key returns the same checkout.
	again, existing, err := c.Create(ctx, "e2e-paid", api.CreateBody{TerminalID: "29708454", Amount: "1.250", TillRef: "e2e-paid"})
	if err != nil || !existing || again.State != pos.StatePaid {
		t.Fatalf("idempotent replay: %v %v %s", err, existing, again.State)
	}
	// canceled on the serial terminal while the customer has not tapped.
	co := pay("e2e-canceled", "48515", "0.750", 0)
	waitFor(t, "on_terminal", 20*time.Second, func() bool {
		got, err := c.Get(ctx, co.ID)
		return err == nil && got.State == pos.StateOnTerminal
	})
	if _, err := c.Cancel(ctx, co.ID); err != nil {
		t.Fatal(err)
	}
	follow(co, pos.StateCanceled)

	// The gateway dies: checkouts are stored within the offline limits.
	if err := sim.stop(syscall.SIGKILL, 5*time.Second); err == nil {
		t.Log("simulator exited cleanly?")
	}
	first := pay("e2e-offline-1", "29708454", "3.000", 120)
	waitFor(t, "offline status", 30*time.Second, func() bool {
		st, err := c.Status(ctx)
		return err == nil && !st.Online
	})
	short := pay("e2e-offline-expires", "29708454", "4.000", 2)
	_, _, err = c.Create(ctx, "e2e-offline-refused", api.CreateBody{TerminalID: "29708454", Amount: "5.000"})
	if !api.IsCode(err, pos.ELimit) {
		t.Fatalf("third offline checkout: err = %v, want limit_exceeded", err)
	}
	t.Logf("refused while offline: %v", err)
	follow(short, pos.StateExpired)
	st, _ := c.Status(ctx)
	if st.Online || st.Queued != 1 {
		t.Fatalf("status while offline: %+v", st)
	}

	// The gateway comes back: the stored checkout is delivered and paid.
	startProc(t, bin, "sim", "hesabe", "--listen", simAddr)
	waitFor(t, "hesabe simulator again", 10*time.Second, func() bool { return dialable(simAddr) })
	follow(first, pos.StatePaid)
	waitFor(t, "online status", 30*time.Second, func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.Online && st.Queued == 0
	})

	// Bad requests through the real binary.
	if _, _, err := (&api.Client{URL: c.URL, Token: "wrong"}).Create(ctx, "k", api.CreateBody{TerminalID: "29708454", Amount: "1.000"}); !api.IsCode(err, pos.EUnauthorized) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, _, err := c.Create(ctx, "k-unknown", api.CreateBody{TerminalID: "999", Amount: "1.000"}); !api.IsCode(err, pos.EInvalid) {
		t.Fatalf("unknown terminal: %v", err)
	}

	// A graceful stop: exit 0 within the bound.
	if err := daemon.stop(syscall.SIGTERM, 25*time.Second); err != nil {
		t.Fatalf("daemon stop: %v", err)
	}
	if !strings.Contains(daemon.output(), "posbridge stopped") {
		t.Fatalf("no clean stop in the log")
	}
	for _, secret := range []string{m.SecretKey, m.IVKey, m.AccessCode, m.Password, token} {
		if strings.Contains(daemon.output(), secret) {
			t.Fatalf("a secret reached the daemon's log")
		}
	}
}
