package api_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
)

func TestDecodeCreate(t *testing.T) {
	req, err := api.DecodeCreate([]byte(`{"terminal_id":"29708454","amount":"1.250","till_ref":"R-7","description":"فاتورة","customer":{"name":"Salman","email":"s@example.com","phone":"+96512345678"},"deadline_seconds":120}`), "k-1")
	if err != nil {
		t.Fatal(err)
	}
	if req.Amount != 1250 || req.TerminalID != "29708454" || req.Deadline != 2*time.Minute || req.Customer.Name != "Salman" || req.IdempotencyKey != "k-1" {
		t.Fatalf("req = %+v", req)
	}
}

func TestDecodeCreateErrors(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name, body, key, field, msg string
	}{
		{"no key", `{"terminal_id":"1","amount":"1.000"}`, "", "Idempotency-Key", "required"},
		{"key with space", `{"terminal_id":"1","amount":"1.000"}`, "a b", "Idempotency-Key", "printable"},
		{"empty body", ``, "k", "body", "empty"},
		{"not json", `amount=1`, "k", "body", "not valid JSON"},
		{"array", `[]`, "k", "body", "JSON object"},
		{"truncated", `{"terminal_id":"1"`, "k", "body", "truncated"},
		{"trailing", `{"terminal_id":"1","amount":"1.000"} {}`, "k", "body", "after the JSON"},
		{"unknown field", `{"terminal_id":"1","amount":"1.000","tip":"1"}`, "k", "tip", "not a known field"},
		{"missing terminal", `{"amount":"1.000"}`, "k", "terminal_id", "required"},
		{"terminal number", `{"terminal_id":29708454,"amount":"1.000"}`, "k", "terminal_id", "must be a string"},
		{"missing amount", `{"terminal_id":"1"}`, "k", "amount", "required"},
		{"amount number", `{"terminal_id":"1","amount":1.25}`, "k", "amount", "must be a string"},
		{"amount negative", `{"terminal_id":"1","amount":"-1.000"}`, "k", "amount", "positive"},
		{"amount zero", `{"terminal_id":"1","amount":"0.000"}`, "k", "amount", "positive"},
		{"amount over-precise", `{"terminal_id":"1","amount":"1.2345"}`, "k", "amount", "more than 3 decimals"},
		{"amount garbage", `{"terminal_id":"1","amount":"1,5"}`, "k", "amount", "decimal"},
		{"description long", `{"terminal_id":"1","amount":"1.000","description":"` + long + `"}`, "k", "description", "longer"},
		{"till ref control", `{"terminal_id":"1","amount":"1.000","till_ref":"a\u0007"}`, "k", "till_ref", "control"},
		{"customer string", `{"terminal_id":"1","amount":"1.000","customer":"bob"}`, "k", "customer", "object"},
		{"bad email", `{"terminal_id":"1","amount":"1.000","customer":{"email":"nope"}}`, "k", "customer.email", "email"},
		{"bad phone", `{"terminal_id":"1","amount":"1.000","customer":{"phone":"12-34"}}`, "k", "customer.phone", "digits"},
		{"deadline zero", `{"terminal_id":"1","amount":"1.000","deadline_seconds":0}`, "k", "deadline_seconds", "from 1"},
		{"deadline string", `{"terminal_id":"1","amount":"1.000","deadline_seconds":"60"}`, "k", "deadline_seconds", "integer"},
		{"deadline fraction", `{"terminal_id":"1","amount":"1.000","deadline_seconds":1.5}`, "k", "deadline_seconds", "integer"},
		// 2^55+60 seconds: times time.Second it wraps around to exactly 60 s.
		{"deadline wraps", `{"terminal_id":"1","amount":"1.000","deadline_seconds":36028797018963988}`, "k", "deadline_seconds", "from 1"},
		{"deadline max int64", `{"terminal_id":"1","amount":"1.000","deadline_seconds":9223372036854775807}`, "k", "deadline_seconds", "from 1"},
		{"amount too large", `{"terminal_id":"1","amount":"99999999999999.000"}`, "k", "amount", "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := api.DecodeCreate([]byte(tc.body), tc.key)
			var e *pos.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v", err)
			}
			if e.Code != pos.EInvalid || e.Field != tc.field || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %s/%s %q; want field %s with %q", e.Code, e.Field, e.Message, tc.field, tc.msg)
			}
		})
	}
}

func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"terminal_id":"29708454","amount":"1.250"}`,
		`{"terminal_id":"1","amount":"0.001","customer":{"name":"أحمد","email":"a@b.co","phone":"+965"},"deadline_seconds":300}`,
		`{"amount":1e400}`, `[`, `{"terminal_id":null}`, `{"customer":{"email":"<a@b>"}}`,
		`{"terminal_id":"1","amount":"+1.000"}`, `{"terminal_id":"1","amount":"-0"}`, `{"terminal_id":"1","amount":" 1"}`,
		`{"terminal_id":"1","amount":"0x10"}`, `{"terminal_id":"1","amount":"1_000"}`, `{"terminal_id":"1","amount":"١٢٣"}`,
		`{"terminal_id":"1","amount":"1."}`, `{"terminal_id":"1","amount":".5"}`, `{"terminal_id":"1","amount":"007.010"}`,
		`{"terminal_id":"1","amount":"\u0031.5"}`, `{"terminal_id":"1","amount":1.5}`, `{"terminal_id":"1","amount":""}`,
	} {
		f.Add([]byte(s), "key-1")
	}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		req, err := api.DecodeCreate(body, key)
		if err != nil {
			var e *pos.Error
			if !errors.As(err, &e) || e.Code != pos.EInvalid || e.Field == "" || e.Message == "" {
				t.Fatalf("error without a field: %#v", err)
			}
			return
		}
		if req.Amount <= 0 || req.TerminalID == "" || req.IdempotencyKey == "" {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		acceptedAmountIsDocumented(t, body)
	})
}
