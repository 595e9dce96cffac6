// Package hitpay is a client for HitPay's create-customer call
// (POST /v1/customers, hesabe-api.md §7) and the bridge's rules for what a
// till may ask it to create (Validate).
//
// Every failure of CreateCustomer is an *Error with a class the engine acts
// on (pos.ErrorClass): retryable (not applied: no answer before the body
// left, 5xx, 429), permanent (HitPay refused it: 401, 403, 422, other
// 4xx), or ambiguous (the connection broke after the body was sent, a
// proxy's 502/504, or a success answer that cannot be read: the customer
// may exist). Like the Hesabe client, it sends "Expect: 100-continue" and
// watches whether any byte of the body was read (package gwhttp) to tell
// the first from the last. HitPay has no idempotency key, so the transport
// never resends by itself.
//
// The API key is a secret: it is only ever put in the X-BUSINESS-API-KEY
// header. Config and Client print it as "[redacted]" under fmt and slog,
// and no error carries it.
package hitpay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/gwhttp"
	"github.com/posbridge/posbridge/internal/pos"
)

// SandboxURL is HitPay's sandbox API base. Production is
// https://api.hit-pay.com.
const SandboxURL = "https://api.sandbox.hit-pay.com"

// PathCustomers is the create-customer endpoint, relative to the base URL.
const PathCustomers = "/v1/customers"

// APIKeyHeader carries the business API key.
const APIKeyHeader = "X-BUSINESS-API-KEY"

// DefaultTimeout bounds a call when Config.Timeout is zero.
const DefaultTimeout = 20 * time.Second

const (
	maxAnswerBytes = 1 << 20
	redacted       = "[redacted]"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API base, e.g. SandboxURL.
	BaseURL string
	// APIKey is the business API key (secret).
	APIKey string
	// Timeout bounds each call, on top of the caller's context. Default
	// DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, if set, is used instead of a client on gwhttp's
	// transport. Its Timeout should be zero (the context bounds calls).
	HTTPClient *http.Client
}

// Validate reports a configuration that cannot work, naming the field.
func (c Config) Validate() error {
	if c.BaseURL == "" {
		return errors.New("hitpay config: base_url is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("hitpay config: base_url %q is not an http(s) URL", redactURL(c.BaseURL))
	}
	if u.User != nil {
		return fmt.Errorf("hitpay config: base_url %q must not carry credentials", redactURL(c.BaseURL))
	}
	if strings.TrimSpace(c.APIKey) == "" {
		return errors.New("hitpay config: api_key is required")
	}
	if c.Timeout < 0 {
		return fmt.Errorf("hitpay config: timeout %s is negative", c.Timeout)
	}
	return nil
}

// String shows the configuration with the API key redacted.
func (c Config) String() string {
	return fmt.Sprintf("hitpay.Config{BaseURL: %q, APIKey: %s, Timeout: %s}", redactURL(c.BaseURL), redactKey(c.APIKey), c.Timeout)
}

// GoString redacts under %#v too.
func (c Config) GoString() string { return c.String() }

// LogValue redacts in slog records.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", redactURL(c.BaseURL)),
		slog.String("api_key", redactKey(c.APIKey)), slog.Duration("timeout", c.Timeout))
}

// MarshalJSON redacts, for a configuration dumped as JSON.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BaseURL string `json:"base_url"`
		APIKey  string `json:"api_key"`
		Timeout string `json:"timeout"`
	}{redactURL(c.BaseURL), redactKey(c.APIKey), c.Timeout.String()})
}

func redactKey(k string) string {
	if k == "" {
		return `""`
	}
	return redacted
}

// redactURL hides a password in a URL (there should be none).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// Client calls HitPay. It is safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	c := &Client{cfg: cfg, http: cfg.HTTPClient}
	if c.http == nil {
		c.http = &http.Client{Transport: gwhttp.NewTransport()}
	}
	return c, nil
}

// String never shows the API key (nor does %+v, which calls it).
func (c *Client) String() string { return "hitpay.Client{" + redactURL(c.cfg.BaseURL) + "}" }

// GoString never shows the API key.
func (c *Client) GoString() string { return c.String() }

// LogValue never shows the API key.
func (c *Client) LogValue() slog.Value { return slog.StringValue(c.String()) }

// CreateCustomer asks HitPay to create a customer and returns it as HitPay
// answered (201). It does not run Validate: the bridge validates when the
// till asks, and a request HitPay refuses comes back as a permanent *Error
// whose Fields name HitPay's fields.
func (c *Client) CreateCustomer(ctx context.Context, in CustomerRequest) (*Customer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	body, err := json.Marshal(in)
	if err != nil {
		return nil, &Error{class: pos.ClassPermanent, Err: fmt.Errorf("encode request: %w", err)}
	}
	req, sent, err := gwhttp.NewRequest(ctx, http.MethodPost, c.cfg.BaseURL+PathCustomers, body, true)
	if err != nil {
		return nil, &Error{class: pos.ClassPermanent, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(APIKeyHeader, c.cfg.APIKey)
	resp, err := c.http.Do(req)
	if err != nil {
		class := pos.ClassRetryable
		if sent.Sent() {
			class = pos.ClassAmbiguous
		}
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (no answer in time)", err)
		}
		return nil, &Error{class: class, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if err != nil {
		// The status arrived but the answer was cut.
		class := classifyStatus(resp.StatusCode)
		if ok {
			class = pos.ClassAmbiguous // created, but we cannot say which customer
		}
		return nil, &Error{Status: resp.StatusCode, class: class, Err: fmt.Errorf("read answer: %w", err)}
	}
	if !ok {
		return nil, answerError(resp, raw)
	}
	cust, found := decodeCustomer(raw)
	if !found {
		return nil, &Error{Status: resp.StatusCode, class: pos.ClassAmbiguous,
			Err: fmt.Errorf("answer holds no customer id (%d bytes)", len(raw))}
	}
	return &cust, nil
}

// answerError reads a refusal: HitPay's {"message":..,"errors":{field:[..]}}
// or, from a proxy, anything else.
func answerError(resp *http.Response, raw []byte) *Error {
	e := &Error{Status: resp.StatusCode, class: classifyStatus(resp.StatusCode)}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = gwhttp.RetryAfter(resp.Header, time.Now())
	}
	var body struct {
		Message flexString      `json:"message"`
		Errors  json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		if len(strings.TrimSpace(string(raw))) > 0 {
			e.Err = fmt.Errorf("answer is not JSON (%d bytes)", len(raw))
		}
		return e
	}
	e.Message = truncate(string(body.Message))
	var fields map[string]json.RawMessage
	if json.Unmarshal(body.Errors, &fields) == nil {
		for k, v := range fields {
			var msgs []flexString
			if json.Unmarshal(v, &msgs) != nil {
				var one flexString
				if json.Unmarshal(v, &one) != nil || one == "" {
					continue
				}
				msgs = []flexString{one}
			}
			if e.Fields == nil {
				e.Fields = make(map[string][]string, len(fields))
			}
			for _, m := range msgs {
				e.Fields[k] = append(e.Fields[k], truncate(string(m)))
			}
		}
	}
	return e
}
