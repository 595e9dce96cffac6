package api

import (
	"context"
	"net/http"

	"github.com/posbridge/posbridge/internal/pos"
)

// Requests is what the API needs for the request kinds other than
// checkouts (customers, installment batches, payees); the daemon gives it
// the engine's methods and the configured kinds. Options.Requests nil:
// those endpoints answer not_found.
type Requests interface {
	// Serves reports whether the bridge is configured for kind. Every
	// endpoint of a kind it does not serve answers the same not_found,
	// listing included: a till that looks before it creates must not
	// take an empty list for a kind it can use.
	Serves(kind pos.RequestKind) bool
	// SubmitRequest checks and durably stores a request of kind (the
	// till's JSON body); existing is true when the idempotency key matched
	// an earlier identical request.
	SubmitRequest(ctx context.Context, kind pos.RequestKind, idempotencyKey string, body []byte) (r pos.Request, existing bool, err error)
	GetRequest(ctx context.Context, kind pos.RequestKind, id string) (pos.Request, error)
	CancelRequest(ctx context.Context, kind pos.RequestKind, id string) (pos.Request, error)
	RecentRequests(ctx context.Context, kind pos.RequestKind, limit int, cursor string) ([]pos.Request, string, error)
}

// requestPaths maps each kind to its collection path under /v1/.
var requestPaths = []struct {
	kind pos.RequestKind
	path string
	// setting is the configuration key that turns the kind on.
	setting string
	// one names one request of the kind, for messages.
	one string
}{
	{pos.KindCustomer, "customers", "requests.customers", "customer"},
	{pos.KindInstallments, "installments", "requests.installments", "installment batch"},
	{pos.KindPayee, "payees", "requests.payees", "payee"},
}

func (s *Server) requestRoutes() []route {
	var out []route
	for _, k := range requestPaths {
		base := "/v1/" + k.path
		out = append(out,
			route{"POST " + base, s.handleSubmitRequest(k.kind, base, k.one)},
			route{"GET " + base, s.handleListRequests(k.kind, k.path)},
			route{"GET " + base + "/{id}", s.handleGetRequest(k.kind, k.one)},
			route{"POST " + base + "/{id}/cancel", s.handleCancelRequest(k.kind, k.one)},
		)
	}
	return out
}

// requests returns what serves kind, or the not_found every endpoint of
// an unconfigured kind answers.
func (s *Server) requests(kind pos.RequestKind) (Requests, error) {
	if s.opts.Requests == nil || !s.opts.Requests.Serves(kind) {
		return nil, notConfigured(kind)
	}
	return s.opts.Requests, nil
}

// notConfigured is the answer for a kind the bridge does not serve: it
// names the configuration key, for the till developer to pass on.
func notConfigured(kind pos.RequestKind) error {
	for _, k := range requestPaths {
		if k.kind == kind {
			return pos.Errorf(pos.ENotFound, "%s are not configured on this bridge (%s in its configuration)", k.path, k.setting)
		}
	}
	return pos.Errorf(pos.ENotFound, "%s requests are not configured on this bridge", kind)
}

// stored returns the requests store for reading or canceling one request
// of kind (one of which is called one) by id. A request stored while its
// kind was configured can still be read after the kind was turned off
// (the engine fails it); an id not found then answers that the kind is
// not configured. Otherwise an id not found, or of another kind, is
// "no <one> request", whichever the store said.
func (s *Server) stored(kind pos.RequestKind, one, id string, find func(Requests) (pos.Request, error)) (pos.Request, error) {
	if s.opts.Requests == nil {
		return pos.Request{}, notConfigured(kind)
	}
	r, err := find(s.opts.Requests)
	if err != nil && pos.ErrorCode(err) == pos.ENotFound {
		if !s.opts.Requests.Serves(kind) {
			return pos.Request{}, notConfigured(kind)
		}
		return pos.Request{}, pos.Errorf(pos.ENotFound, "no %s request %q", one, id)
	}
	return r, err
}

func (s *Server) handleSubmitRequest(kind pos.RequestKind, base, one string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqs, err := s.requests(kind)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if err := checkKey(r.Header.Values("Idempotency-Key"), one); err != nil {
			s.fail(w, r, err)
			return
		}
		limit := s.opts.MaxBodyBytes
		if kind == pos.KindInstallments {
			limit = s.opts.MaxBatchBodyBytes
		}
		body, err := s.readBody(w, r, limit)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		req, existing, err := reqs.SubmitRequest(r.Context(), kind, key, body)
		if err != nil {
			s.fail(w, r, renameField(err, submitFields))
			return
		}
		w.Header().Set("Location", base+"/"+req.ID)
		status := http.StatusAccepted
		if existing {
			status = http.StatusOK
			w.Header().Set("Idempotent-Replayed", "true")
		}
		writeJSON(w, status, req)
	}
}

func (s *Server) handleGetRequest(kind pos.RequestKind, one string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		req, err := s.stored(kind, one, id, func(reqs Requests) (pos.Request, error) {
			return reqs.GetRequest(r.Context(), kind, id)
		})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, req)
	}
}

func (s *Server) handleCancelRequest(kind pos.RequestKind, one string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		req, err := s.stored(kind, one, id, func(reqs Requests) (pos.Request, error) {
			return reqs.CancelRequest(r.Context(), kind, id)
		})
		if err != nil && pos.ErrorCode(err) == pos.EConflict {
			err = s.cannotCancel(r.Context(), kind, one, id, err)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, req)
	}
}

func (s *Server) handleListRequests(kind pos.RequestKind, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqs, err := s.requests(kind)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		limit, err := listLimit(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		list, next, err := reqs.RecentRequests(r.Context(), kind, limit, r.URL.Query().Get("cursor"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if list == nil {
			list = []pos.Request{}
		}
		body := map[string]any{name: list}
		if next != "" {
			body["next_cursor"] = next
		}
		writeJSON(w, http.StatusOK, body)
	}
}

// cannotCancel explains a refused cancel (err, the store's "request X is
// submitting; it cannot become canceled") by the request's state now.
func (s *Server) cannotCancel(ctx context.Context, kind pos.RequestKind, one, id string, err error) error {
	cur, gerr := s.opts.Requests.GetRequest(ctx, kind, id)
	switch {
	case gerr != nil:
		return err
	case cur.State == pos.RequestSubmitting:
		return pos.Errorf(pos.EConflict, "%s request %s is being sent; only a queued request can be canceled", one, id)
	case cur.State.Final():
		return pos.Errorf(pos.EConflict, "%s request %s is already %s; only a queued request can be canceled", one, id, cur.State)
	}
	return err // queued again meanwhile: the store's own answer
}
