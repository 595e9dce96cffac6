package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
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
		k string
		v string
	}{{"api.listen", c.API.Listen}, {"diagnostics.listen", c.Diagnostics.Listen}} {
		if _, port, err := net.SplitHostPort(l.v); err != nil || port == "" {
			add(l.k, l.v, errors.New("must be host:port, e.g. 127.0.0.1:8470"))
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
	if o.MaxSingle.Money > o.MaxAmount.Money {
		add("offline.max_single", o.MaxSingle.String(), errors.New("must not exceed offline.max_amount"))
	}
	m := c.MQTT
	if m.Broker != "" {
		u, err := url.Parse(m.Broker)
		if err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "mqtt" && u.Scheme != "mqtts") || u.Host == "" {
			add("mqtt.broker", m.Broker, errors.New("must be a URL like tcp://host:1883 or ssl://host:8883"))
		}
	} else if m.Embedded.Enabled {
		if _, _, err := net.SplitHostPort(m.Embedded.Listen); err != nil {
			add("mqtt.embedded.listen", m.Embedded.Listen, errors.New("must be host:port"))
		}
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		add("mqtt.cert_file", m.CertFile, errors.New("cert_file and key_file go together"))
	}
	if strings.ContainsAny(m.TopicPrefix, "#+") || m.TopicPrefix == "" {
		add("mqtt.topic_prefix", m.TopicPrefix, errors.New("must be non-empty and contain no MQTT wildcards"))
	}
	seen := map[string]bool{}
	usesMQTT := false
	for i, t := range c.Terminals {
		at := fmt.Sprintf("terminals[%d]", i)
		if !terminalIDRe.MatchString(t.ID) {
			add(at+".id", t.ID, errors.New("must be the Hesabe terminal_id: 1-32 letters, digits, '-' or '_'"))
		}
		if seen[t.ID] {
			add(at+".id", t.ID, errors.New("is declared twice"))
		}
		seen[t.ID] = true
		switch t.Link {
		case "mqtt":
			usesMQTT = true
		case "serial":
			s := t.Serial
			if s.Port == "" && s.USB.VID == "" && s.USB.Serial == "" {
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
		case "none":
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
		if c.HitPay.URL == "" || !isHTTPURL(c.HitPay.URL) {
			add("hitpay.url", c.HitPay.URL, errors.New("must be an http:// or https:// URL (requests.customers is hitpay)"))
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
		if !isHTTPURL(p.URL) {
			add("payout.url", p.URL, errors.New("must be an http:// or https:// URL (requests.payees is on)"))
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

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
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
	if c.Requests.Payees && c.Payout.MerchantPrivateKeyFile != "" {
		if err := checkSecretsPerm(c.Payout.MerchantPrivateKeyFile); err != nil {
			errs = append(errs, &ValidationError{Field: "payout.merchant_private_key_file", Value: c.Payout.MerchantPrivateKeyFile, Err: err})
		}
	}
	return errors.Join(errs...)
}
