package api

import (
	"context"
	"net/http"

	"github.com/posbridge/posbridge/internal/pos"
)

// Requests is what the API needs for the request kinds other than
// checkouts (customers, installment batches, payees); *engine.Engine has
// it. Options.Requests nil: those endpoints answer not_found.
type Requests interface {
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
}{
	{pos.KindCustomer, "customers"},
	{pos.KindInstallments, "installments"},
	{pos.KindPayee, "payees"},
}

func (s *Server) requestRoutes() []route {
	var out []route
	for _, k := range requestPaths {
		base := "/v1/" + k.path
		out = append(out,
			route{"POST " + base, s.handleSubmitRequest(k.kind, base)},
			route{"GET " + base, s.handleListRequests(k.kind, k.path)},
			route{"GET " + base + "/{id}", s.handleGetRequest(k.kind)},
			route{"POST " + base + "/{id}/cancel", s.handleCancelRequest(k.kind)},
		)
	}
	return out
}

func (s *Server) requests() (Requests, error) {
	if s.opts.Requests == nil {
		return nil, pos.Errorf(pos.ENotFound, "this bridge is not configured for customers, installments or payees")
	}
	return s.opts.Requests, nil
}

func (s *Server) handleSubmitRequest(kind pos.RequestKind, base string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqs, err := s.requests()
		if err != nil {
			s.fail(w, r, err)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if err := checkKey(key); err != nil {
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

func (s *Server) handleGetRequest(kind pos.RequestKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqs, err := s.requests()
		if err == nil {
			var req pos.Request
			if req, err = reqs.GetRequest(r.Context(), kind, r.PathValue("id")); err == nil {
				writeJSON(w, http.StatusOK, req)
				return
			}
		}
		s.fail(w, r, err)
	}
}

func (s *Server) handleCancelRequest(kind pos.RequestKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqs, err := s.requests()
		if err == nil {
			var req pos.Request
			if req, err = reqs.CancelRequest(r.Context(), kind, r.PathValue("id")); err == nil {
				writeJSON(w, http.StatusOK, req)
				return
			}
		}
		s.fail(w, r, err)
	}
}

func (s *Server) handleListRequests(kind pos.RequestKind, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqs, err := s.requests()
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
