package doctor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/terminal/serial"
	"github.com/posbridge/posbridge/internal/testutil"
)

func TestAllGood(t *testing.T) {
	s := newSetup(t)
	s.port = newPty(t)
	s.write(t)
	rs := s.run(t, doctor.Options{})
	if doctor.Failed(rs) {
		var b bytes.Buffer
		doctor.WriteText(&b, rs)
		t.Fatalf("a good setup failed:\n%s", b.String())
	}
	expect(t, rs, "config", doctor.OK, "is valid", "")
	expect(t, rs, "config.complete", doctor.OK, "2 terminal(s)", "")
	expect(t, rs, "secrets_file", doctor.OK, "mode -rw-------", "")
	expect(t, rs, "data_dir", doctor.OK, "is writable", "")
	expect(t, rs, "disk", doctor.OK, "MiB free", "")
	expect(t, rs, "database", doctor.OK, "does not exist yet", "")
	expect(t, rs, "gateway.dns", doctor.OK, "IP address", "")
	expect(t, rs, "gateway.tcp", doctor.OK, "connected", "")
	expect(t, rs, "gateway.tls", doctor.Skip, "http://", "")
	expect(t, rs, "clock", doctor.OK, "", "")
	expect(t, rs, "gateway.login", doctor.OK, "logged in as test", "")
	expect(t, rs, "gateway.terminals", doctor.OK, "registered", "")
	expect(t, rs, "mqtt.broker", doctor.Warn, "embedded broker", "mqtt.embedded.listen") // on loopback: TestEmbeddedBrokerOnLoopback
	expect(t, rs, "terminal 48515 link", doctor.OK, s.port+" opens at 115200 baud", "")
	expect(t, rs, "terminal 48515 ping", doctor.Skip, "not available", "")
	expect(t, rs, "port.api", doctor.OK, "is free", "")
	expect(t, rs, "port.diagnostics", doctor.OK, "is free", "")
	expect(t, rs, "port.mqtt", doctor.OK, "is free", "")

	// An existing database opens.
	st, err := queue.Open(filepath.Join(s.dataDir, "posbridge.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	expect(t, s.run(t, doctor.Options{}), "database", doctor.OK, "opens", "")
}

func TestBadConfig(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		s := newSetup(t)
		rs := s.run(t, doctor.Options{})
		expect(t, rs, "config", doctor.Fail, "no such file", "create it from the example")
		expect(t, rs, "others", doctor.Skip, "", "")
		if !doctor.Failed(rs) {
			t.Error("not failed")
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		s := newSetup(t)
		s.extra = "chekout:\n  max_amount: \"1.000\"\n"
		s.write(t)
		expect(t, s.run(t, doctor.Options{}), "config", doctor.Fail, "chekout", "unknown keys are errors")
	})
	t.Run("invalid value", func(t *testing.T) {
		s := newSetup(t)
		s.extra = "log:\n  level: loud\n"
		s.write(t)
		rs := s.run(t, doctor.Options{})
		expect(t, rs, "config", doctor.Fail, "log.level", "correct the keys")
		// The rest still runs on what loaded.
		expect(t, rs, "gateway.login", doctor.OK, "", "")
	})
	t.Run("incomplete", func(t *testing.T) {
		s := newSetup(t)
		s.write(t)
		os.WriteFile(s.secretsPath, []byte("hesabe:\n  password: x\n"), 0o600)
		rs := s.run(t, doctor.Options{})
		expect(t, rs, "config.complete", doctor.Fail, "hesabe.access_code", "secrets file")
		expect(t, rs, "gateway.login", doctor.Skip, "incomplete", "")
	})
}

func TestSecretsFile(t *testing.T) {
	t.Run("group readable", func(t *testing.T) {
		s := newSetup(t)
		s.write(t)
		os.Chmod(s.secretsPath, 0o644)
		rs := s.run(t, doctor.Options{})
		expect(t, rs, "secrets_file", doctor.Fail, "mode 0644", "chmod 600 "+s.secretsPath)
		expect(t, rs, "config", doctor.OK, "", "") // the config itself is fine
	})
	t.Run("missing", func(t *testing.T) {
		s := newSetup(t)
		s.write(t)
		os.Remove(s.secretsPath)
		expect(t, s.run(t, doctor.Options{}), "secrets_file", doctor.Fail, "no such file", "install -m 600")
	})
	t.Run("unknown key", func(t *testing.T) {
		s := newSetup(t)
		s.write(t)
		os.WriteFile(s.secretsPath, []byte("hesabe:\n  pasword: x\n"), 0o600)
		expect(t, s.run(t, doctor.Options{}), "secrets_file", doctor.Fail, "pasword", "correct the secrets file")
	})
	t.Run("service user cannot read", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to own the file as root")
		}
		if _, err := user.Lookup("nobody"); err != nil {
			t.Skip("no user nobody")
		}
		s := newSetup(t)
		s.write(t) // owned by root, 0600
		rs := s.run(t, doctor.Options{ServiceUser: "nobody"})
		expect(t, rs, "secrets_file", doctor.Fail, "the service user nobody cannot read it", "chown nobody: "+s.secretsPath)
		expect(t, rs, "data_dir", doctor.Fail, "the service user nobody cannot write it", "chown -R nobody:")
	})
}

func TestLockedDatabase(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	st, err := queue.Open(filepath.Join(s.dataDir, "posbridge.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs := s.run(t, doctor.Options{})
	r := expect(t, rs, "database", doctor.Fail, "is locked by", "stop the other process")
	if !strings.Contains(r.Detail, fmt.Sprintf("process %d", os.Getpid())) {
		t.Errorf("the holder is not named: %q", r.Detail)
	}
}

// TestLockedByRunningPosbridge: a process named posbridge holds the
// database and the API port (the service is running): warnings, not
// failures, and the serial port is left alone.
func TestLockedByRunningPosbridge(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	bin := filepath.Join(t.TempDir(), "posbridge")
	self, _ := os.Executable()
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal("copy test binary")
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "DOCTOR_HOLD_DB="+filepath.Join(s.dataDir, "posbridge.db"), "DOCTOR_HOLD_PORT="+s.apiAddr)
	stdout, _ := cmd.StdoutPipe()
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	buf := make([]byte, 5)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready" {
		t.Fatalf("child: %q %v", buf, err)
	}
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "database", doctor.Warn, fmt.Sprintf("process %d (posbridge): posbridge is running", cmd.Process.Pid), "posbridge service stop")
	expect(t, rs, "port.api", doctor.Warn, "probably by the running posbridge", "")
	if doctor.Failed(rs) {
		t.Error("a running service made doctor fail")
	}
}

// TestMain doubles as the "running posbridge" child.
func TestMain(m *testing.M) {
	if db := os.Getenv("DOCTOR_HOLD_DB"); db != "" {
		st, err := queue.Open(db, queue.Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ln, err := net.Listen("tcp", os.Getenv("DOCTOR_HOLD_PORT"))
		if err != nil {
			os.Exit(1)
		}
		os.Stdout.WriteString("ready")
		buf := make([]byte, 1)
		os.Stdin.Read(buf) // until the parent closes stdin
		ln.Close()
		st.Close()
		os.Exit(0)
	}
	if db := os.Getenv("DOCTOR_CRASH_DB"); db != "" {
		os.Exit(crashChild(db))
	}
	if os.Getenv("DOCTOR_SERIAL_CHILD") != "" {
		os.Exit(serialChild())
	}
	os.Exit(m.Run())
}

func TestGatewayUnreachable(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		s := newSetup(t)
		s.merchantURL = "http://" + testutil.FreeAddr(t) + "/api" // nothing listens
		s.write(t)
		rs := s.run(t, doctor.Options{})
		expect(t, rs, "gateway.tcp", doctor.Fail, "connection refused", "firewall")
		expect(t, rs, "gateway.login", doctor.Skip, "unreachable", "")
		expect(t, rs, "clock", doctor.Skip, "", "")
	})
	t.Run("simulator stopped", func(t *testing.T) {
		s := newSetup(t)
		s.write(t)
		s.sim.Close(context.Background())
		expect(t, s.run(t, doctor.Options{}), "gateway.tcp", doctor.Fail, "connection refused", "outbound TCP")
	})
	t.Run("dns", func(t *testing.T) {
		s := newSetup(t)
		s.merchantURL = "https://merchantapi.posbridge-doctor-test.invalid/api"
		s.write(t)
		rs := s.run(t, doctor.Options{Timeout: 2 * time.Second})
		expect(t, rs, "gateway.dns", doctor.Fail, "cannot resolve merchantapi.posbridge-doctor-test.invalid", "DNS")
		expect(t, rs, "gateway.login", doctor.Skip, "does not resolve", "")
	})
}

func TestWrongCredentials(t *testing.T) {
	s := newSetup(t)
	s.password = "Wrong-Passw0rd!"
	s.write(t)
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "gateway.login", doctor.Fail, "Hesabe refused the merchant login (code 504)", "check hesabe.username/password")
	expect(t, rs, "gateway.tcp", doctor.OK, "", "")
}

func TestClockSkew(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	for _, tc := range []struct {
		off  time.Duration
		st   doctor.Status
		text string
	}{{0, doctor.OK, ""}, {2 * time.Minute, doctor.Warn, "ahead of the gateway"}, {-10 * time.Minute, doctor.Fail, "behind the gateway"}} {
		now := func() time.Time { return time.Now().Add(tc.off) }
		expect(t, s.run(t, doctor.Options{Now: now}), "clock", tc.st, tc.text, "")
	}
}

func TestSerialMissingPort(t *testing.T) {
	s := newSetup(t)
	s.port = "/dev/ttyACM-posbridge-missing"
	s.write(t)
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "terminal 48515 link", doctor.Fail, "no such file or directory", "plug the terminal in")
	expect(t, rs, "terminal 48515 ping", doctor.Skip, "", "")

	// By USB identity: nothing with that serial number is plugged in.
	s.port = ""
	s.extra = "  - id: \"777\"\n    link: serial\n    serial:\n      usb: {vid: \"0483\", pid: \"5740\", serial: \"A920-777\"}\n"
	s.write(t)
	list := func() ([]serial.PortInfo, error) {
		return []serial.PortInfo{{Name: "/dev/ttyACM0", IsUSB: true, VID: "0483", PID: "5740", SerialNumber: "A920-1"}}, nil
	}
	expect(t, s.run(t, doctor.Options{ListPorts: list}), "terminal 777 link", doctor.Fail, "no serial port matches usb 0483:5740 serial A920-777 (present: /dev/ttyACM0=0483:5740/A920-1)", "posbridge ports")
}

// TestSerialServiceUserPermission: doctor runs as root (which may open
// anything), but the service runs as its own user: the device's mode and
// group are checked against that user's groups.
func TestSerialServiceUserPermission(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to chown the pty")
	}
	if _, err := user.Lookup("nobody"); err != nil {
		t.Skip("no user nobody")
	}
	s := newSetup(t)
	s.port = newPty(t)
	s.write(t)
	for _, p := range []string{s.dataDir, s.secretsPath} {
		os.Chown(p, nobodyUID(t), -1)
	}
	// A port in group tty (as ptys are), mode 0620: nobody cannot open
	// it, and the group is not dialout.
	if g, err := user.LookupGroup("tty"); err == nil {
		os.Chown(s.port, 0, atoi(g.Gid))
	}
	os.Chmod(s.port, 0o620)
	rs := s.run(t, doctor.Options{ServiceUser: "nobody"})
	expect(t, rs, "terminal 48515 link", doctor.Fail, "the service user nobody may not open "+s.port, "not dialout: add a udev rule")
	// Group dialout, mode 0660: the fix is to join dialout.
	g, err := user.LookupGroup("dialout")
	if err != nil {
		t.Skip("no group dialout")
	}
	gid := atoi(g.Gid)
	os.Chown(s.port, 0, gid)
	os.Chmod(s.port, 0o660)
	rs = s.run(t, doctor.Options{ServiceUser: "nobody"})
	expect(t, rs, "terminal 48515 link", doctor.Fail, "(-rw-rw---- root:dialout)", "usermod -aG dialout nobody")
}

// TestSerialPermissionDenied opens a port for real as an unprivileged user
// (root bypasses file modes): the test binary is rerun as nobody via
// setpriv and reports the check's result.
func TestSerialPermissionDenied(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch to nobody")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed (util-linux)")
	}
	g, err := user.LookupGroup("dialout")
	if err != nil {
		t.Skip("no group dialout")
	}
	port := newPty(t)
	os.Chown(port, 0, atoi(g.Gid))
	os.Chmod(port, 0o660)
	dir, err := os.MkdirTemp("", "doctor-perm-") // t.TempDir's parent is 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "doctor.test")
	self, _ := os.Executable()
	if b, err := os.ReadFile(self); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal("copy test binary")
	}
	cfg := filepath.Join(dir, "posbridge.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nterminals:\n  - id: \"48515\"\n    link: serial\n    serial: {port: %s}\n", dir, port)), 0o644)
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "DOCTOR_SERIAL_CHILD="+cfg, "HOME=/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child as nobody: %v\n%s", err, out)
	}
	line := strings.TrimSpace(string(out))
	for _, want := range []string{"fail", "permission denied opening " + port + " as nobody", "(-rw-rw---- root:dialout)", "usermod -aG dialout nobody"} {
		if !strings.Contains(line, want) {
			t.Errorf("child's result %q lacks %q", line, want)
		}
	}
}

// serialChild runs doctor on the config in $DOCTOR_SERIAL_CHILD and prints
// the serial link's result: "status|detail|fix".
func serialChild() int {
	rs := doctor.Run(context.Background(), doctor.Options{ConfigPath: os.Getenv("DOCTOR_SERIAL_CHILD"), Timeout: time.Second})
	for _, r := range rs {
		if r.Name == "terminal 48515 link" {
			fmt.Printf("%s|%s|%s\n", r.Status, r.Detail, r.Fix)
			return 0
		}
	}
	fmt.Println("no serial result")
	return 1
}

func TestMQTTBroker(t *testing.T) {
	url, stop := mosquitto(t, "bridge", "mqtt-Secret-42")
	s := newSetup(t)
	s.broker, s.mqttUser, s.mqttPass = url, "bridge", "mqtt-Secret-42"
	s.write(t)
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "mqtt.broker", doctor.OK, `accepted user "bridge"`, "")
	expect(t, rs, "terminal 29708454 link", doctor.OK, "MQTT through "+url, "")
	for _, r := range rs {
		if r.Name == "port.mqtt" {
			t.Error("the embedded broker's port is checked although an external broker is set")
		}
	}

	s.mqttPass = "not-the-password"
	s.write(t)
	expect(t, s.run(t, doctor.Options{}), "mqtt.broker", doctor.Fail, `refused user "bridge"`, "check mqtt.username and mqtt.password")

	stop()
	expect(t, s.run(t, doctor.Options{}), "mqtt.broker", doctor.Fail, "connection refused", "start the broker")
}

func TestPortsBusy(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	ln, err := net.Listen("tcp", s.diagAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "port.diagnostics", doctor.Fail, s.diagAddr+" is in use by another program", "change diagnostics.listen")
	expect(t, rs, "port.api", doctor.OK, "", "")
}

type fakePinger struct{ err error }

func (f fakePinger) Ping(ctx context.Context, t config.Terminal) (time.Duration, error) {
	return 12 * time.Millisecond, f.err
}

func TestPinger(t *testing.T) {
	s := newSetup(t)
	s.port = newPty(t)
	s.write(t)
	rs := s.run(t, doctor.Options{Pinger: fakePinger{}})
	expect(t, rs, "terminal 48515 ping", doctor.OK, "answered in 12ms", "")
	rs = s.run(t, doctor.Options{Pinger: fakePinger{errors.New("timeout")}})
	expect(t, rs, "terminal 29708454 ping", doctor.Fail, "no answer: timeout", "posbridge app is running")
}

func TestTextFormat(t *testing.T) {
	var b bytes.Buffer
	doctor.WriteText(&b, []doctor.Result{
		{Name: "config", Status: doctor.OK, Detail: "fine", Fix: "ignored"},
		{Name: "disk", Status: doctor.Fail, Detail: "full", Fix: "free space"},
		{Name: "clock", Status: doctor.Warn, Detail: "40s ahead", Fix: "sync"},
	})
	want := "ok    config: fine\nFAIL  disk: full — free space\nwarn  clock: 40s ahead — sync\n\n1 ok, 1 failed, 1 warnings, 0 skipped\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func nobodyUID(t *testing.T) int {
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	return atoi(u.Uid)
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

func TestUnsetEnvironmentVariable(t *testing.T) {
	s := newSetup(t)
	s.extra = "diagnostics:\n  token: ${POSBRIDGE_DOCTOR_TEST_UNSET}\n"
	s.write(t)
	b, _ := os.ReadFile(s.cfgPath)
	os.WriteFile(s.cfgPath, []byte(strings.Replace(string(b), "diagnostics:\n  listen: "+s.diagAddr+"\n", "", 1)), 0o644)
	expect(t, s.run(t, doctor.Options{}), "config", doctor.Fail, "POSBRIDGE_DOCTOR_TEST_UNSET", "/etc/default/posbridge")
}
