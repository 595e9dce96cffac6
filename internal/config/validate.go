package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

var (
	terminalIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)
	hex4Re       = regexp.MustCompile(`^[0-9A-Fa-f]{4}$`)
)

// validateRun checks the daemon's settings.
func (c Config) validateRun() []error {
	var errs []error
	add := func(field, value string, err error) {
		errs = append(errs, &ValidationError{Field: field, Value: value, Err: err})
	}
	for _, l := range []struct {
		k      string
		v      string
		remote bool
	}{{"api", c.API.Listen, c.API.AllowRemote}, {"diagnostics", c.Diagnostics.Listen, c.Diagnostics.AllowRemote}} {
		loopback, err := checkListen(l.v)
		switch {
		case err != nil:
			add(l.k+".listen", l.v, err)
		case !loopback && !l.remote:
			add(l.k+".listen", l.v, fmt.Errorf("is not a loopback address (such as 127.0.0.1), so other computers could reach it; "+
				"keep it on 127.0.0.1, or set %s.allow_remote: true to open it to the network on purpose", l.k))
		}
	}
	if c.API.Listen == c.Diagnostics.Listen && c.API.Listen != "" && !strings.HasSuffix(c.API.Listen, ":0") {
		add("diagnostics.listen", c.Diagnostics.Listen, errors.New("must differ from api.listen"))
	}
	for _, tk := range []struct {
		field string
		value string
	}{{"api.token", c.API.Token.Value()}, {"diagnostics.token", c.Diagnostics.Token.Value()}} {
		if tk.value != "" && len(tk.value) < 16 {
			add(tk.field, "", fmt.Errorf("must be at least 16 characters (got %d); generate one with: openssl rand -hex 24", len(tk.value)))
		}
	}
	for _, sf := range c.secrets() {
		if strings.ContainsFunc(sf.value, unicode.IsControl) {
			add(sf.path, "", errors.New("must be one line without control characters (a trailing newline or tab?)"))
		}
	}
	ck := c.Checkout
	if ck.DefaultDeadline.D() <= 0 {
		add("checkout.default_deadline", ck.DefaultDeadline.D().String(), errors.New("must be positive"))
	}
	if ck.MaxDeadline.D() < ck.DefaultDeadline.D() {
		add("checkout.max_deadline", ck.MaxDeadline.D().String(), errors.New("must not be shorter than checkout.default_deadline"))
	}
	if ck.MaxAmount.Money <= 0 {
		add("checkout.max_amount", ck.MaxAmount.String(), errors.New("must be positive"))
	}
	if ck.PollInterval.D() < 500e6 {
		add("checkout.poll_interval", ck.PollInterval.D().String(), errors.New("must be at least 500ms"))
	}
	if ck.DrainRate < 0 {
		add("checkout.drain_rate", fmt.Sprint(ck.DrainRate), errors.New("must not be negative (0 means no limit)"))
	}
	if ck.Retention.D() < 0 {
		add("checkout.retention", ck.Retention.D().String(), errors.New("must not be negative"))
	}
	o := c.Offline
	if o.MaxCount < 0 {
		add("offline.max_count", fmt.Sprint(o.MaxCount), errors.New("must not be negative (0 refuses every checkout while offline)"))
	}
	if o.MaxAmount.Money < 0 {
		add("offline.max_amount", o.MaxAmount.String(), errors.New("must not be negative (0 refuses every checkout while offline)"))
	}
	if o.MaxSingle.Money < 0 {
		add("offline.max_single", o.MaxSingle.String(), errors.New("must not be negative (0 refuses every checkout while offline)"))
	} else if o.MaxSingle.Money > o.MaxAmount.Money {
		add("offline.max_single", o.MaxSingle.String(), errors.New("must not exceed offline.max_amount"))
	}
	m := c.MQTT
	usesMQTT := slices.ContainsFunc(c.Terminals, func(t Terminal) bool { return t.Link == "mqtt" })
	if m.Broker != "" {
		u, err := url.Parse(m.Broker)
		switch {
		case err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Hostname() == "":
			add("mqtt.broker", displayURL(m.Broker), errors.New("must be a URL like tcp://host:1883 or ssl://host:8883"))
		case u.User != nil:
			add("mqtt.broker", displayURL(m.Broker), errors.New("must not hold a user or password (user:pass@): put them in mqtt.username and mqtt.password"))
		case u.Port() == "":
			add("mqtt.broker", displayURL(m.Broker), errors.New("needs a port: tcp://host:1883 or ssl://host:8883"))
		}
	} else if m.Embedded.Enabled {
		loopback, err := checkListen(m.Embedded.Listen)
		switch {
		case err != nil:
			add("mqtt.embedded.listen", m.Embedded.Listen, err)
		case !loopback && (m.Username == "" || m.Password == ""):
			add("mqtt.embedded.listen", m.Embedded.Listen, errors.New("is not a loopback address, so terminals (or anyone) on the network could connect without a password: "+
				"set mqtt.username and mqtt.password (and the same on the terminals), or keep it on 127.0.0.1"))
		}
		if usesMQTT && m.Username != "" && m.Password == "" {
			add("mqtt.password", "", fmt.Errorf("is required with mqtt.username: the embedded broker asks every client for both (or $%s)", EnvMQTTPass))
		}
	}
	if m.Password != "" && m.Username == "" {
		add("mqtt.username", "", errors.New("is required: mqtt.password is set without it"))
	}
	if len(m.ClientID) > 64 || strings.ContainsAny(m.ClientID, "/+# ") {
		add("mqtt.client_id", m.ClientID, errors.New("must be at most 64 characters, without '/', '+', '#' or spaces"))
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		add("mqtt.cert_file", m.CertFile, errors.New("cert_file and key_file go together"))
	}
	if strings.ContainsAny(m.TopicPrefix, "#+") || m.TopicPrefix == "" {
		add("mqtt.topic_prefix", m.TopicPrefix, errors.New("must be non-empty and contain no MQTT wildcards"))
	}
	seen := map[string]bool{}
	ports := map[string]string{} // serial port or USB identity → the terminal using it
	for i, t := range c.Terminals {
		at := fmt.Sprintf("terminals[%d]", i)
		if !terminalIDRe.MatchString(t.ID) {
			add(at+".id", t.ID, errors.New("must be the Hesabe terminal_id: 1-32 letters, digits, '-' or '_'"))
		}
		if seen[t.ID] {
			add(at+".id", t.ID, errors.New("is declared twice"))
		}
		seen[t.ID] = true
		s := t.Serial
		switch t.Link {
		case "mqtt", "none":
			if s != (SerialLink{}) {
				add(at+".serial", "", fmt.Errorf("is only read with link: serial (this terminal's link is %s)", t.Link))
			}
		case "serial":
			switch {
			case s.USB.PID != "" && s.USB.VID == "":
				add(at+".serial.usb.vid", "", errors.New("is required with usb.pid (both as 4 hex digits, e.g. vid: \"0483\", pid: \"5740\")"))
			case s.Port == "" && s.USB.VID == "" && s.USB.Serial == "":
				add(at+".serial", "", errors.New("needs port (a path like /dev/ttyACM0 or COM3) or usb (vid/pid/serial)"))
			}
			for _, h := range []struct{ k, v string }{{"vid", s.USB.VID}, {"pid", s.USB.PID}} {
				if h.v != "" && !hex4Re.MatchString(h.v) {
					add(at+".serial.usb."+h.k, h.v, errors.New("must be 4 hex digits, e.g. 0483"))
				}
			}
			if s.Baud < 0 || s.Baud > 4_000_000 {
				add(at+".serial.baud", fmt.Sprint(s.Baud), errors.New("must be a baud rate such as 115200"))
			}
			if s.Port != "" {
				if other, ok := ports["port "+s.Port]; ok {
					add(at+".serial.port", s.Port, fmt.Errorf("is already the port of %s: one terminal per port", other))
				}
				ports["port "+s.Port] = at
			} else if s.USB != (SerialLink{}).USB {
				id := strings.ToLower(s.USB.VID + ":" + s.USB.PID + ":" + s.USB.Serial)
				if other, ok := ports["usb "+id]; ok {
					add(at+".serial.usb", "", fmt.Errorf("names the same USB device as %s: give each its serial number", other))
				}
				ports["usb "+id] = at
			}
		case "":
			add(at+".link", "", errors.New("is required: mqtt, serial or none"))
		default:
			add(at+".link", t.Link, errors.New("must be mqtt, serial or none"))
		}
	}
	if usesMQTT && m.Broker == "" && !m.Embedded.Enabled {
		add("mqtt", "", errors.New("a terminal uses mqtt but neither mqtt.broker nor mqtt.embedded.enabled is set"))
	}
	return append(errs, c.validateRequests()...)
}

// validateRequests checks the requests section and the accounts it uses.
func (c Config) validateRequests() []error {
	var errs []error
	add := func(field, value string, err error) {
		errs = append(errs, &ValidationError{Field: field, Value: value, Err: err})
	}
	r := c.Requests
	switch r.Customers {
	case "hesabe", "off":
	case "hitpay":
		if err := checkHTTPURL(c.HitPay.URL, "hitpay.api_key"); err != nil {
			add("hitpay.url", displayURL(c.HitPay.URL), fmt.Errorf("%w (requests.customers is hitpay)", err))
		}
		if c.HitPay.Timeout.D() <= 0 {
			add("hitpay.timeout", c.HitPay.Timeout.D().String(), errors.New("must be positive"))
		}
	default:
		add("requests.customers", r.Customers, errors.New("must be hesabe, hitpay or off"))
	}
	if r.MaxPending < 1 {
		add("requests.max_pending", fmt.Sprint(r.MaxPending), errors.New("must be at least 1"))
	}
	if r.MaxBatch < 1 || r.MaxBatch > 1000 {
		add("requests.max_batch", fmt.Sprint(r.MaxBatch), errors.New("must be from 1 to 1000"))
	}
	if r.Payees {
		p := c.Payout
		if err := checkHTTPURL(p.URL, "payout.api_key"); err != nil {
			add("payout.url", displayURL(p.URL), fmt.Errorf("%w (requests.payees is on)", err))
		}
		if p.ProviderPublicKeyFile == "" {
			add("payout.provider_public_key_file", "", errors.New("is required when requests.payees is on: the provider's RSA public key (PEM)"))
		}
		if p.MerchantPrivateKeyFile == "" {
			add("payout.merchant_private_key_file", "", errors.New("is required when requests.payees is on: the merchant's RSA private key (PEM)"))
		}
		switch p.Padding {
		case "pkcs1v15", "oaep-sha256", "oaep-sha1":
		default:
			add("payout.padding", p.Padding, errors.New("must be pkcs1v15, oaep-sha256 or oaep-sha1"))
		}
		if p.Timeout.D() <= 0 {
			add("payout.timeout", p.Timeout.D().String(), errors.New("must be positive"))
		}
	}
	return errs
}

// checkHTTPURL checks a gateway's URL: http(s), a host, and no
// credentials (which go in credsKey: a URL is logged and shown).
func checkHTTPURL(s, credsKey string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return errors.New("is required: an http:// or https:// URL")
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		return errors.New("must be an http:// or https:// URL")
	case u.Hostname() == "":
		return errors.New("must name a host: https://host/...")
	case u.User != nil:
		return fmt.Errorf("must not hold a user or password (user:pass@): credentials go in %s", credsKey)
	}
	return nil
}

// displayURL is a URL for a message: a password in it never shows.
func displayURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		if u.User == nil {
			return s
		}
		return u.Redacted()
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "…" + s[i:]
	}
	return s
}

// checkListen checks a listen address: host:port with a port number; it
// reports whether the host is a loopback address.
func checkListen(addr string) (loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false, errors.New("must be host:port, e.g. 127.0.0.1:8470")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, errors.New("the port must be a number up to 65535, e.g. 127.0.0.1:8470")
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// RequireRun checks what `posbridge run` needs beyond Validate.
func (c Config) RequireRun() error {
	errs := []error{c.RequireGateway()}
	if c.API.Token == "" {
		errs = append(errs, &ValidationError{Field: "api.token", Err: fmt.Errorf("is required (or $%s); generate one with: openssl rand -hex 24", EnvAPIToken)})
	}
	if len(c.Terminals) == 0 {
		errs = append(errs, &ValidationError{Field: "terminals", Err: errors.New("declare at least one terminal")})
	}
	if c.Requests.Customers == "hitpay" && c.HitPay.APIKey == "" {
		errs = append(errs, &ValidationError{Field: "hitpay.api_key", Err: fmt.Errorf("is required when requests.customers is hitpay (or $%s)", EnvHitPayKey)})
	}
	if c.Requests.Payees {
		if c.Payout.MerchantID == "" {
			errs = append(errs, &ValidationError{Field: "payout.merchant_id", Err: errors.New("is required when requests.payees is on")})
		}
		if c.Payout.APIKey == "" {
			errs = append(errs, &ValidationError{Field: "payout.api_key", Err: fmt.Errorf("is required when requests.payees is on (or $%s)", EnvPayoutKey)})
		}
	}
	if c.Requests.Payees && c.Payout.MerchantPrivateKeyFile != "" {
		if err := checkSecretsPerm(c.Payout.MerchantPrivateKeyFile); err != nil {
			errs = append(errs, &ValidationError{Field: "payout.merchant_private_key_file", Value: c.Payout.MerchantPrivateKeyFile, Err: err})
		}
	}
	return errors.Join(errs...)
}
