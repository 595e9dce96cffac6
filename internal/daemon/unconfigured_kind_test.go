package daemon_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestUnconfiguredKindAnswersAlike: payees are off in the demo's
// configuration (requests.payees: false), so every payee endpoint answers
// the same 404 not_found saying the kind is not configured. Listing them
// answered 200 with an empty list while creating one answered 404, so a
// till that looked before it created took payees for available.
func TestUnconfiguredKindAnswersAlike(t *testing.T) {
	s := startStack(t)
	type errBody struct {
		Error struct {
			Code    pos.Code `json:"code"`
			Message string   `json:"message"`
		} `json:"error"`
	}
	calls := []struct{ method, path, key, body string }{
		{http.MethodPost, "/v1/payees", "payee-1", `{"merchant_customer_id":"C-1","name_en":"Mohammed","identity":"1012345678","stc_account":"0512345678"}`},
		{http.MethodGet, "/v1/payees", "", ""},
		{http.MethodGet, "/v1/payees?limit=10", "", ""},
		{http.MethodGet, "/v1/payees/RQ-unknown", "", ""},
		{http.MethodPost, "/v1/payees/RQ-unknown/cancel", "", ""},
	}
	var first string
	for _, c := range calls {
		var eb errBody
		resp := call(t, s, c.method, c.path, c.key, c.body, &eb)
		if resp.StatusCode != http.StatusNotFound || eb.Error.Code != pos.ENotFound ||
			!strings.Contains(eb.Error.Message, "not configured") || !strings.Contains(eb.Error.Message, "requests.payees") {
			t.Errorf("%s %s = %d %s %q; want 404 not_found saying payees are not configured (requests.payees)",
				c.method, c.path, resp.StatusCode, eb.Error.Code, eb.Error.Message)
			continue
		}
		if first == "" {
			first = eb.Error.Message
		} else if eb.Error.Message != first {
			t.Errorf("%s %s says %q, %s %s said %q", c.method, c.path, eb.Error.Message, calls[0].method, calls[0].path, first)
		}
	}
	// A configured kind still lists (customers are on by default).
	var list map[string]any
	if resp := call(t, s, http.MethodGet, "/v1/customers", "", "", &list); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/customers = %d %v", resp.StatusCode, list)
	}
}
