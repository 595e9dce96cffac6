// Package hesabe is a typed client for Hesabe's merchant and payment APIs:
// merchant login and token refresh, Smart POS invoices (create, resend, look
// up by id or by invoice_number), the terminal list, customers (v2) and
// HeStallMent installment batches.
//
// Every failure is an *Error with a class the engine acts on (see
// pos.ErrorClass): retryable, permanent, or ambiguous — the last meaning the
// request may have been applied, so the caller must look it up before it
// sends again. To tell "never sent" from "maybe applied", POSTs that create
// something carry "Expect: 100-continue": if the connection fails before
// the server asked for the body, the body never left this process.
//
// The client never logs or returns keys, the access code, passwords or
// tokens.
package hesabe

import (
	"bytes"
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

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/gwhttp"
	"github.com/posbridge/posbridge/internal/pos"
)

// Sandbox base URLs (hesabe-api.md §2).
const (
	SandboxMerchantURL = "https://merchantapisandbox.hesabe.com/api"
	SandboxPaymentURL  = "https://sandbox.hesabe.com/api"
)

// Defaults for Config's zero values.
const (
	DefaultTimeout      = 20 * time.Second
	DefaultRefreshEarly = 60 * time.Second
	maxAnswerBytes      = 4 << 20
)

// Config configures a Client. Secrets are plain strings here; the client
// keeps them out of every log line and error.
type Config struct {
	// MerchantURL is the merchant API base, e.g. SandboxMerchantURL.
	MerchantURL string
	// PaymentURL is the payment API base (customers), e.g. SandboxPaymentURL.
	PaymentURL string

	MerchantCode string
	AccessCode   string // secret
	SecretKey    string // secret: 32 bytes
	IVKey        string // secret: 16 bytes
	Username     string // merchant panel user
	Password     string // secret

	// Timeout bounds each call (including its one re-login and retry)
	// when the caller's context has no earlier deadline. Default 20 s.
	Timeout time.Duration
	// RefreshEarly renews the access token this long before it expires.
	RefreshEarly time.Duration
	// NoExpectContinue turns off "Expect: 100-continue" on creating POSTs
	// (for a proxy that mishandles it). Failures after the headers are
	// then classified ambiguous rather than retryable.
	NoExpectContinue bool

	// HTTPClient, if set, is used instead of a client built on a private
	// transport. Its Timeout should be zero (the context bounds calls).
	HTTPClient *http.Client
	Logger     *slog.Logger
	// OnCall, if set, is told of every finished call (for metrics): the
	// operation, how long it took and its error (nil on success).
	OnCall func(op string, elapsed time.Duration, err error)
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// String shows the account without its secrets (%v, %+v, %s).
func (c Config) String() string {
	red := func(v string) string {
		if v == "" {
			return `""`
		}
		return "[redacted]"
	}
	return fmt.Sprintf("hesabe.Config{MerchantURL:%q PaymentURL:%q MerchantCode:%q AccessCode:%s SecretKey:%s IVKey:%s Username:%q Password:%s Timeout:%s}",
		c.MerchantURL, c.PaymentURL, c.MerchantCode, red(c.AccessCode), red(c.SecretKey), red(c.IVKey), c.Username,
		red(c.Password), c.Timeout)
}

// GoString redacts under %#v too.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the secrets out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("merchant_url", c.MerchantURL), slog.String("merchant_code", c.MerchantCode),
		slog.String("username", c.Username))
}

// Validate reports a configuration that cannot work, naming the field.
func (c Config) Validate() error {
	for _, f := range []struct{ name, val string }{
		{"merchant_url", c.MerchantURL}, {"merchant_code", c.MerchantCode},
		{"access_code", c.AccessCode}, {"secret_key", c.SecretKey}, {"iv_key", c.IVKey},
	} {
		if f.val == "" {
			return fmt.Errorf("hesabe config: %s is required", f.name)
		}
	}
	if u, err := url.Parse(c.MerchantURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("hesabe config: merchant_url %q is not an http(s) URL", c.MerchantURL)
	}
	if c.PaymentURL != "" {
		if u, err := url.Parse(c.PaymentURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("hesabe config: payment_url %q is not an http(s) URL", c.PaymentURL)
		}
	}
	if len(c.SecretKey) != 32 {
		return fmt.Errorf("hesabe config: secret_key must be 32 characters (got %d)", len(c.SecretKey))
	}
	if len(c.IVKey) != 16 {
		return fmt.Errorf("hesabe config: iv_key must be 16 characters (got %d)", len(c.IVKey))
	}
	return nil
}

// Client calls Hesabe. It is safe for concurrent use.
type Client struct {
	cfg    Config
	codec  *crypto.Codec
	http   *http.Client
	log    *slog.Logger
	now    func() time.Time
	tokens *tokenSource
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	codec, err := crypto.NewCodec([]byte(cfg.SecretKey), []byte(cfg.IVKey))
	if err != nil {
		return nil, fmt.Errorf("hesabe config: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RefreshEarly <= 0 {
		cfg.RefreshEarly = DefaultRefreshEarly
	}
	if cfg.PaymentURL == "" {
		cfg.PaymentURL = cfg.MerchantURL
	}
	cfg.MerchantURL = strings.TrimRight(cfg.MerchantURL, "/")
	cfg.PaymentURL = strings.TrimRight(cfg.PaymentURL, "/")
	c := &Client{cfg: cfg, codec: codec, http: cfg.HTTPClient, log: cfg.Logger, now: cfg.Now}
	if c.http == nil {
		c.http = &http.Client{Transport: gwhttp.NewTransport()}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.tokens = &tokenSource{c: c}
	return c, nil
}

// String never shows secrets.
func (c *Client) String() string {
	return fmt.Sprintf("hesabe.Client{merchant %s at %s}", c.cfg.MerchantCode, c.cfg.MerchantURL)
}

// Codec returns the merchant's AES codec (for technician tools).
func (c *Client) Codec() *crypto.Codec { return c.codec }

// call describes one request.
type call struct {
	op         string
	method     string
	base       string // merchant or payment URL
	path       string
	payload    any  // encrypted into data; nil for none
	plain      bool // send payload as plain JSON (login)
	bearer     bool // needs the merchant token
	idempotent bool // safe to repeat: network failures are retryable
}

// envelope is Hesabe's decrypted (or plain) answer.
type envelope struct {
	Status   *bool           `json:"status"`
	Code     *FlexInt        `json:"code"`
	Message  Message         `json:"message"`
	Response json.RawMessage `json:"response"`
	Data     json.RawMessage `json:"data"`
}

func (e envelope) body() json.RawMessage {
	if len(e.Response) > 0 && string(e.Response) != "null" {
		return e.Response
	}
	return e.Data
}

// do runs a call under the client's timeout, logging in and retrying once
// when the gateway refuses the token, and decodes the answer body into out.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	start := c.now()
	env, used, err := c.attempt(ctx, cl, "")
	var herr *Error
	if cl.bearer && errors.As(err, &herr) && herr.authFailure() {
		c.log.Info("hesabe token refused; logging in again", "op", cl.op)
		env, _, err = c.attempt(ctx, cl, used)
	}
	if err != nil {
		if errors.As(err, &herr) && herr.authFailure() {
			// Still refused after a fresh login: misconfiguration.
			herr.Class = pos.ClassPermanent
		}
		c.log.Warn("hesabe call failed", "op", cl.op, "class", pos.ClassOf(err).String(),
			"elapsed", c.now().Sub(start), "err", err)
		if c.cfg.OnCall != nil {
			c.cfg.OnCall(cl.op, c.now().Sub(start), err)
		}
		return err
	}
	c.log.Debug("hesabe call", "op", cl.op, "elapsed", c.now().Sub(start))
	if c.cfg.OnCall != nil {
		c.cfg.OnCall(cl.op, c.now().Sub(start), nil)
	}
	if out != nil {
		if err := json.Unmarshal(env.body(), out); err != nil {
			return &Error{Op: cl.op, HTTPStatus: http.StatusOK, Code: codeNone,
				Class: c.undecodableClass(cl), Err: fmt.Errorf("decode answer: %w", err)}
		}
	}
	return nil
}

// undecodableClass is the class of a success answer we cannot read: for a
// create the invoice probably exists, so the caller must look it up.
func (c *Client) undecodableClass(cl call) pos.ErrorClass {
	if cl.idempotent {
		return pos.ClassRetryable
	}
	return pos.ClassAmbiguous
}

// attempt sends one request and returns the decoded envelope of a success
// and the token it used. refused is a token the gateway refused, to renew.
func (c *Client) attempt(ctx context.Context, cl call, refused string) (envelope, string, error) {
	var token string
	if cl.bearer {
		var err error
		if token, err = c.tokens.get(ctx, refused); err != nil {
			return envelope{}, "", err
		}
	}
	env, err := c.send(ctx, cl, token)
	return env, token, err
}

// send makes one HTTP exchange.
func (c *Client) send(ctx context.Context, cl call, token string) (envelope, error) {
	req, sent, err := c.newRequest(ctx, cl, token)
	if err != nil {
		return envelope{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return envelope{}, c.transportError(ctx, cl, sent.Sent(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		// The answer was cut: the server did process the request.
		class := pos.ClassRetryable
		if !cl.idempotent {
			class = pos.ClassAmbiguous
		}
		return envelope{}, &Error{Op: cl.op, HTTPStatus: resp.StatusCode, Code: codeNone, Class: class,
			Err: fmt.Errorf("read answer: %w", err)}
	}
	return c.decodeAnswer(cl, resp, raw)
}

// newRequest builds the HTTP request. Its body (nil for none) reports
// whether the transport read any byte of it.
func (c *Client) newRequest(ctx context.Context, cl call, token string) (*http.Request, *gwhttp.Body, error) {
	u := cl.base + cl.path
	var body []byte
	var data string
	if cl.payload != nil {
		js, err := marshalCompact(cl.payload)
		if err != nil {
			return nil, nil, &Error{Op: cl.op, Code: codeNone, Class: pos.ClassPermanent, Err: fmt.Errorf("encode request: %w", err)}
		}
		switch {
		case cl.plain:
			data = string(js)
		default:
			data = c.codec.Encrypt(js)
		}
	}
	if cl.method == http.MethodGet {
		if data != "" {
			u += "?data=" + data
		}
	} else if cl.payload != nil {
		body = []byte(data)
		if !cl.plain {
			body, _ = json.Marshal(map[string]string{"data": data})
		}
	}
	// The transport never resends a body by itself; creates wait for the
	// server's 100 Continue before the body leaves.
	req, sent, err := gwhttp.NewRequest(ctx, cl.method, u, body, !cl.idempotent && !c.cfg.NoExpectContinue)
	if err != nil {
		return nil, nil, &Error{Op: cl.op, Code: codeNone, Class: pos.ClassPermanent, Err: fmt.Errorf("build request: %w", redactURL(err))}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("accessCode", c.cfg.AccessCode)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req, sent, nil
}

// transportError classifies a failure with no answer.
func (c *Client) transportError(ctx context.Context, cl call, bodySent bool, err error) error {
	err = redactURL(err)
	class := pos.ClassRetryable
	if !cl.idempotent && bodySent {
		class = pos.ClassAmbiguous
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (no answer in time)", ctxErr)
	}
	return &Error{Op: cl.op, Code: codeNone, Class: class, Err: err}
}

// redactURL strips the query (the encrypted payload) from url.Errors.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// decodeAnswer turns an HTTP answer into an envelope or an *Error.
func (c *Client) decodeAnswer(cl call, resp *http.Response, raw []byte) (envelope, error) {
	fail := func(code int, msg Message, class pos.ErrorClass, cause error) (envelope, error) {
		e := &Error{Op: cl.op, HTTPStatus: resp.StatusCode, Code: code, Message: msg, Class: class, Err: cause}
		if resp.StatusCode == http.StatusTooManyRequests {
			e.RetryAfter = gwhttp.RetryAfter(resp.Header, c.now())
		}
		return envelope{}, e
	}
	env, err := c.openEnvelope(raw)
	if err != nil {
		class := classifyAnswer(resp.StatusCode, codeNone, cl.idempotent)
		if resp.StatusCode < 300 {
			class = c.undecodableClass(cl)
		}
		return fail(codeNone, Message{}, class, err)
	}
	code := codeNone
	if env.Code != nil && env.Code.Valid {
		code = int(env.Code.Value)
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300 && (env.Status == nil || *env.Status)
	if ok {
		return env, nil
	}
	return fail(code, env.Message, classifyAnswer(resp.StatusCode, code, cl.idempotent), nil)
}

// openEnvelope reads {"response":"<hex>"} (decrypting it) or a plain JSON
// envelope. A body that is neither is an error saying what it was.
func (c *Client) openEnvelope(raw []byte) (envelope, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return envelope{}, errors.New("empty answer")
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &outer); err != nil {
		return envelope{}, fmt.Errorf("answer is not JSON (%d bytes)", len(trimmed))
	}
	body := trimmed
	if r, ok := outer["response"]; ok && len(outer) == 1 {
		var hexText string
		if err := json.Unmarshal(r, &hexText); err == nil {
			plain, err := c.codec.Decrypt(hexText)
			if err != nil {
				return envelope{}, fmt.Errorf("decrypt answer: %w", err)
			}
			body = plain
		}
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return envelope{}, fmt.Errorf("decode answer envelope: %w", err)
	}
	return env, nil
}
