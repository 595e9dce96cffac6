package api_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
)

// documentedAmount is the Amount pattern of docs/openapi.yaml.
var documentedAmount = regexp.MustCompile(`^[0-9]+(\.[0-9]{1,3})?$`)

// TestCreateAmountForms: a create's amount as a till might send it. Only
// a JSON string matching the documented pattern is taken; each other form
// is a 400 on field amount saying what is wrong and what is accepted.
// "+1.000" was accepted as 1.000 KWD.
func TestCreateAmountForms(t *testing.T) {
	for _, tc := range []struct{ amount, msg string }{
		{`"+1.000"`, "'+' sign"},
		{`"-0"`, "positive"},
		{`"-1.000"`, "positive"},
		{`" 1.000"`, "white space"},
		{`"1.000\n"`, "white space"},
		{`"1e3"`, "exponent"},
		{`"0x10"`, "hexadecimal"},
		{`"1_000"`, "separator"},
		{`"1,000"`, "','"},
		{`"١٢٣"`, "non-ASCII digit"},
		{`"1."`, "no digit after '.'"},
		{`".5"`, "no digit before '.'"},
		{`"1.0000"`, "more than 3 decimals"},
		{`"1000000000000.001"`, "too large"},
		{`""`, "empty"},
		{`1.250`, "must be a string"},
		{`1`, "must be a string"},
		{`-0`, "must be a string"},
		{`1e3`, "must be a string"},
		{`["1.250"]`, "must be a string"},
	} {
		body := `{"terminal_id":"29708454","amount":` + tc.amount + `}`
		_, err := api.DecodeCreate([]byte(body), "k-1")
		var e *pos.Error
		if !errors.As(err, &e) || e.Code != pos.EInvalid || e.Field != "amount" || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("amount %s: %v; want an invalid amount saying %q", tc.amount, err, tc.msg)
			continue
		}
		if !strings.Contains(e.Message, `"1.250"`) && !strings.Contains(e.Message, "too large") {
			t.Errorf("amount %s: %q does not say what is accepted", tc.amount, e.Message)
		}
	}
	for amount, fils := range map[string]int64{`"1.250"`: 1250, `"1.25"`: 1250, `"1"`: 1000, `"0.001"`: 1, `"01.5"`: 1500} {
		req, err := api.DecodeCreate([]byte(`{"terminal_id":"29708454","amount":`+amount+`}`), "k-1")
		if err != nil || req.Amount.Fils() != fils {
			t.Errorf("amount %s = %v, %v; want %d fils", amount, req.Amount, err, fils)
		}
	}
}

// acceptedAmountIsDocumented fails the fuzz run when DecodeCreate took an
// amount the OpenAPI pattern does not allow.
func acceptedAmountIsDocumented(t *testing.T, body []byte) {
	var v struct {
		Amount json.RawMessage `json:"amount"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return // a duplicate key or the like: the strict decoder's business
	}
	var s string
	if err := json.Unmarshal(v.Amount, &s); err != nil || !documentedAmount.MatchString(s) {
		t.Fatalf("accepted the amount %s, which the documented pattern refuses", v.Amount)
	}
}
