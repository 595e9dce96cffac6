package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/api"
)

// TestWrongMethodIs405: a method a path does not have (GET on a cancel,
// DELETE on a collection) is a 405 with an Allow header and the JSON error
// body, not the 404 "no such endpoint" it was: that told a till developer
// the path was wrong when only the method was. An unknown path stays a
// 404, and a request without the token stays a 401 whatever its method.
func TestWrongMethodIs405(t *testing.T) {
	s, err := api.New(nil, nil, api.Options{Token: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	do := func(method, path, token string) (*http.Response, errorAnswer) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorAnswer
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			t.Fatalf("%s %s: body is not the JSON error: %v", method, path, err)
		}
		return resp, eb
	}
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/v1/checkouts", "GET, HEAD, POST"},
		{http.MethodPut, "/v1/checkouts/co_1", "GET, HEAD"},
		{http.MethodGet, "/v1/checkouts/co_1/cancel", "POST"},
		{http.MethodPost, "/v1/status", "GET, HEAD"},
		{http.MethodPost, "/v1/events", "GET, HEAD"},
		{http.MethodOptions, "/v1/terminals", "GET, HEAD"},
		{http.MethodPatch, "/v1/payees", "GET, HEAD, POST"},
		{http.MethodGet, "/v1/customers/rq_1/cancel", "POST"},
	} {
		resp, eb := do(tc.method, tc.path, "0123456789abcdef")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s = %d Allow %q, want 405 Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow)
		}
		if eb.Error.Code != "invalid" || !strings.Contains(eb.Error.Message, tc.method+" is not allowed on "+tc.path) ||
			!strings.Contains(eb.Error.Message, "use "+strings.ReplaceAll(strings.ReplaceAll(tc.allow, ", HEAD", ""), ", ", " or ")) {
			t.Errorf("%s %s: error %+v does not name the method, the path and the allowed methods", tc.method, tc.path, eb.Error)
		}
	}
	for _, path := range []string{"/v1/nope", "/v2/checkouts", "/v1/checkouts/co_1/refund", "/v1/checkouts/"} {
		if resp, eb := do(http.MethodGet, path, "0123456789abcdef"); resp.StatusCode != http.StatusNotFound || eb.Error.Code != "not_found" {
			t.Errorf("GET %s = %d %+v, want 404 not_found", path, resp.StatusCode, eb.Error)
		}
	}
	if resp, eb := do(http.MethodDelete, "/v1/checkouts", ""); resp.StatusCode != http.StatusUnauthorized || eb.Error.Code != "unauthorized" {
		t.Errorf("DELETE without a token = %d %+v, want 401", resp.StatusCode, eb.Error)
	}
}

// errorAnswer is the till API's error body.
type errorAnswer struct {
	Error struct {
		Code    string `json:"code"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"error"`
}
