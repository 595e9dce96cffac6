// Package hesabesim is a faithful Hesabe simulator: a real HTTP server with
// the merchant and payment API endpoints posbridge uses, the same AES hex
// envelopes (answers padded to 32-byte blocks like Hesabe's server),
// expiring tokens, payload validation answered in Hesabe's error shapes, and
// in-memory merchants, terminals, invoices and customers.
//
// Tests inject faults (latency, 5xx, 429, connection resets before and
// after the body is read, malformed hex, bad padding, plain-JSON errors,
// apply-then-drop, token expiry) and mark invoices paid or declined as a
// terminal would. The same server runs standalone as
// `posbridge sim hesabe`, controlled through its /_sim admin API.
package hesabesim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/httpserve"
)

// Merchant is a merchant account the simulator knows.
type Merchant struct {
	Code       string
	Name       string
	ID         int64
	AccessCode string
	SecretKey  string
	IVKey      string
	Username   string
	Password   string
	Terminals  []hesabe.Terminal
}

// Options configures a simulator.
type Options struct {
	Merchants []Merchant
	// TokenLifetime is the access token's life (Hesabe: 900 s).
	TokenLifetime time.Duration
	Logger        *slog.Logger
	// OnInvoice, if set, is called (outside the lock) after an invoice is
	// created or resent: Hesabe's push to the terminal.
	OnInvoice func(hesabe.POSInvoice)
}

// SandboxMerchant is Hesabe's public sandbox merchant with two terminals.
func SandboxMerchant() Merchant {
	return Merchant{
		Code: "842217", Name: "TestHome1", ID: 84,
		AccessCode: "c333729b-d060-4b74-a49d-7686a8353481",
		SecretKey:  "PkW64zMe5NVdrlPVNnjo2Jy9nOb7v1Xg",
		IVKey:      "5NVdrlPVNnjo2Jy9",
		Username:   "test", Password: "Test@1234",
		Terminals: []hesabe.Terminal{
			{ID: 271, TerminalID: "29708454", TerminalName: "A99", PosType: 1, MerchantID: 84, MerchantCode: "842217"},
			{ID: 272, TerminalID: "48515", TerminalName: "A920", PosType: 1, MerchantID: 84, MerchantCode: "842217"},
		},
	}
}

// DefaultOptions is the sandbox merchant with 900 s tokens.
func DefaultOptions() Options {
	return Options{Merchants: []Merchant{SandboxMerchant()}, TokenLifetime: 900 * time.Second}
}

// Stats counts what the simulator saw.
type Stats struct {
	Requests     map[string]int // by path
	Logins       int
	Refreshes    int
	FaultsFired  map[FaultKind]int
	InvoiceCount int
}

// Server is a running simulator.
type Server struct {
	opts    Options
	log     *slog.Logger
	srv     *httpserve.Server
	closing <-chan struct{} // srv.Stopping(): cuts injected latencies short

	mu        sync.Mutex
	merchants map[string]*merchantState // by access code
	byUser    map[string]*merchantState
	tokens    map[string]tokenInfo // access token → info
	refreshes map[string]*merchantState
	// refreshOrder: the refresh tokens issued, oldest first (the last
	// maxRefreshTokens; some used already).
	refreshOrder []string
	faults       []*armedFault
	stats        Stats
	rand         *rand.Rand
	nextID       int64
	nextCust     int64
	nextEMI      int64
	// emiBatches counts the HeStallMent batches accepted, so a test can
	// check that one request made exactly one batch.
	emiBatches int
}

type merchantState struct {
	Merchant
	codec     *crypto.Codec
	invoices  []*hesabe.POSInvoice // in creation order
	byID      map[int64]*hesabe.POSInvoice
	byTx      map[string]*hesabe.POSInvoice
	customers []hesabe.Customer
	emi       int
}

type tokenInfo struct {
	m       *merchantState
	expires time.Time
}

// New returns a simulator that is not yet listening.
func New(opts Options) (*Server, error) { return newServer("", opts) }

// newServer returns a simulator that will listen on addr when opened.
func newServer(addr string, opts Options) (*Server, error) {
	if len(opts.Merchants) == 0 {
		opts.Merchants = []Merchant{SandboxMerchant()}
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 900 * time.Second
	}
	s := &Server{
		opts: opts, log: opts.Logger,
		merchants: map[string]*merchantState{}, byUser: map[string]*merchantState{},
		tokens: map[string]tokenInfo{}, refreshes: map[string]*merchantState{},
		stats:  Stats{Requests: map[string]int{}, FaultsFired: map[FaultKind]int{}},
		rand:   rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)),
		nextID: 267, nextCust: 4078, nextEMI: 1000,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, m := range opts.Merchants {
		codec, err := crypto.NewCodec([]byte(m.SecretKey), []byte(m.IVKey))
		if err != nil {
			return nil, fmt.Errorf("hesabesim: merchant %s: %w", m.Code, err)
		}
		ms := &merchantState{Merchant: m, codec: codec, byID: map[int64]*hesabe.POSInvoice{}, byTx: map[string]*hesabe.POSInvoice{}}
		s.merchants[m.AccessCode] = ms
		s.byUser[m.Username] = ms
	}
	s.srv = httpserve.New("hesabe simulator", addr, s.routes(), s.log)
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

// URL is the simulator's root, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.URL() }

// APIURL is the API base for both the merchant and payment APIs.
func (s *Server) APIURL() string { return s.URL() + "/api" }

// ClientConfig returns a client configuration for merchant i (0: the first).
func (s *Server) ClientConfig(i int) hesabe.Config {
	m := s.opts.Merchants[i]
	return hesabe.Config{
		MerchantURL: s.APIURL(), PaymentURL: s.APIURL(), MerchantCode: m.Code,
		AccessCode: m.AccessCode, SecretKey: m.SecretKey, IVKey: m.IVKey,
		Username: m.Username, Password: m.Password,
	}
}

// Close stops the server: it lets running requests finish for up to half a
// second (or ctx), then drops every connection. Connections a client opened
// but never used would otherwise hold a graceful shutdown for 5 s.
func (s *Server) Close(ctx context.Context) error {
	grace, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_ = s.srv.Close(grace) // an error only says the grace ran out and connections were dropped
	return nil
}

// Handler returns the simulator's HTTP handler (for embedding in another
// server or httptest).
func (s *Server) Handler() http.Handler { return s.srv.Handler() }

// ExpireTokens makes every access token invalid now; refresh tokens stay.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Requests: map[string]int{}, FaultsFired: map[FaultKind]int{},
		Logins: s.stats.Logins, Refreshes: s.stats.Refreshes}
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	for k, v := range s.stats.FaultsFired {
		st.FaultsFired[k] = v
	}
	for _, m := range s.merchants {
		st.InvoiceCount += len(m.invoices)
	}
	return st
}

// Invoices returns every POS invoice of every merchant, by id.
func (s *Server) Invoices() []hesabe.POSInvoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hesabe.POSInvoice
	for _, m := range s.merchants {
		for _, inv := range m.invoices {
			out = append(out, *inv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// InvoicesByNumber returns every invoice carrying invoice_number n. More
// than one means a duplicate charge risk: tests assert exactly one.
func (s *Server) InvoicesByNumber(n string) []hesabe.POSInvoice {
	var out []hesabe.POSInvoice
	for _, inv := range s.Invoices() {
		if inv.InvoiceNumber == n {
			out = append(out, inv)
		}
	}
	return out
}

// Customers returns the customers of every merchant.
func (s *Server) Customers() []hesabe.Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []hesabe.Customer
	for _, m := range s.merchants {
		out = append(out, m.customers...)
	}
	return out
}

// EMIInvoiceCount is the number of installment invoices created.
func (s *Server) EMIInvoiceCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.merchants {
		n += m.emi
	}
	return n
}

// ErrNoInvoice is returned for an unknown invoice id or transaction id.
var ErrNoInvoice = errors.New("hesabesim: no such invoice")

// SetInvoiceStatus sets the status of invoice id, as the terminal's payment
// would at the real gateway.
func (s *Server) SetInvoiceStatus(id int64, st hesabe.InvoiceStatus) error {
	return s.setStatus(func(m *merchantState) *hesabe.POSInvoice { return m.byID[id] }, st)
}

// SetInvoiceStatusByTransaction is SetInvoiceStatus by transaction_id.
func (s *Server) SetInvoiceStatusByTransaction(txID string, st hesabe.InvoiceStatus) error {
	return s.setStatus(func(m *merchantState) *hesabe.POSInvoice { return m.byTx[txID] }, st)
}

func (s *Server) setStatus(find func(*merchantState) *hesabe.POSInvoice, st hesabe.InvoiceStatus) error {
	if !st.Known() {
		return fmt.Errorf("hesabesim: unknown status %d", st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.merchants {
		if inv := find(m); inv != nil {
			inv.Status = st
			inv.UpdatedAt = kuwaitTime(time.Now())
			return nil
		}
	}
	return ErrNoInvoice
}

// kuwaitTime formats t as Hesabe does ("2025-11-12 11:25:27", Kuwait time).
func kuwaitTime(t time.Time) string {
	return t.In(time.FixedZone("AST", 3*3600)).Format(time.DateTime)
}
