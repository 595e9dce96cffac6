package daemon_test

import (
	"net/http"
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestErrorFieldsNameWhatTheTillSent: an error's field names the header
// or parameter the till sent, the same way for every error about it. A
// reused Idempotency-Key was reported as field "idempotency_key" (a body
// field that does not exist) while a missing or malformed one is
// "Idempotency-Key"; a bad checkout list cursor named no field at all,
// while the request lists' does.
func TestErrorFieldsNameWhatTheTillSent(t *testing.T) {
	s := startStack(t)
	type errorBody struct {
		Error struct {
			Code  pos.Code `json:"code"`
			Field string   `json:"field"`
		} `json:"error"`
	}
	check := func(what string, resp *http.Response, eb errorBody, status int, code pos.Code, field string) {
		t.Helper()
		if resp.StatusCode != status || eb.Error.Code != code || eb.Error.Field != field {
			t.Errorf("%s: %d %s field %q, want %d %s field %q", what, resp.StatusCode, eb.Error.Code, eb.Error.Field, status, code, field)
		}
	}
	var eb errorBody
	if resp := call(t, s, http.MethodPost, "/v1/checkouts", "reused", `{"terminal_id":"29708454","amount":"1.250"}`, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create: %d", resp.StatusCode)
	}
	resp := call(t, s, http.MethodPost, "/v1/checkouts", "reused", `{"terminal_id":"29708454","amount":"2.000"}`, &eb)
	check("checkout key reused", resp, eb, http.StatusConflict, pos.EConflict, "Idempotency-Key")

	cust := `{"name":"Salman","email":"s@example.com","mobile_number":"12345678"}`
	if resp := call(t, s, http.MethodPost, "/v1/customers", "reused", cust, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("customer: %d", resp.StatusCode)
	}
	eb = errorBody{}
	resp = call(t, s, http.MethodPost, "/v1/customers", "reused", `{"name":"Other","email":"o@example.com","mobile_number":"12345678"}`, &eb)
	check("customer key reused", resp, eb, http.StatusConflict, pos.EConflict, "Idempotency-Key")

	eb = errorBody{}
	resp = call(t, s, http.MethodGet, "/v1/checkouts?cursor=nonsense", "", "", &eb)
	check("checkout list cursor", resp, eb, http.StatusBadRequest, pos.EInvalid, "cursor")
	eb = errorBody{}
	resp = call(t, s, http.MethodGet, "/v1/customers?cursor=nonsense", "", "", &eb)
	check("customer list cursor", resp, eb, http.StatusBadRequest, pos.EInvalid, "cursor")
}
