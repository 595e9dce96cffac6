// Package payout is a typed client for the Saudi payout provider's payee
// API (hesabe-api.md §7): creating a payee — a person the merchant pays
// out to — with a bank account or an STC Pay wallet.
//
// The provider wants the sensitive fields (identity, cardno, stcaccount)
// RSA-encrypted with its public key, and answers sensitive fields
// encrypted with the merchant's public key. The bridge seals a payee when
// the till's request is accepted (SealPayee), stores only the sealed wire
// request, and sends it later (Client.CreatePayee); the answer's sensitive
// fields stay sealed in Payee until something opens them with the
// merchant's private key (Client.OpenField, Client.MaskPayee — the till
// only ever sees the last four characters).
//
// Assumptions where the reference is silent, each in one place, easy to
// correct: the provider authenticates the merchant with the headers
// "X-Merchant-Id: <merchant id>" and "Authorization: Bearer <api key>"
// (Config); its failure codes are HTTP-like (errors.go); its status
// numbers are in status.go; the padding is PKCS#1 v1.5 unless configured.
//
// Every failure is an *Error with a class the engine acts on (see
// pos.ErrorClass): retryable (not applied), permanent (refused) or
// ambiguous (may have been applied: the bridge sends the request again and
// a duplicate mercustomid, errors.Is(err, ErrDuplicate), tells it the
// first one went through). The create carries "Expect: 100-continue" (see
// internal/gwhttp) so a failure before the body left is retryable.
//
// The client never logs or returns the API key, the private key or a
// plaintext identity, card or STC number.
package payout

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

// PathCreatePayee is the create-payee endpoint, under Config.BaseURL.
const PathCreatePayee = "/payee/custom/create"

// Defaults for Config's zero values.
const (
	DefaultTimeout = 20 * time.Second
	maxAnswerBytes = 1 << 20
)

// Config configures a Client. The API key is a plain string here; the
// client keeps it out of every log line, error and dump.
type Config struct {
	// BaseURL is the provider's API root; requests go to BaseURL+path.
	BaseURL string
	// MerchantID is sent as X-Merchant-Id (our assumption: the reference
	// does not say how the provider authenticates).
	MerchantID string
	// APIKey is sent as "Authorization: Bearer <APIKey>" (same
	// assumption). Secret.
	APIKey string
	// Timeout bounds each call when the caller's context has no earlier
	// deadline. Default 20 s.
	Timeout time.Duration
	// HTTPClient, if set, is used instead of one on gwhttp's transport.
	// Its Timeout should be zero (the context bounds calls).
	HTTPClient *http.Client
	// ProviderPublicKeyFile is the provider's RSA public key (PEM or bare
	// base64 DER): what the sensitive fields are sealed with.
	ProviderPublicKeyFile string
	// MerchantPrivateKeyFile is the merchant's RSA private key (PKCS#1 or
	// PKCS#8 PEM, unencrypted; keep the file 0600): what opens the
	// answer's sensitive fields. Its public half is registered with the
	// provider.
	MerchantPrivateKeyFile string
	// Padding is the RSA padding agreed with the provider, both ways.
	// "" means PKCS#1 v1.5.
	Padding crypto.RSAPadding
	// NoExpectContinue turns off "Expect: 100-continue" (for a proxy that
	// mishandles it). Failures after the headers are then ambiguous
	// rather than retryable.
	NoExpectContinue bool
	Logger           *slog.Logger
	// OnCall, if set, is told of every finished call (for metrics).
	OnCall func(op string, elapsed time.Duration, err error)
}

// String shows no secret.
func (c Config) String() string {
	return fmt.Sprintf("payout.Config{BaseURL:%q MerchantID:%q APIKey:%s ProviderPublicKeyFile:%q MerchantPrivateKeyFile:%q Padding:%s Timeout:%s}",
		c.BaseURL, c.MerchantID, redacted(c.APIKey), c.ProviderPublicKeyFile, c.MerchantPrivateKeyFile, c.Padding, c.Timeout)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// Format makes every verb print String: no %+v or %x shows the API key.
func (c Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue keeps the API key out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("merchant_id", c.MerchantID),
		slog.String("api_key", redacted(c.APIKey)), slog.String("padding", c.Padding.String()))
}

func redacted(secret string) string {
	if secret == "" {
		return "(unset)"
	}
	return "[redacted]"
}

// Validate reports a configuration that cannot work, naming the field.
// It does not read the key files (New does).
func (c Config) Validate() error {
	for _, f := range []struct{ name, val string }{
		{"base_url", c.BaseURL}, {"merchant_id", c.MerchantID}, {"api_key", c.APIKey},
		{"provider_public_key_file", c.ProviderPublicKeyFile}, {"merchant_private_key_file", c.MerchantPrivateKeyFile},
	} {
		if strings.TrimSpace(f.val) == "" {
			return fmt.Errorf("payout config: %s is required", f.name)
		}
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("payout config: base_url %q is not an http(s) URL", c.BaseURL)
	}
	if strings.ContainsAny(c.APIKey, "\r\n") || strings.ContainsAny(c.MerchantID, "\r\n") {
		return errors.New("payout config: api_key and merchant_id must be one line")
	}
	if _, err := crypto.ParseRSAPadding(string(c.Padding)); err != nil {
		return fmt.Errorf("payout config: padding: %w", err)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("payout config: timeout must not be negative")
	}
	return nil
}

// Client calls the payout provider. It is safe for concurrent use.
type Client struct {
	cfg    Config
	sealer *crypto.Sealer
	opener *crypto.Opener
	http   *http.Client
	log    *slog.Logger
	hmac   []byte // key of PayeeHash, derived from the merchant private key
}

// New loads both keys and returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	padding, _ := crypto.ParseRSAPadding(string(cfg.Padding))
	cfg.Padding = padding
	pub, err := crypto.LoadRSAPublicKeyFile(cfg.ProviderPublicKeyFile)
	if err != nil {
		return nil, fmt.Errorf("payout config: provider_public_key_file: %w", err)
	}
	priv, err := crypto.LoadRSAPrivateKeyFile(cfg.MerchantPrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("payout config: merchant_private_key_file: %w", err)
	}
	if pub.Equal(&priv.PublicKey) {
		return nil, errors.New("payout config: the provider's public key is the merchant's own key; give the provider's")
	}
	sealer, err := crypto.NewSealer(pub, padding)
	if err != nil {
		return nil, fmt.Errorf("payout config: %w", err)
	}
	opener, err := crypto.NewOpener(priv, padding)
	if err != nil {
		return nil, fmt.Errorf("payout config: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	c := &Client{cfg: cfg, sealer: sealer, opener: opener, http: cfg.HTTPClient, log: cfg.Logger, hmac: hashKey(priv)}
	if c.http == nil {
		c.http = &http.Client{Transport: gwhttp.NewTransport()}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// String shows no secret.
func (c *Client) String() string {
	return fmt.Sprintf("payout.Client{merchant %s at %s}", c.cfg.MerchantID, c.cfg.BaseURL)
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// Format makes every verb print String.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// Sealer seals with the provider's public key (for SealPayee).
func (c *Client) Sealer() *crypto.Sealer { return c.sealer }

// SealPayee is SealPayee with the client's sealer.
func (c *Client) SealPayee(r PayeeRequest) (SealedPayee, error) { return SealPayee(r, c.sealer) }

// OpenField opens one sealed field of an answer with the merchant's
// private key. The result is a secret: never log it.
func (c *Client) OpenField(sealed string) (string, error) {
	plain, err := c.opener.Open(sealed)
	if err != nil {
		return "", fmt.Errorf("payout: open field: %w", err)
	}
	return plain, nil
}

// CreatePayee sends a sealed payee: POST {BaseURL}/payee/custom/create.
// It returns the provider's payee with the sensitive fields still sealed.
// A duplicate mercustomid is an *Error matching ErrDuplicate.
func (c *Client) CreatePayee(ctx context.Context, p SealedPayee) (*Payee, error) {
	const op = "create payee"
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	start := time.Now()
	payee, err := c.createPayee(ctx, op, p)
	elapsed := time.Since(start)
	if err != nil {
		c.log.Warn("payout call failed", "op", op, "mercustomid", p.MerCustomID,
			"class", pos.ClassOf(err).String(), "elapsed", elapsed, "err", err)
	} else {
		c.log.Info("payout payee created", "op", op, "mercustomid", p.MerCustomID,
			"customid", payee.CustomID, "status", payee.Status, "elapsed", elapsed)
	}
	if c.cfg.OnCall != nil {
		c.cfg.OnCall(op, elapsed, err)
	}
	return payee, err
}

func (c *Client) createPayee(ctx context.Context, op string, p SealedPayee) (*Payee, error) {
	body, err := json.Marshal(p)
	if err != nil {
		return nil, &Error{Op: op, class: pos.ClassPermanent, Err: fmt.Errorf("encode request: %w", err)}
	}
	env, resp, err := c.send(ctx, op, PathCreatePayee, body)
	if err != nil {
		return nil, err
	}
	payee, err := decodePayee(env)
	if err != nil {
		// A success whose payee we cannot read: it was probably created.
		return nil, &Error{Op: op, HTTPStatus: resp.StatusCode, Code: env.code(), RequestID: env.RequestID,
			class: pos.ClassAmbiguous, Err: err}
	}
	return payee, nil
}

// send makes one POST and returns the envelope of a success (HTTP 2xx,
// code 200) or an *Error.
func (c *Client) send(ctx context.Context, op, path string, body []byte) (envelope, *http.Response, error) {
	req, sent, err := gwhttp.NewRequest(ctx, http.MethodPost, c.cfg.BaseURL+path, body, !c.cfg.NoExpectContinue)
	if err != nil {
		return envelope{}, nil, &Error{Op: op, class: pos.ClassPermanent, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Merchant-Id", c.cfg.MerchantID)
	req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	resp, err := c.http.Do(req)
	if err != nil {
		class := pos.ClassRetryable
		if sent.Sent() {
			class = pos.ClassAmbiguous
		}
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (no answer in time)", ctxErr)
		}
		return envelope{}, nil, &Error{Op: op, class: class, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		// The answer was cut: the provider did process the request.
		return envelope{}, resp, &Error{Op: op, HTTPStatus: resp.StatusCode, class: pos.ClassAmbiguous,
			Err: fmt.Errorf("read answer: %w", err)}
	}
	env, derr := decodeEnvelope(raw)
	code := env.code()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && derr == nil && code == CodeOK {
		return env, resp, nil
	}
	e := &Error{Op: op, HTTPStatus: resp.StatusCode, Code: code, Message: scrubMessage(env.Message),
		RequestID: env.RequestID, Field: fieldOf(env.Field, env.Message)}
	switch {
	case derr != nil && resp.StatusCode >= 200 && resp.StatusCode < 300:
		// A success status with a body we cannot read: maybe created.
		e.class, e.Err = pos.ClassAmbiguous, derr
	case derr != nil:
		e.class, e.Err = classify(resp.StatusCode, 0), derr
	case code == 0 && resp.StatusCode >= 200 && resp.StatusCode < 300:
		e.class, e.Err = pos.ClassAmbiguous, errors.New("answer has no code")
	default:
		e.class = classify(resp.StatusCode, code)
	}
	if e.Code == CodeDuplicate {
		if p, err := decodePayee(env); err == nil {
			e.CustomID = p.CustomID
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests || code == CodeTooMany || code == CodeBusy {
		e.RetryAfter = gwhttp.RetryAfter(resp.Header, time.Now())
	}
	return envelope{}, resp, e
}

// decodeEnvelope reads the provider's answer envelope.
func decodeEnvelope(raw []byte) (envelope, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return envelope{}, errors.New("empty answer")
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		// Say what it was, not what it said: a proxy's page could be long.
		return envelope{}, fmt.Errorf("answer is not the provider's JSON (%d bytes)", len(trimmed))
	}
	return env, nil
}
