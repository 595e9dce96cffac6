// Package testbroker starts real MQTT brokers for tests: a mosquitto
// process on a free loopback port (killed at cleanup) and the embedded
// broker, behind one small interface so one suite runs against both. It
// also makes throwaway TLS certificates.
package testbroker

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/mqtt"
)

// Options for a broker under test.
type Options struct {
	Username, Password string
	// TLS: serve TLS only, with a certificate for 127.0.0.1 signed by
	// the CA in Broker.CAFile.
	TLS bool
}

// Broker is a running broker.
type Broker interface {
	// URL for mqtt.Config.BrokerURL.
	URL() string
	// CAFile is the PEM CA that signed the broker's certificate (TLS).
	CAFile() string
	// Stop kills the broker abruptly; Start brings it back on the same port.
	Stop(t testing.TB)
	Start(t testing.TB)
}

// Kind names a broker implementation.
type Kind string

// The broker kinds.
const (
	Mosquitto Kind = "mosquitto"
	Embedded  Kind = "embedded"
)

// Kinds lists every kind, for table tests.
var Kinds = []Kind{Mosquitto, Embedded}

// Start starts a broker of kind k; it is stopped at cleanup.
func Start(t testing.TB, k Kind, o Options) Broker {
	t.Helper()
	switch k {
	case Mosquitto:
		return StartMosquitto(t, o)
	default:
		return StartEmbedded(t, o)
	}
}

// RequireMosquitto returns the mosquitto binary, or skips the test (fails
// it when CI=true, where the CI script must have installed it).
func RequireMosquitto(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("mosquitto is not installed; CI must install it (apt-get install mosquitto)")
	}
	t.Skip("mosquitto is not installed (apt-get install mosquitto); skipping the real-broker test")
	return ""
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type mosq struct {
	bin, conf, scheme, ca string
	port                  int
	mu                    sync.Mutex
	cmd                   *exec.Cmd
	waitErr               chan error
}

// StartMosquitto runs a mosquitto on a free 127.0.0.1 port.
func StartMosquitto(t testing.TB, o Options) Broker {
	t.Helper()
	bin := RequireMosquitto(t)
	dir := t.TempDir()
	m := &mosq{bin: bin, port: FreePort(t), scheme: "tcp"}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listener %d 127.0.0.1\npersistence false\nset_tcp_nodelay true\nmax_queued_messages 100000\nmax_inflight_messages 0\nuser root\nlog_dest stderr\nlog_type error\nlog_type warning\n", m.port)
	if o.Username != "" {
		pw := filepath.Join(dir, "passwd")
		passwd, err := exec.LookPath("mosquitto_passwd")
		if err != nil {
			t.Fatalf("mosquitto_passwd not found (it ships with mosquitto): %v", err)
		}
		if out, err := exec.Command(passwd, "-b", "-c", pw, o.Username, o.Password).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
		fmt.Fprintf(&conf, "allow_anonymous false\npassword_file %s\n", pw)
	} else {
		conf.WriteString("allow_anonymous true\n")
	}
	if o.TLS {
		ca, cert, key := WriteCerts(t, dir)
		m.ca, m.scheme = ca, "ssl"
		fmt.Fprintf(&conf, "cafile %s\ncertfile %s\nkeyfile %s\n", ca, cert, key)
	}
	m.conf = filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(m.conf, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start(t)
	t.Cleanup(func() { m.Stop(t) })
	return m
}

func (m *mosq) URL() string    { return fmt.Sprintf("%s://127.0.0.1:%d", m.scheme, m.port) }
func (m *mosq) CAFile() string { return m.ca }

func (m *mosq) Start(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return
	}
	cmd := exec.Command(m.bin, "-c", m.conf)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	m.cmd = cmd
	m.waitErr = make(chan error, 1)
	var logMu sync.Mutex
	var logs []string
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logMu.Lock()
			logs = append(logs, sc.Text())
			logMu.Unlock()
		}
	}()
	go func() { m.waitErr <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-m.waitErr:
			logMu.Lock()
			defer logMu.Unlock()
			m.cmd = nil
			t.Fatalf("mosquitto exited: %v\n%s", err, strings.Join(logs, "\n"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %d", m.port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (m *mosq) Stop(t testing.TB) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-m.waitErr:
	case <-time.After(10 * time.Second):
		t.Errorf("mosquitto pid %d did not exit", m.cmd.Process.Pid)
	}
	m.cmd = nil
}

type embedded struct {
	cfg mqtt.BrokerConfig
	ca  string
	mu  sync.Mutex
	b   *mqtt.Broker
	url string
}

// StartEmbedded runs the embedded broker on a free 127.0.0.1 port.
func StartEmbedded(t testing.TB, o Options) Broker {
	t.Helper()
	e := &embedded{cfg: mqtt.BrokerConfig{Addr: "127.0.0.1:0", Username: o.Username, Password: o.Password,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
	if o.TLS {
		dir := t.TempDir()
		ca, cert, key := WriteCerts(t, dir)
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		e.ca = ca
		e.cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	e.Start(t)
	// Later restarts reuse the port the first start got.
	e.cfg.Addr = e.b.Addr()
	t.Cleanup(func() { e.Stop(t) })
	return e
}

func (e *embedded) URL() string    { e.mu.Lock(); defer e.mu.Unlock(); return e.url }
func (e *embedded) CAFile() string { return e.ca }

func (e *embedded) Start(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.b != nil {
		return
	}
	b := mqtt.NewBroker(e.cfg)
	var err error
	for i := 0; i < 50; i++ { // the old listener's port may linger a moment
		if err = b.Open(context.Background()); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("embedded broker: %v", err)
	}
	e.b, e.url = b, b.URL()
}

func (e *embedded) Stop(t testing.TB) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.b.Close(ctx); err != nil {
		t.Errorf("close embedded broker: %v", err)
	}
	e.b = nil
}

// WriteCerts writes a throwaway CA and a server certificate for 127.0.0.1
// and localhost into dir, returning the three PEM file paths.
func WriteCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "posbridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(caFile, "CERTIFICATE", caDER)
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", keyDER)
	return caFile, certFile, keyFile
}
