// Package hitpaysim is a HitPay simulator: a real HTTP server with the
// create-customer endpoint (POST /v1/customers) posbridge uses. It checks
// the X-BUSINESS-API-KEY header, validates with the bridge's rules
// (hitpay.Violations) and answers in HitPay's shapes: 401
// {"message":"Unauthenticated."}, 422 {"message":"The given data was
// invalid.","errors":{field:[..]}} with HitPay's field names and Laravel's
// wording, 201 with the customer, a random UUID v4 id and RFC 3339 times at
// +08:00. Customers are kept in memory and counted, so a test can check
// that one till request made exactly one customer.
//
// Faults come from package simfault (latency, 5xx, 429, reset before and
// after the body is read, apply-then-drop), armed with Inject or through
// the admin API:
//
//	GET|POST|DELETE /_sim/faults   armed faults (see simfault.HandleAdmin)
//	GET /_sim/customers            every customer created
//	GET /_sim/stats                counters
package hitpaysim

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/httpserve"
	"github.com/posbridge/posbridge/internal/simfault"
)

// DefaultAPIKey is the key the simulator accepts when Options gives none.
// It is a test value, not a HitPay key.
const DefaultAPIKey = "hitpaysim-test-key-5f0c2a9e8b7d4c31"

// FaultKinds are the kinds the simulator implements: simfault's generic
// ones.
var FaultKinds = slices.Clone(simfault.Kinds)

// ParseFault reads a --fault spec (see simfault.Parse).
func ParseFault(spec string) (simfault.Fault, error) { return simfault.Parse(spec, FaultKinds) }

// Options configures a simulator.
type Options struct {
	// APIKey is the only X-BUSINESS-API-KEY accepted. Default DefaultAPIKey.
	APIKey string
	Logger *slog.Logger
	// OnRequest, if set, is told of every create-customer request once the
	// simulator is done with it (outside any lock). It must not block:
	// Close waits for it.
	OnRequest func(Event)
}

// Event is what became of one create-customer request.
type Event struct {
	Method, Path string
	// Faults are the kinds that hit it, sorted.
	Faults []simfault.Kind
	// Status is the HTTP status answered; 0 when there was no answer (a
	// reset, a drop, or a body that could not be read).
	Status int
	// Applied says a customer was created; CustomerID is its id.
	Applied    bool
	CustomerID string
}

// Stats counts what the simulator saw.
type Stats struct {
	Requests    int // create-customer requests, whatever became of them
	Customers   int
	FaultsFired map[simfault.Kind]int
}

// Server is a running simulator.
type Server struct {
	opts   Options
	log    *slog.Logger
	srv    *httpserve.Server
	faults simfault.Set

	// inflight lets Close wait for every handler: none of ours runs after
	// Close returns.
	hmu      sync.Mutex
	hclosed  bool
	inflight sync.WaitGroup

	mu        sync.Mutex
	customers []hitpay.Customer
	requests  int
}

// singapore is HitPay's time zone (UTC+8, no daylight saving).
var singapore = time.FixedZone("SGT", 8*3600)

// Start listens on addr ("" means 127.0.0.1:0, a free loopback port) and
// serves until Close.
func Start(addr string, opts Options) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	s := &Server{opts: opts, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+hitpay.PathCustomers, s.handleCreate)
	simfault.HandleAdmin(mux, &s.faults, FaultKinds)
	mux.HandleFunc("GET /_sim/customers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Customers())
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	s.srv = httpserve.New("hitpay simulator", addr, s.track(mux), s.log)
	if err := s.srv.Open(); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the simulator's root and API base, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return s.srv.URL() }

// ClientConfig returns a client configuration for the simulator.
func (s *Server) ClientConfig() hitpay.Config {
	return hitpay.Config{BaseURL: s.URL(), APIKey: s.opts.APIKey}
}

// Close stops the server: it cuts injected latencies short, lets running
// requests finish for up to half a second (or until ctx is done), then
// drops every connection and waits for its handlers to return. No handler
// (nor OnRequest) runs after Close returns.
func (s *Server) Close(ctx context.Context) error {
	grace, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_ = s.srv.Close(grace) // an error only says the grace ran out and connections were dropped
	s.hmu.Lock()
	s.hclosed = true
	s.hmu.Unlock()
	s.inflight.Wait()
	return nil
}

// track counts running handlers for Close, and refuses to start one after
// Close.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hmu.Lock()
		if s.hclosed {
			s.hmu.Unlock()
			panic(http.ErrAbortHandler)
		}
		s.inflight.Add(1)
		s.hmu.Unlock()
		defer s.inflight.Done()
		h.ServeHTTP(w, r)
	})
}

// Inject arms a fault (see simfault.Set.Inject).
func (s *Server) Inject(f simfault.Fault) { s.faults.Inject(f) }

// ClearFaults removes every armed fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Faults returns the armed faults and the hits each has left.
func (s *Server) Faults() []simfault.Fault { return s.faults.Faults() }

// Customers returns every customer created, in order.
func (s *Server) Customers() []hitpay.Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.customers)
}

// CustomerCount is the number of customers created.
func (s *Server) CustomerCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.customers)
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	st := Stats{Requests: s.requests, Customers: len(s.customers)}
	s.mu.Unlock()
	st.FaultsFired = s.faults.Fired()
	return st
}

// HitPay's answers.
const (
	msgUnauthenticated = "Unauthenticated."
	msgInvalid         = "The given data was invalid."
	msgServerError     = "Server Error"
	msgTooMany         = "Too Many Attempts."
	maxBody            = 1 << 20
)

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	ev := Event{Method: r.Method, Path: r.URL.Path}
	defer func() {
		s.log.Debug("hitpaysim request", "path", ev.Path, "status", ev.Status, "faults", ev.Faults, "applied", ev.Applied)
		if s.opts.OnRequest != nil {
			s.opts.OnRequest(ev)
		}
	}()
	answer := func(status int, v any) {
		ev.Status = status
		writeJSON(w, status, v)
	}
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	faults := s.faults.Take(r.URL.Path)
	for k := range faults {
		ev.Faults = append(ev.Faults, k)
	}
	slices.Sort(ev.Faults)
	has := func(k simfault.Kind) bool { _, ok := faults[k]; return ok }

	if f, ok := faults[simfault.Latency]; ok {
		simfault.Sleep(r.Context(), f.Latency, s.srv.Stopping())
	}
	switch {
	case has(simfault.ResetBeforeRead):
		simfault.Reset(w)
		return
	case has(simfault.Status5xx):
		answer(faults[simfault.Status5xx].Status, map[string]string{"message": msgServerError})
		return
	case has(simfault.Status429):
		w.Header().Set("Retry-After", "1")
		answer(http.StatusTooManyRequests, map[string]string{"message": msgTooMany})
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get(hitpay.APIKeyHeader)), []byte(s.opts.APIKey)) != 1 {
		answer(http.StatusUnauthorized, map[string]string{"message": msgUnauthenticated})
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the client is gone: nothing was applied, nobody to answer
	}
	if has(simfault.ResetAfterRead) {
		simfault.Reset(w)
		return
	}
	if len(raw) > maxBody {
		answer(http.StatusRequestEntityTooLarge, map[string]string{"message": "Request Entity Too Large"})
		return
	}
	var in hitpay.CustomerRequest
	if json.Unmarshal(raw, &in) != nil {
		// Laravel reads a body it cannot parse as no input at all.
		in = hitpay.CustomerRequest{}
	}
	if vs := hitpay.Violations(in); len(vs) > 0 {
		errs := make(map[string][]string, len(vs))
		for _, v := range vs {
			errs[v.WireField] = append(errs[v.WireField], laravelMessage(v))
		}
		answer(http.StatusUnprocessableEntity, map[string]any{"message": msgInvalid, "errors": errs})
		return
	}
	c := s.create(in)
	ev.Applied, ev.CustomerID = true, c.ID
	if has(simfault.ApplyThenDrop) {
		simfault.Drop(w)
		return
	}
	answer(http.StatusCreated, wireCustomer(c))
}

// create stores a customer made from in.
func (s *Server) create(in hitpay.CustomerRequest) hitpay.Customer {
	now := time.Now().In(singapore).Truncate(time.Second)
	c := hitpay.Customer{
		ID: newUUID(), Name: in.Name, Email: in.Email, PhoneNumber: in.PhoneNumber,
		PhoneNumberCountryCode: in.PhoneNumberCountryCode, Remark: in.Remark, BirthDate: in.BirthDate,
		Gender: in.Gender, Address: in.Address, CreatedAt: now, UpdatedAt: now,
	}
	s.mu.Lock()
	s.customers = append(s.customers, c)
	s.mu.Unlock()
	return c
}

// wireCustomer is the 201 body: every field present, null when empty.
func wireCustomer(c hitpay.Customer) map[string]any {
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	return map[string]any{
		"id": c.ID, "name": c.Name, "email": null(c.Email), "phone_number": null(c.PhoneNumber),
		"phone_number_country_code": null(c.PhoneNumberCountryCode), "remark": null(c.Remark),
		"birth_date": null(c.BirthDate), "gender": null(c.Gender),
		"address": map[string]any{
			"city": null(c.Address.City), "state": null(c.Address.State), "street": null(c.Address.Street),
			"postal_code": null(c.Address.PostalCode), "country": null(c.Address.Country),
		},
		"created_at": c.CreatedAt.Format(time.RFC3339),
		"updated_at": c.UpdatedAt.Format(time.RFC3339),
	}
}

// laravelMessage words a violation as HitPay's 422 answers do.
func laravelMessage(v hitpay.Violation) string {
	attr := strings.ReplaceAll(v.WireField, "_", " ")
	switch v.Rule {
	case hitpay.RuleRequired:
		return fmt.Sprintf("The %s field is required.", attr)
	case hitpay.RuleMax:
		return fmt.Sprintf("The %s must not be greater than %d characters.", attr, v.Max)
	case hitpay.RuleEmail:
		return fmt.Sprintf("The %s must be a valid email address.", attr)
	case hitpay.RuleDigits, hitpay.RuleDigitsBetween:
		return fmt.Sprintf("The %s must be between %d and %d digits.", attr, v.Min, v.Max)
	case hitpay.RuleRequiredWith:
		return fmt.Sprintf("The %s field is required when %s is present.", attr, strings.ReplaceAll(v.Other, "_", " "))
	case hitpay.RuleDateFormat:
		return fmt.Sprintf("The %s does not match the format Y-m-d.", attr)
	case hitpay.RuleDate:
		return fmt.Sprintf("The %s is not a valid date.", attr)
	case hitpay.RuleNotFuture:
		return fmt.Sprintf("The %s must be a date before or equal to today.", attr)
	case hitpay.RuleIn, hitpay.RuleCountry:
		return fmt.Sprintf("The selected %s is invalid.", attr)
	}
	return fmt.Sprintf("The %s is invalid.", attr)
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	js, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(js)
}
