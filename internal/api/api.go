// Package api is the till API: a small HTTP/JSON server on loopback that
// till software uses to create checkouts, follow them (long poll or
// Server-Sent Events), cancel them, and see the terminals. Every request
// carries a bearer token (compared in constant time). Errors are JSON with
// a stable machine code, the field concerned and a human message.
//
// The API is described by docs/openapi.yaml; a test keeps the two in sync.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/httpserve"
	"github.com/posbridge/posbridge/internal/pos"
)

// Engine is what the API needs from the checkout engine.
type Engine interface {
	// Create validates and durably stores a checkout; existing is true when
	// the idempotency key matched an earlier identical request.
	Create(ctx context.Context, req pos.CheckoutRequest) (c pos.Checkout, existing bool, err error)
	Get(ctx context.Context, id string) (pos.Checkout, error)
	// Wait returns the checkout once it changed after since (UpdatedAt),
	// or when ctx ends (then the current checkout and no error).
	Wait(ctx context.Context, id string, since time.Time) (pos.Checkout, error)
	Cancel(ctx context.Context, id string) (pos.Checkout, error)
	// Recent lists checkouts newest first, starting after the cursor.
	Recent(ctx context.Context, limit int, cursor string) (list []pos.Checkout, next string, err error)
	// Subscribe delivers every checkout change until cancel is called.
	Subscribe() (events <-chan pos.Checkout, cancel func())
	// Status is the bridge's state as the till sees it.
	Status() EngineStatus
}

// EngineStatus tells a till whether payments go straight to the gateway or
// are being stored, and how much is stored.
type EngineStatus struct {
	// Accepting: a create can be stored. False while the bridge's disk is
	// full (it recovers once space is freed), and once the store cannot
	// take checkouts until the bridge is restarted (its accept log
	// failed); Reason says which.
	Accepting     bool      `json:"accepting"`
	Reason        string    `json:"reason,omitempty"`
	Online        bool      `json:"online"`
	LastGatewayOK time.Time `json:"last_gateway_ok,omitzero"`
	Queued        int       `json:"queued"`
	QueuedAmount  pos.Money `json:"queued_amount"`
	OldestQueued  time.Time `json:"oldest_queued,omitzero"`
	// CountsAsOf is set when the store could not be read (a full disk):
	// Queued, QueuedAmount and OldestQueued are the last ones read, at
	// that time.
	CountsAsOf time.Time `json:"counts_as_of,omitzero"`
}

// Terminals is what the API needs from the terminal registry.
type Terminals interface {
	List() []TerminalInfo
}

// TerminalInfo is a terminal as the till sees it.
type TerminalInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Model     string    `json:"model,omitempty"`
	Link      string    `json:"link"` // serial, mqtt or none
	Connected bool      `json:"connected"`
	Busy      bool      `json:"busy"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
}

// Options configures the server.
type Options struct {
	// Addr to listen on; default 127.0.0.1:8470. Use port 0 in tests.
	Addr string
	// Token is the bearer token tills must send. Required.
	Token string
	// MaxBodyBytes bounds a request body (default 16 KiB), but for
	// installment batches.
	MaxBodyBytes int64
	// MaxBatchBodyBytes bounds an installment batch's body (default 1
	// MiB: a batch holds up to 100 invoices, each a few hundred bytes).
	MaxBatchBodyBytes int64
	// MaxWait bounds a long poll (default 60 s).
	MaxWait time.Duration
	// Requests serves customers, installment batches and payees (nil:
	// those endpoints answer not_found).
	Requests Requests
	Logger   *slog.Logger
}

// Server is the till API server. It owns its listener: Open fails at once
// when the port is busy.
type Server struct {
	*httpserve.Server
	opts   Options
	engine Engine
	terms  Terminals
	log    *slog.Logger
}

// New returns a server; call Open to listen.
func New(engine Engine, terms Terminals, opts Options) (*Server, error) {
	if opts.Token == "" {
		return nil, errors.New("api: a token is required (api.token)")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:8470"
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 16 << 10
	}
	if opts.MaxBatchBodyBytes <= 0 {
		opts.MaxBatchBodyBytes = 1 << 20
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 60 * time.Second
	}
	s := &Server{opts: opts, engine: engine, terms: terms, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.Server = httpserve.New("till API", opts.Addr, s.Handler(), s.log)
	return s, nil
}

// Routes lists the API's routes ("METHOD /path"); docs/openapi.yaml must
// describe exactly these (a test checks).
func Routes() []string {
	var out []string
	for _, r := range (&Server{}).routes() {
		out = append(out, r.pattern)
	}
	return out
}

type route struct {
	pattern string
	handler http.HandlerFunc
}

func (s *Server) routes() []route {
	return append([]route{
		{"POST /v1/checkouts", s.handleCreate},
		{"GET /v1/checkouts", s.handleList},
		{"GET /v1/checkouts/{id}", s.handleGet},
		{"POST /v1/checkouts/{id}/cancel", s.handleCancel},
		{"GET /v1/terminals", s.handleTerminals},
		{"GET /v1/status", s.handleStatus},
		{"GET /v1/events", s.handleEvents},
	}, s.requestRoutes()...)
}

// Handler returns the API's routes behind the token check.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, r := range s.routes() {
		mux.HandleFunc(r.pattern, r.handler)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowedMethods(mux, r); len(allow) > 0 {
			// The path is the API's, the method is not: a 405 that says
			// which methods it has, not a 404 that the path is wrong.
			w.Header().Set("Allow", strings.Join(allow, ", "))
			use := slices.DeleteFunc(slices.Clone(allow), func(m string) bool { return m == http.MethodHead })
			msg := r.Method + " is not allowed on " + r.URL.Path + "; use " + strings.Join(use, " or ")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorDetail{Code: pos.EInvalid, Message: msg}})
			return
		}
		writeError(w, r, &pos.Error{Code: pos.ENotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return s.auth(mux)
}

// allowedMethods lists the methods mux serves r's path with (HEAD where
// GET is), sorted; none for a path the API does not have.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); strings.HasPrefix(pattern, m+" ") {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
	}
	slices.Sort(allow)
	return allow
}

// auth checks the bearer token in constant time.
func (s *Server) auth(next http.Handler) http.Handler {
	want := []byte(s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := httpserve.BearerToken(r)
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="posbridge"`)
			writeError(w, r, &pos.Error{Code: pos.EUnauthorized, Message: "missing or wrong API token (Authorization: Bearer <token>)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
