package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
)

// storeMessages answers as the engine and the store do: a request of
// another kind is "no <kind> request", an unknown id "no request", and a
// cancel of anything not queued the store's transition conflict.
type storeMessages struct {
	api.Requests
	stored map[string]pos.Request
}

func (storeMessages) Serves(pos.RequestKind) bool { return true }

func (s storeMessages) GetRequest(_ context.Context, kind pos.RequestKind, id string) (pos.Request, error) {
	r, ok := s.stored[id]
	switch {
	case !ok:
		return pos.Request{}, pos.Errorf(pos.ENotFound, "no request %q", id)
	case r.Kind != kind:
		return pos.Request{}, pos.Errorf(pos.ENotFound, "no %s request %q", kind, id)
	}
	return r, nil
}

func (s storeMessages) CancelRequest(ctx context.Context, kind pos.RequestKind, id string) (pos.Request, error) {
	r, err := s.GetRequest(ctx, kind, id)
	if err != nil {
		return r, err
	}
	if r.State != pos.RequestQueued {
		return pos.Request{}, pos.Errorf(pos.EConflict, "request %s is %s; it cannot become %s", id, r.State, pos.RequestCanceled)
	}
	r.State = pos.RequestCanceled
	return r, nil
}

// TestRequestCancelAndNotFoundMessages: the answers to GET and cancel of
// a customer, installment batch or payee request say which kind and why.
// A cancel of a canceled request said "request rq_1 is canceled; it cannot
// become canceled", of a delivered one "is succeeded; it cannot become
// canceled", and an unknown id was "no request" on one path and "no
// installments request" on another.
func TestRequestCancelAndNotFoundMessages(t *testing.T) {
	store := storeMessages{stored: map[string]pos.Request{
		"rq_1": {ID: "rq_1", Kind: pos.KindCustomer, State: pos.RequestCanceled},
		"rq_2": {ID: "rq_2", Kind: pos.KindCustomer, State: pos.RequestSucceeded},
		"rq_3": {ID: "rq_3", Kind: pos.KindInstallments, State: pos.RequestSubmitting},
		"rq_4": {ID: "rq_4", Kind: pos.KindPayee, State: pos.RequestQueued},
	}}
	s, err := api.New(nil, nil, api.Options{Token: "0123456789abcdef", Requests: store})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	do := func(method, path string) (int, errorAnswer) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer 0123456789abcdef")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorAnswer
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{http.MethodPost, "/v1/customers/rq_1/cancel", 409, `customer request rq_1 is already canceled; only a queued request can be canceled`},
		{http.MethodPost, "/v1/customers/rq_2/cancel", 409, `customer request rq_2 is already succeeded; only a queued request can be canceled`},
		{http.MethodPost, "/v1/installments/rq_3/cancel", 409, `installment batch request rq_3 is being sent; only a queued request can be canceled`},
		{http.MethodGet, "/v1/customers/nope", 404, `no customer request "nope"`},
		{http.MethodPost, "/v1/customers/nope/cancel", 404, `no customer request "nope"`},
		{http.MethodGet, "/v1/installments/rq_1", 404, `no installment batch request "rq_1"`},
		{http.MethodGet, "/v1/payees/rq_1", 404, `no payee request "rq_1"`},
		{http.MethodPost, "/v1/payees/rq_1/cancel", 404, `no payee request "rq_1"`},
	} {
		code, eb := do(tc.method, tc.path)
		if code != tc.status || eb.Error.Message != tc.msg {
			t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, code, eb.Error.Message, tc.status, tc.msg)
		}
	}
	if code, eb := do(http.MethodPost, "/v1/payees/rq_4/cancel"); code != http.StatusOK {
		t.Errorf("cancel a queued payee = %d %+v, want 200", code, eb.Error)
	}
	if code, _ := do(http.MethodGet, "/v1/customers/rq_2"); code != http.StatusOK {
		t.Errorf("GET a stored customer request = %d, want 200", code)
	}
}
