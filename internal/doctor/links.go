package doctor

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	tmqtt "github.com/posbridge/posbridge/internal/terminal/mqtt"
	bugserial "go.bug.st/serial"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// checkMQTT checks the broker the MQTT terminals use: an external broker
// must accept a TCP connection and our credentials; the embedded broker
// lives inside posbridge, so there is nothing to reach until it runs (its
// port is checked with the others).
func (r *run) checkMQTT(ctx context.Context) {
	m := r.cfg.MQTT
	uses := false
	for _, t := range r.cfg.Terminals {
		uses = uses || t.Link == "mqtt"
	}
	if !uses {
		return
	}
	if m.Broker == "" {
		if host, port, err := net.SplitHostPort(m.Embedded.Listen); err == nil && isLoopback(host) {
			// The terminals are devices on the store network: they can
			// never reach a broker on this PC's loopback.
			r.add("mqtt.broker", Warn, "embedded broker on "+m.Embedded.Listen+" listens on this PC's loopback only: a terminal on the store network cannot connect to it (only programs on this PC, such as the terminal simulator)",
				fmt.Sprintf("set mqtt.embedded.listen to 0.0.0.0:%s (or this PC's LAN address), allow TCP %s in the firewall, set mqtt.username and mqtt.password, and point the terminals at this PC's address", port, port))
			return
		}
		r.add("mqtt.broker", Skip, "embedded broker on "+m.Embedded.Listen+": it runs inside posbridge, so it is reachable only while posbridge runs (its port is checked below)", "")
		return
	}
	u, err := url.Parse(m.Broker)
	if err != nil || u.Host == "" {
		r.add("mqtt.broker", Fail, fmt.Sprintf("mqtt.broker %q is not a URL", tmqtt.RedactURL(m.Broker)), "write it as tcp://host:1883 or ssl://host:8883")
		return
	}
	host := u.Host
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts" {
			port = "8883"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	conn, err := (&net.Dialer{Timeout: r.opt.Timeout}).DialContext(ctx, "tcp", host)
	if err != nil {
		r.add("mqtt.broker", Fail, fmt.Sprintf("cannot connect to the broker at %s: %v", host, cleanNetErr(err)),
			"start the broker (Linux: systemctl start mosquitto) or correct mqtt.broker; check the firewall for TCP "+u.Port())
		return
	}
	conn.Close()
	opts := mqtt.NewClientOptions().AddBroker(brokerURL(u, host)).
		SetClientID("posbridge-doctor-" + randomHex(4)). // never the bridge's own id: that would kick it off
		SetUsername(m.Username).SetPassword(m.Password.Value()).
		SetConnectTimeout(r.opt.Timeout).SetAutoReconnect(false).SetConnectRetry(false).
		SetCleanSession(true)
	if strings.HasPrefix(brokerURL(u, host), "ssl://") {
		tc, err := mqttTLS(r.cfg.MQTT)
		if err != nil {
			r.add("mqtt.broker", Fail, oneLine(err.Error()), "check mqtt.ca_file, mqtt.cert_file and mqtt.key_file")
			return
		}
		opts.SetTLSConfig(tc)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(r.opt.Timeout + time.Second) {
		r.add("mqtt.broker", Fail, "the broker at "+host+" accepted TCP but did not answer MQTT CONNECT in time", "check that it is an MQTT broker and the scheme (tcp:// vs ssl://)")
		return
	}
	if err := tok.Error(); err != nil {
		switch {
		case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword), errors.Is(err, packets.ErrorRefusedNotAuthorised):
			r.add("mqtt.broker", Fail, fmt.Sprintf("the broker at %s refused user %q: %v", host, m.Username, err),
				"check mqtt.username and mqtt.password (secrets file mqtt.password) against the broker's password file")
		default:
			r.add("mqtt.broker", Fail, fmt.Sprintf("MQTT CONNECT to %s failed: %v", host, err), "check mqtt.broker's scheme and the broker's log")
		}
		return
	}
	c.Disconnect(100)
	r.add("mqtt.broker", OK, fmt.Sprintf("%s accepted user %q", host, m.Username), "")
}

// isLoopback reports whether a listen host accepts only this machine's
// own connections.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// brokerURL is the paho form: tcp:// or ssl://.
func brokerURL(u *url.URL, host string) string {
	switch u.Scheme {
	case "ssl", "tls", "mqtts":
		return "ssl://" + host
	}
	return "tcp://" + host
}

func mqttTLS(m config.MQTT) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.ca_file %s: no PEM certificates", m.CAFile)
		}
		tc.RootCAs = pool
	}
	if m.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(m.CertFile, m.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// checkTerminals checks each terminal's link, then asks it for a ping.
func (r *run) checkTerminals(ctx context.Context) {
	for _, t := range r.cfg.Terminals {
		name := "terminal " + t.ID
		linkOK := true
		switch t.Link {
		case "serial":
			linkOK = r.checkSerial(name, t)
		case "mqtt":
			if r.cfg.MQTT.Broker == "" {
				r.add(name+" link", Skip, "MQTT through the embedded broker: the terminal connects once posbridge runs", "")
			} else if r.failed("mqtt.broker") {
				linkOK = false
				r.add(name+" link", Fail, "MQTT through "+tmqtt.RedactURL(r.cfg.MQTT.Broker)+", which posbridge cannot use (see mqtt.broker)", "fix the broker first: the terminal reaches posbridge only through it")
			} else {
				r.add(name+" link", OK, "MQTT through "+tmqtt.RedactURL(r.cfg.MQTT.Broker)+" (see mqtt.broker)", "")
			}
		case "none":
			r.add(name+" link", Skip, "link: none (Hesabe pushes invoices to the terminal itself)", "")
			continue
		}
		if r.opt.Pinger == nil {
			r.add(name+" ping", Skip, "not available in this build (needs the terminal hub)", "")
			continue
		}
		if !r.configValid {
			// The ping goes through the running posbridge, found by the
			// config's diagnostics address and token: a config that does
			// not validate would only repeat its error here, as if the
			// terminal were at fault.
			r.add(name+" ping", Skip, "the config has errors (see the config and secrets_file lines): fix them, then run doctor again to ping the terminal", "")
			continue
		}
		if !linkOK {
			r.add(name+" ping", Skip, "its link failed above", "")
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
		rtt, err := r.opt.Pinger.Ping(pctx, t)
		cancel()
		if errors.Is(err, ErrNotRunning) {
			r.add(name+" ping", Skip, "posbridge is not running: start it, then run doctor again to ping the terminal through it", "")
			continue
		}
		if errors.Is(err, ErrDiagnosticsToken) {
			r.add(name+" ping", Warn, "not asked: "+err.Error(),
				"diagnostics.token (or api.token when it is unset) was changed after posbridge started: restart posbridge (posbridge service restart) so that it uses the config's token")
			continue
		}
		if err != nil {
			r.add(name+" ping", Fail, "no answer: "+oneLine(err.Error()), "check that the terminal is on, the posbridge app is running on it and paired to this bridge")
			continue
		}
		r.add(name+" ping", OK, "answered in "+rtt.Round(time.Millisecond).String(), "")
	}
}

// checkSerial: the port exists (resolving a USB identity), the service
// user may open it, and it opens.
func (r *run) checkSerial(name string, t config.Terminal) bool {
	name += " link"
	s := t.Serial
	spec := serial.PortSpec{Path: s.Port, Baud: s.Baud}
	if s.USB.VID != "" || s.USB.Serial != "" {
		spec.USB = &serial.USBID{VID: s.USB.VID, PID: s.USB.PID, SerialNumber: s.USB.Serial}
	}
	path, err := spec.Resolve(r.opt.ListPorts)
	if err != nil {
		r.add(name, Fail, oneLine(err.Error()), "plug the terminal in (check the cable and its USB mode); compare serial.usb in the config with `posbridge ports`")
		return false
	}
	fi, err := os.Stat(path)
	if err != nil {
		fix := "plug the terminal in and check the cable; list the ports with `posbridge ports` (Linux: ls -l /dev/serial/by-id/)"
		if !errors.Is(err, fs.ErrNotExist) {
			fix = "check serial.port in the config"
		}
		r.add(name, Fail, fmt.Sprintf("serial port %s: %v", path, unwrapPath(err)), fix)
		return false
	}
	if svc := r.serviceAccount(); svc != nil && !svc.can(fi, true, true) {
		r.add(name, Fail, fmt.Sprintf("the service user %s may not open %s (%s %s)", svc.name, path, fi.Mode().Perm(), ownerOf(fi)), serialPermFix(svc.name, fi))
		return false
	}
	if r.posbridgeRunning {
		r.add(name, Warn, path+" exists; not opened because posbridge is running and holds it", "stop the service to test the port itself")
		return true
	}
	p, err := serial.OpenPort(path, s.Baud)
	if err != nil {
		var pe *bugserial.PortError
		perm := errors.Is(err, fs.ErrPermission) || errors.As(err, &pe) && pe.Code() == bugserial.PermissionDenied
		busy := errors.As(err, &pe) && pe.Code() == bugserial.PortBusy
		switch {
		case perm:
			me := currentUserName()
			r.add(name, Fail, fmt.Sprintf("permission denied opening %s as %s (%s %s)", path, me, fi.Mode().Perm(), ownerOf(fi)), serialPermFix(me, fi))
		case busy:
			r.add(name, Fail, path+" is in use by another program", "close the other program (a terminal emulator, ModemManager: systemctl disable --now ModemManager)")
		default:
			r.add(name, Fail, oneLine(err.Error()), "check the cable and serial.baud; replug the terminal")
		}
		return false
	}
	p.Close()
	baud := s.Baud
	if baud <= 0 {
		baud = 115200
	}
	r.add(name, OK, fmt.Sprintf("%s opens at %d baud", path, baud), "")
	return true
}

// serialPermFix explains the dialout rule on Linux.
func serialPermFix(user string, fi os.FileInfo) string {
	if serialGroupHint == "" {
		return "close whatever holds the port, or run posbridge with rights to it"
	}
	g := groupOf(fi)
	if g == serialGroupHint {
		return fmt.Sprintf("serial ports belong to group dialout: usermod -aG dialout %s, then restart posbridge (a login shell must log in again)", user)
	}
	return fmt.Sprintf("the port's group is %q, not dialout: add a udev rule (SUBSYSTEM==\"tty\", GROUP=\"dialout\", MODE=\"0660\") or add %s to group %s", g, user, g)
}
