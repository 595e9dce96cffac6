// Package payoutsim is a payout provider simulator: a real HTTP server with
// the create-payee endpoint (hesabe-api.md §7) that holds the provider's
// RSA private key and the merchant's public key, opens the sealed fields
// of every request and checks them (so a field that was not really sealed,
// or sealed with the wrong key or padding, is refused), answers the
// provider's error shape with the provider's field names, refuses a
// duplicate mercustomid with CodeDuplicate, creates payees as incomplete
// (or pending when it demands nothing) and answers their sensitive fields
// re-sealed with the merchant's public key.
//
// Tests inject the shared simulator faults (internal/simfault: latency,
// 5xx, 429, reset before or after reading the body, apply-then-drop), move
// a payee through its review (SetStatus) and count payees (PayeeCount) to
// check that one request made exactly one payee. An admin API under /_sim
// does the same over HTTP.
//
// The answer codes, status numbers and authentication headers are the
// payout package's assumptions (see its documentation): the simulator
// speaks them so the client and the simulator can only agree.
package payoutsim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/httpserve"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/simfault"
)

// Default credentials of the simulated merchant.
const (
	DefaultMerchantID = "SIM-MERCHANT-1"
	DefaultAPIKey     = "sim-api-key-0123456789abcdef"
)

// DemandNone, as Options.DemandPerfection, makes the simulator demand no
// documents: new payees are pending rather than incomplete.
var DemandNone = []string{}

// Options configures a simulator. The zero value works.
type Options struct {
	MerchantID string // default DefaultMerchantID
	APIKey     string // default DefaultAPIKey
	// ProviderKey is the provider's key pair; nil uses the process-wide
	// simulator keys (Keys).
	ProviderKey *rsa.PrivateKey
	// MerchantPublicKey seals the answers' sensitive fields; nil uses the
	// process-wide merchant key, whose private half ClientConfig writes.
	MerchantPublicKey *rsa.PublicKey
	// Padding is the RSA padding both ways ("" = PKCS#1 v1.5).
	Padding crypto.RSAPadding
	// DemandPerfection is what a new payee still lacks; nil means
	// ["identitypic"] (the reference's example), DemandNone nothing.
	DemandPerfection []string
	// HTTPErrors answers refusals with a matching HTTP status (400, 409)
	// instead of HTTP 200 with the code in the body.
	HTTPErrors bool
	Logger     *slog.Logger
}

// Keys is a provider and a merchant key pair.
type Keys struct {
	Provider *rsa.PrivateKey
	Merchant *rsa.PrivateKey
}

// processKeys are generated once per process: RSA-2048 generation is
// slow, and simulator keys protect nothing.
var processKeys = sync.OnceValues(func() (Keys, error) {
	p, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Keys{}, err
	}
	m, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Keys{}, err
	}
	return Keys{Provider: p, Merchant: m}, nil
})

// ProcessKeys returns the process-wide simulator keys, generating them on
// first use.
func ProcessKeys() (Keys, error) { return processKeys() }

// Payee is a payee as the simulator holds it. Identity, CardNo and
// STCAccount are the opened values: test data, for assertions.
type Payee struct {
	CustomID         string
	MerCustomID      string
	Status           payout.PayeeStatus
	DemandPerfection []string
	CreatedAt        time.Time
	NameE, NameA     string
	BankCode         string
	IBANAccount      string
	Address          string
	SwiftCode        string
	AutoApproval     *int
	OTPAppName       string
	Identity         string
	CardNo           string
	STCAccount       string
}

// Stats counts what the simulator saw.
type Stats struct {
	Requests    map[string]int // by path
	FaultsFired map[simfault.Kind]int
	Payees      int
}

// Server is a running simulator.
type Server struct {
	opts     Options
	log      *slog.Logger
	opener   *crypto.Opener // provider private key
	sealer   *crypto.Sealer // merchant public key
	merchant *rsa.PrivateKey
	srv      *httpserve.Server
	closing  <-chan struct{} // srv.Stopping(): cuts injected latencies short
	faults   simfault.Set

	mu       sync.Mutex
	payees   []*Payee
	byCustom map[string]*Payee
	byMer    map[string]*Payee
	bodies   [][]byte
	requests map[string]int
	nextID   int64
}

// maxKeptBodies bounds RequestBodies.
const maxKeptBodies = 1000

// New returns a simulator that is not yet listening.
func New(opts Options) (*Server, error) { return newServer("", opts) }

// newServer returns a simulator that will listen on addr when opened.
func newServer(addr string, opts Options) (*Server, error) {
	if opts.MerchantID == "" {
		opts.MerchantID = DefaultMerchantID
	}
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.DemandPerfection == nil {
		opts.DemandPerfection = []string{"identitypic"}
	}
	var merchant *rsa.PrivateKey
	if opts.ProviderKey == nil || opts.MerchantPublicKey == nil {
		keys, err := processKeys()
		if err != nil {
			return nil, fmt.Errorf("payoutsim: generate keys: %w", err)
		}
		if opts.ProviderKey == nil {
			opts.ProviderKey = keys.Provider
		}
		if opts.MerchantPublicKey == nil {
			opts.MerchantPublicKey, merchant = &keys.Merchant.PublicKey, keys.Merchant
		}
	}
	opener, err := crypto.NewOpener(opts.ProviderKey, opts.Padding)
	if err != nil {
		return nil, fmt.Errorf("payoutsim: provider key: %w", err)
	}
	sealer, err := crypto.NewSealer(opts.MerchantPublicKey, opts.Padding)
	if err != nil {
		return nil, fmt.Errorf("payoutsim: merchant key: %w", err)
	}
	s := &Server{
		opts: opts, log: opts.Logger, opener: opener, sealer: sealer, merchant: merchant,
		byCustom: map[string]*Payee{}, byMer: map[string]*Payee{}, requests: map[string]int{},
		nextID: 880000000,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.srv = httpserve.New("payout simulator", addr, s.routes(), s.log)
	s.closing = s.srv.Stopping()
	return s, nil
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves until Close.
func Start(addr string, opts Options) (*Server, error) {
	s, err := newServer(addr, opts)
	if err != nil {
		return nil, err
	}
	if err := s.srv.Open(); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the simulator's root, the client's BaseURL.
func (s *Server) URL() string { return s.srv.URL() }

// Handler returns the simulator's HTTP handler.
func (s *Server) Handler() http.Handler { return s.srv.Handler() }

// Close stops the server: injected latencies end, running requests get up
// to half a second (or ctx), then every connection is dropped.
func (s *Server) Close(ctx context.Context) error {
	grace, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_ = s.srv.Close(grace) // an error only says the grace ran out and connections were dropped
	return nil
}

// ProviderPublicKey is the key the client seals with.
func (s *Server) ProviderPublicKey() *rsa.PublicKey { return &s.opts.ProviderKey.PublicKey }

// MerchantPrivateKey is the merchant's private key when the simulator
// generated it (nil when Options gave only the public key).
func (s *Server) MerchantPrivateKey() *rsa.PrivateKey { return s.merchant }

// WriteKeyFiles writes the provider's public key (provider.pub.pem, PKIX)
// and the merchant's private key (merchant.key.pem, PKCS#8, mode 0600)
// into dir and returns their paths.
func WriteKeyFiles(dir string, provider *rsa.PublicKey, merchant *rsa.PrivateKey) (providerPub, merchantPriv string, err error) {
	pubPEM, err := crypto.MarshalRSAPublicKeyPEM(provider)
	if err != nil {
		return "", "", err
	}
	privPEM, err := crypto.MarshalRSAPrivateKeyPEM(merchant)
	if err != nil {
		return "", "", err
	}
	providerPub, merchantPriv = filepath.Join(dir, "provider.pub.pem"), filepath.Join(dir, "merchant.key.pem")
	if err := os.WriteFile(providerPub, pubPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("payoutsim: %w", err)
	}
	if err := os.WriteFile(merchantPriv, privPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("payoutsim: %w", err)
	}
	return providerPub, merchantPriv, nil
}

// ClientConfig writes the client's key files into dir (see WriteKeyFiles)
// and returns a client configuration for this simulator. It fails when
// Options gave the merchant's public key only: write that merchant's
// private key yourself.
func (s *Server) ClientConfig(dir string) (payout.Config, error) {
	if s.merchant == nil {
		return payout.Config{}, errors.New("payoutsim: the merchant's private key is not the simulator's; write the key files yourself")
	}
	pub, priv, err := WriteKeyFiles(dir, s.ProviderPublicKey(), s.merchant)
	if err != nil {
		return payout.Config{}, err
	}
	return payout.Config{
		BaseURL: s.URL(), MerchantID: s.opts.MerchantID, APIKey: s.opts.APIKey,
		ProviderPublicKeyFile: pub, MerchantPrivateKeyFile: priv, Padding: s.opts.Padding,
	}, nil
}

// TB is the part of testing.TB the test helpers use (so this package does
// not import testing).
type TB interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// StartTest starts a simulator on 127.0.0.1:0 that tb's cleanup closes,
// writes the client's key files into a temporary directory and returns
// the simulator and a client configuration for it.
func StartTest(tb TB, opts Options) (*Server, payout.Config) {
	tb.Helper()
	s, err := Start("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatalf("payoutsim: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	cfg, err := s.ClientConfig(tb.TempDir())
	if err != nil {
		tb.Fatalf("payoutsim: %v", err)
	}
	return s, cfg
}

// Inject arms a fault (see simfault.Set.Inject).
func (s *Server) Inject(f simfault.Fault) { s.faults.Inject(f) }

// ClearFaults removes every armed fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Faults returns the armed faults and their hits left.
func (s *Server) Faults() []simfault.Fault { return s.faults.Faults() }

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Requests: make(map[string]int, len(s.requests)), FaultsFired: s.faults.Fired(), Payees: len(s.payees)}
	for k, v := range s.requests {
		st.Requests[k] = v
	}
	return st
}

// PayeeCount is how many payees exist: tests check that one request made
// exactly one, whatever faults hit it.
func (s *Server) PayeeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.payees)
}

// Payees returns copies of the payees in creation order.
func (s *Server) Payees() []Payee {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Payee, 0, len(s.payees))
	for _, p := range s.payees {
		out = append(out, clonePayee(p))
	}
	return out
}

// PayeeByMerchantID returns the payee with mercustomid id.
func (s *Server) PayeeByMerchantID(id string) (Payee, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.byMer[id]
	if !ok {
		return Payee{}, false
	}
	return clonePayee(p), true
}

func clonePayee(p *Payee) Payee {
	c := *p
	c.DemandPerfection = append([]string(nil), p.DemandPerfection...)
	if p.AutoApproval != nil {
		a := *p.AutoApproval
		c.AutoApproval = &a
	}
	return c
}

// RequestBodies returns the raw bodies of the create calls received (the
// last 1000), for tests that check what went on the wire.
func (s *Server) RequestBodies() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.bodies))
	for i, b := range s.bodies {
		out[i] = append([]byte(nil), b...)
	}
	return out
}

// ErrNoPayee is returned for an unknown customid.
var ErrNoPayee = errors.New("payoutsim: no such payee")

// SetStatus moves payee customid to st, as the provider's review would.
// Pending, normal, rejected and banned clear the demanded documents.
func (s *Server) SetStatus(customID string, st payout.PayeeStatus) error {
	if !st.Known() {
		return fmt.Errorf("payoutsim: unknown status %q", st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byCustom[customID]
	if p == nil {
		return ErrNoPayee
	}
	p.Status = st
	if st != payout.StatusIncomplete {
		p.DemandPerfection = nil
	}
	return nil
}
