package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
)

// storedOnly is a request store holding one payee request, stored while
// payees were configured; payees are off now.
type storedOnly struct{}

func (storedOnly) Serves(pos.RequestKind) bool { return false }
func (storedOnly) SubmitRequest(context.Context, pos.RequestKind, string, []byte) (pos.Request, bool, error) {
	panic("SubmitRequest called for a kind that is not configured")
}
func (storedOnly) GetRequest(_ context.Context, kind pos.RequestKind, id string) (pos.Request, error) {
	if id == "RQ-1" {
		return pos.Request{ID: id, Kind: kind, State: pos.RequestFailed}, nil
	}
	return pos.Request{}, pos.Errorf(pos.ENotFound, "no request %q", id)
}
func (s storedOnly) CancelRequest(ctx context.Context, kind pos.RequestKind, id string) (pos.Request, error) {
	if _, err := s.GetRequest(ctx, kind, id); err != nil {
		return pos.Request{}, err
	}
	return pos.Request{}, pos.Errorf(pos.EConflict, "request %s is failed", id)
}
func (storedOnly) RecentRequests(context.Context, pos.RequestKind, int, string) ([]pos.Request, string, error) {
	panic("RecentRequests called for a kind that is not configured")
}

// TestStoredRequestOfUnconfiguredKind: a payee request stored before
// payees were turned off can still be read by its id; an unknown id, the
// list and a create answer that payees are not configured.
func TestStoredRequestOfUnconfiguredKind(t *testing.T) {
	s, err := api.New(nil, nil, api.Options{Token: "0123456789abcdef", Requests: storedOnly{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	do := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer 0123456789abcdef")
		req.Header.Set("Idempotency-Key", "k-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb.Error.Message
	}
	if code, msg := do(http.MethodGet, "/v1/payees/RQ-1"); code != http.StatusOK {
		t.Errorf("GET a stored payee = %d %q, want 200", code, msg)
	}
	if code, msg := do(http.MethodPost, "/v1/payees/RQ-1/cancel"); code != http.StatusConflict {
		t.Errorf("cancel a stored, failed payee = %d %q, want 409", code, msg)
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/payees/RQ-2"}, {http.MethodPost, "/v1/payees/RQ-2/cancel"},
		{http.MethodGet, "/v1/payees"}, {http.MethodPost, "/v1/payees"},
	} {
		code, msg := do(c.method, c.path)
		if want := "payees are not configured on this bridge (requests.payees in its configuration)"; code != http.StatusNotFound || msg != want {
			t.Errorf("%s %s = %d %q, want 404 %q", c.method, c.path, code, msg, want)
		}
	}
}
