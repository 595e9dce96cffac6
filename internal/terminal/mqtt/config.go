package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultTopicPrefix is the first topic level of every posbridge topic.
const DefaultTopicPrefix = "posbridge"

// Config is how a client (the bridge or a terminal) reaches a broker.
type Config struct {
	// BrokerURL is tcp://host:port, ssl://host:port (or tls://, mqtts://).
	BrokerURL string `yaml:"broker_url" json:"broker_url"`
	Username  string `yaml:"username,omitempty" json:"username,omitempty"`
	// Password is never logged or put in an error.
	Password string `yaml:"password,omitempty" json:"-"`
	// ClientID must be unique per broker; each bridge has its own.
	ClientID    string `yaml:"client_id,omitempty" json:"client_id,omitempty"`
	TopicPrefix string `yaml:"topic_prefix,omitempty" json:"topic_prefix,omitempty"`

	// TLS: either a ready *tls.Config, or PEM files: CAFile to verify the
	// broker (system roots when empty), CertFile+KeyFile for a client
	// certificate. ServerName overrides the name checked in the broker's
	// certificate.
	TLS        *tls.Config `yaml:"-" json:"-"`
	CAFile     string      `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	CertFile   string      `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile    string      `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	ServerName string      `yaml:"server_name,omitempty" json:"server_name,omitempty"`

	// KeepAlive: a silently dead client's Last Will fires after about 1.5×
	// this. Default 10s.
	KeepAlive time.Duration `yaml:"keep_alive,omitempty" json:"keep_alive,omitempty"`
	// ConnectTimeout bounds one connection attempt. Default 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout,omitempty" json:"connect_timeout,omitempty"`
	// MaxReconnectInterval caps the back-off between reconnects. Default
	// 2s (paho's own default, 10 minutes, is far too long for a till).
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval,omitempty" json:"max_reconnect_interval,omitempty"`
	// PublishTimeout bounds the wait for a PUBACK when the caller's
	// context has no deadline. Default 5s.
	PublishTimeout time.Duration `yaml:"publish_timeout,omitempty" json:"publish_timeout,omitempty"`
}

func (c *Config) setDefaults() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 10 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.MaxReconnectInterval <= 0 {
		c.MaxReconnectInterval = 2 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
}

// Validate checks the config without touching the network.
func (c Config) Validate() error {
	if c.BrokerURL == "" {
		return errors.New("mqtt: broker_url is empty")
	}
	u, err := url.Parse(c.BrokerURL)
	if err != nil {
		return fmt.Errorf("mqtt: broker_url %q: %w", RedactURL(c.BrokerURL), err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return fmt.Errorf("mqtt: broker_url %q: scheme must be tcp:// or ssl://", RedactURL(c.BrokerURL))
	}
	if u.User != nil {
		return errors.New("mqtt: put credentials in username/password, not in broker_url")
	}
	if c.ClientID != "" && (len(c.ClientID) > 64 || strings.ContainsAny(c.ClientID, "/+# ")) {
		return fmt.Errorf("mqtt: client_id %q: at most 64 characters, no '/', '+', '#' or spaces", c.ClientID)
	}
	if c.TopicPrefix != "" && strings.ContainsAny(c.TopicPrefix, "+#") {
		return fmt.Errorf("mqtt: topic_prefix %q has a wildcard", c.TopicPrefix)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("mqtt: cert_file and key_file go together")
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("mqtt: password set without username")
	}
	return nil
}

func (c Config) secure() bool {
	u, err := url.Parse(c.BrokerURL)
	return err == nil && (u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts")
}

// tlsConfig returns the TLS settings for an ssl:// broker, or nil.
func (c Config) tlsConfig() (*tls.Config, error) {
	if c.TLS != nil {
		return c.TLS.Clone(), nil
	}
	if !c.secure() && c.CAFile == "" && c.CertFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: ca_file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// RedactURL drops any userinfo from a URL before it goes into a message
// (a broker URL may carry a password).
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "@"); i >= 0 {
			return "…" + s[i:]
		}
		return s
	}
	u.User = nil
	return u.String()
}

// Topics builds the topic names under a prefix.
type Topics struct{ Prefix string }

// Down is where the bridge publishes messages for a terminal.
func (t Topics) Down(terminalID string) string { return t.Prefix + "/t/" + terminalID + "/down" }

// Up is where a terminal publishes messages for the bridge.
func (t Topics) Up(terminalID string) string { return t.Prefix + "/t/" + terminalID + "/up" }

// Presence is a terminal's retained presence topic.
func (t Topics) Presence(terminalID string) string {
	return t.Prefix + "/t/" + terminalID + "/presence"
}

// BridgePresence is a bridge's retained presence topic.
func (t Topics) BridgePresence(clientID string) string {
	return t.Prefix + "/bridge/" + clientID + "/presence"
}

// Parse splits a terminal topic into terminal id and last level ("up",
// "down", "presence"); ok is false for any other topic.
func (t Topics) Parse(topic string) (terminalID, leaf string, ok bool) {
	rest, found := strings.CutPrefix(topic, t.Prefix+"/t/")
	if !found {
		return "", "", false
	}
	id, leaf, found := strings.Cut(rest, "/")
	if !found || id == "" || strings.Contains(leaf, "/") {
		return "", "", false
	}
	return id, leaf, true
}

// Presence payloads (retained). A terminal's Last Will is PresenceOffline.
var (
	PresenceOnline  = []byte(`{"state":"online"}`)
	PresenceOffline = []byte(`{"state":"offline"}`)
)

// IsOnline reads a presence payload; anything but an online state is
// offline (an empty retained payload means the topic was cleared).
func IsOnline(payload []byte) bool {
	return strings.Contains(string(payload), `"online"`)
}
