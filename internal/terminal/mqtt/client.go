package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// Errors returned by Publish.
var (
	// ErrNotConnected: the client is not connected now. Nothing was
	// queued; the caller's outbox resends after reconnect.
	ErrNotConnected = errors.New("mqtt: not connected to the broker")
	// ErrTimeout: the broker did not acknowledge in time. The message may
	// or may not have arrived; the protocol's ids make a resend safe.
	ErrTimeout = errors.New("mqtt: broker did not acknowledge in time")
)

// client is the small surface posbridge uses from paho.
type client struct {
	cfg Config
	c   paho.Client

	mu      sync.Mutex
	conn    net.Conn // the current network connection
	aborted bool
}

type clientHooks struct {
	will       string
	willBody   []byte
	onConnect  func()
	onLost     func(error)
	onMessage  func(topic string, payload []byte)
	autoResume bool
}

func newClient(cfg Config, h clientHooks) (*client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	tc, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	o := paho.NewClientOptions()
	o.AddBroker(cfg.BrokerURL)
	o.SetClientID(cfg.ClientID)
	if cfg.Username != "" {
		o.SetUsername(cfg.Username)
		o.SetPassword(cfg.Password)
	}
	cl := &client{cfg: cfg}
	// Our own dialer, so abort can cut the TCP connection the way a power
	// loss would (paho has no such call) and refuse to reconnect after.
	o.SetCustomOpenConnectionFn(func(u *url.URL, _ paho.ClientOptions) (net.Conn, error) {
		cl.mu.Lock()
		aborted := cl.aborted
		cl.mu.Unlock()
		if aborted {
			return nil, errors.New("mqtt: client aborted")
		}
		d := &net.Dialer{Timeout: cfg.ConnectTimeout}
		var conn net.Conn
		var err error
		if tc != nil {
			conn, err = tls.DialWithDialer(d, "tcp", u.Host, tc)
		} else {
			conn, err = d.Dial("tcp", u.Host)
		}
		if err != nil {
			return nil, err
		}
		cl.mu.Lock()
		cl.conn = conn
		cl.mu.Unlock()
		return conn, nil
	})
	o.SetCleanSession(true)
	o.SetStore(newCopyStore())
	o.SetKeepAlive(cfg.KeepAlive)
	o.SetPingTimeout(cfg.KeepAlive / 2)
	o.SetConnectTimeout(cfg.ConnectTimeout)
	o.SetAutoReconnect(true)
	o.SetMaxReconnectInterval(cfg.MaxReconnectInterval)
	o.SetConnectRetry(true)
	o.SetConnectRetryInterval(cfg.MaxReconnectInterval / 2)
	// Handlers run in order on paho's router: a terminal's Last Will must
	// not overtake the hello it sent before dying. They never block.
	o.SetOrderMatters(true)
	o.SetResumeSubs(false)
	o.SetWriteTimeout(cfg.PublishTimeout)
	if h.will != "" {
		o.SetWill(h.will, string(h.willBody), 1, true)
	}
	o.SetOnConnectHandler(func(paho.Client) {
		if h.onConnect != nil {
			h.onConnect()
		}
	})
	o.SetConnectionLostHandler(func(pc paho.Client, err error) {
		// paho runs this and the connect handler on goroutines of their
		// own: a loss reported after the reconnect it caused already
		// completed is old news, and would mark a live link down.
		if h.onLost != nil && !pc.IsConnectionOpen() {
			h.onLost(err)
		}
	})
	o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		if h.onMessage != nil {
			h.onMessage(m.Topic(), m.Payload())
		}
	})
	cl.c = paho.NewClient(o)
	return cl, nil
}

// abort closes the network connection without a DISCONNECT packet, so the
// broker publishes the Last Will, and stops reconnecting.
func (c *client) abort() {
	c.mu.Lock()
	c.aborted = true
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// current returns the network connection paho runs on now (nil before
// the first dial).
func (c *client) current() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// redial fails conn, a connection a connect step (subscribe) failed on,
// so paho's auto-reconnect dials a new one and the OnConnect handler runs
// again. paho's Disconnect would instead stop the client for good: no
// reconnect ever, even while the broker is fine. Closing conn would not
// do either: paho takes a read error on a connection closed under it for
// its own doing and only notices the loss at the next keepalive; an
// expired read deadline is a plain read error, handled as a lost
// connection at once.
func (c *client) redial(conn net.Conn) {
	if conn != nil {
		_ = conn.SetReadDeadline(time.Now())
	}
}

// start begins connecting (retrying in the background until it works or
// stop is called). It does not wait for the broker.
func (c *client) start() {
	c.c.Connect()
}

// waitConnected blocks until the connection is open or ctx ends.
func (c *client) waitConnected(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !c.c.IsConnectionOpen() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("mqtt: connect to %s: %w", RedactURL(c.cfg.BrokerURL), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

func (c *client) connected() bool { return c.c.IsConnectionOpen() }

// wait turns a paho token into a context-aware error.
func (c *client) wait(ctx context.Context, tok paho.Token, what string) error {
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(c.cfg.PublishTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("mqtt %s: %w", what, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mqtt %s: %w: %w", what, ErrTimeout, ctx.Err())
	case <-timeout:
		return fmt.Errorf("mqtt %s: %w", what, ErrTimeout)
	}
}

func (c *client) publish(ctx context.Context, topic string, retained bool, payload []byte) error {
	if !c.c.IsConnectionOpen() {
		return ErrNotConnected
	}
	return c.wait(ctx, c.c.Publish(topic, 1, retained, payload), "publish")
}

func (c *client) subscribe(ctx context.Context, filters ...string) error {
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 1
	}
	return c.wait(ctx, c.c.SubscribeMultiple(m, nil), "subscribe")
}

// stop publishes a clean offline presence (best effort) and disconnects.
func (c *client) stop(ctx context.Context, presenceTopic string) {
	if presenceTopic != "" && c.c.IsConnectionOpen() {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_ = c.publish(pctx, presenceTopic, true, PresenceOffline)
		cancel()
	}
	quiesce := uint(250)
	if d, ok := ctx.Deadline(); ok {
		if ms := time.Until(d).Milliseconds(); ms < 250 {
			quiesce = uint(max(ms, 0))
		}
	}
	c.c.Disconnect(quiesce)
}

// checkConnect makes one connection attempt to cfg's broker with its TLS
// settings and credentials, under a client id of its own (so it takes no
// session from the real client), and returns the broker's answer: nil
// when it connects (it disconnects at once). paho's own retries report
// nothing, so this is how the bridge learns why it cannot connect.
func checkConnect(ctx context.Context, cfg Config) error {
	tc, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	o := paho.NewClientOptions()
	o.AddBroker(cfg.BrokerURL)
	o.SetClientID(cfg.ClientID + "-check")
	if cfg.Username != "" {
		o.SetUsername(cfg.Username)
		o.SetPassword(cfg.Password)
	}
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	o.SetCleanSession(true)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(cfg.ConnectTimeout)
	c := paho.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		<-tok.Done() // paho gives up within ConnectTimeout
	}
	if err := tok.Error(); err != nil {
		return err
	}
	c.Disconnect(0)
	return nil
}

// AuthRefused reports whether err is the broker refusing the client's
// username or password (MQTT 3.1.1 CONNACK codes 4 and 5).
func AuthRefused(err error) bool {
	return errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised)
}
