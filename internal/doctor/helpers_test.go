package doctor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/testutil"
)

// setup is one throwaway installation: a config, a secrets file, a data
// directory, the Hesabe simulator and (optionally) a pty as the serial
// terminal's port.
type setup struct {
	dir, cfgPath, secretsPath, dataDir string
	sim                                *hesabesim.Server
	merchantURL                        string
	password                           string // hesabe password in the secrets file
	port                               string // serial port path
	broker                             string // mqtt.broker, "" = embedded
	mqttUser, mqttPass                 string
	extra                              string // appended YAML
	apiAddr, diagAddr, mqttAddr        string
}

// Secrets used by every setup; the tests check none is ever printed.
const (
	apiToken  = "till-token-0123456789abcdef"
	diagToken = "diag-token-0123456789abcdef"
)

func newSetup(t *testing.T) *setup {
	t.Helper()
	sim, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) })
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	s := &setup{dir: dir, sim: sim, merchantURL: sim.APIURL(), dataDir: filepath.Join(dir, "data"),
		cfgPath: filepath.Join(dir, "posbridge.yaml"), secretsPath: filepath.Join(dir, "secrets.yaml"),
		password: sim.ClientConfig(0).Password,
		apiAddr:  testutil.FreeAddr(t), diagAddr: testutil.FreeAddr(t), mqttAddr: testutil.FreeAddr(t)}
	if err := os.Mkdir(s.dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	return s
}

// newPty returns the tty side of a fresh pseudo-terminal (the "serial
// port"); the master is drained so nothing blocks.
func newPty(t *testing.T) string {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	go func() {
		buf := make([]byte, 1024)
		for {
			if _, err := ptm.Read(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close(); ptm.Close() })
	return tty.Name()
}

func (s *setup) write(t *testing.T) {
	t.Helper()
	cc := s.sim.ClientConfig(0)
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %s\nsecrets_file: %s\n", s.dataDir, s.secretsPath)
	fmt.Fprintf(&b, "hesabe:\n  merchant_url: %s\n  payment_url: %s\n  merchant_code: %q\n  username: %s\n  timeout: 5s\n",
		s.merchantURL, s.merchantURL, cc.MerchantCode, cc.Username)
	fmt.Fprintf(&b, "api:\n  listen: %s\ndiagnostics:\n  listen: %s\n", s.apiAddr, s.diagAddr)
	if s.broker != "" {
		fmt.Fprintf(&b, "mqtt:\n  broker: %s\n  username: %s\n", s.broker, s.mqttUser)
	} else {
		fmt.Fprintf(&b, "mqtt:\n  embedded:\n    enabled: true\n    listen: %s\n", s.mqttAddr)
	}
	b.WriteString("terminals:\n  - id: \"29708454\"\n    link: mqtt\n")
	if s.port != "" {
		fmt.Fprintf(&b, "  - id: \"48515\"\n    link: serial\n    serial:\n      port: %s\n      baud: 115200\n", s.port)
	}
	b.WriteString(s.extra)
	if err := os.WriteFile(s.cfgPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	sec := fmt.Sprintf("hesabe:\n  access_code: %s\n  secret_key: %s\n  iv_key: %s\n  password: %q\napi:\n  token: %s\ndiagnostics:\n  token: %s\n",
		cc.AccessCode, cc.SecretKey, cc.IVKey, s.password, apiToken, diagToken)
	if s.mqttPass != "" {
		sec += fmt.Sprintf("mqtt:\n  password: %q\n", s.mqttPass)
	}
	if err := os.WriteFile(s.secretsPath, []byte(sec), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *setup) secrets() []string {
	cc := s.sim.ClientConfig(0)
	out := []string{cc.AccessCode, cc.SecretKey, cc.IVKey, s.password, cc.Password, apiToken, diagToken}
	if s.mqttPass != "" {
		out = append(out, s.mqttPass)
	}
	return out
}

// run runs doctor and checks, for every run, that neither output format
// leaks a secret.
func (s *setup) run(t *testing.T, opt doctor.Options) []doctor.Result {
	t.Helper()
	opt.ConfigPath = s.cfgPath
	if opt.Timeout == 0 {
		opt.Timeout = 3 * time.Second
	}
	rs := doctor.Run(context.Background(), opt)
	var text, js bytes.Buffer
	doctor.WriteText(&text, rs)
	doctor.WriteJSON(&js, rs)
	for _, sec := range s.secrets() {
		if sec != "" && (strings.Contains(text.String(), sec) || strings.Contains(js.String(), sec)) {
			t.Fatalf("doctor output contains the secret %q:\n%s", sec, text.String())
		}
	}
	var rep doctor.Report
	if err := json.Unmarshal(js.Bytes(), &rep); err != nil || len(rep.Checks) != len(rs) || rep.OK == doctor.Failed(rs) {
		t.Fatalf("--json output is not the report: %v\n%s", err, js.String())
	}
	if testing.Verbose() {
		t.Logf("doctor:\n%s", text.String())
	}
	return rs
}

// expect finds the named result and checks its status and that detail and
// fix contain the given fragments.
func expect(t *testing.T, rs []doctor.Result, name string, st doctor.Status, detail, fix string) doctor.Result {
	t.Helper()
	for _, r := range rs {
		if r.Name != name {
			continue
		}
		if r.Status != st || !strings.Contains(r.Detail, detail) || !strings.Contains(r.Fix, fix) {
			t.Errorf("%s = %s %q (fix %q); want %s with %q, fix %q", name, r.Status, r.Detail, r.Fix, st, detail, fix)
		}
		return r
	}
	t.Errorf("no %q check in %v", name, names(rs))
	return doctor.Result{}
}

func names(rs []doctor.Result) []string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return n
}

// mosquitto runs a real broker with a password file on a free loopback
// port; stop kills it (idempotent) and runs at cleanup too.
func mosquitto(t *testing.T, user, pass string) (url string, stop func()) {
	t.Helper()
	bin := ""
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto"} {
		if b, err := exec.LookPath(p); err == nil {
			bin = b
			break
		}
	}
	pw, _ := exec.LookPath("mosquitto_passwd")
	if bin == "" || pw == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto not installed; scripts/test.sh installs it")
		}
		t.Skip("mosquitto not installed")
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command(pw, "-b", "-c", pwFile, user, pass).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v %s", err, out)
	}
	addr := testutil.FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %s 127.0.0.1\npersistence false\nuser root\nallow_anonymous false\npassword_file %s\nlog_dest stderr\n", port, pwFile)), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("mosquitto exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not listen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "tcp://" + addr, stop
}
