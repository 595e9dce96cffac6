package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
)

// createsRecorded is an engine and a request store that count what
// reaches them; the tests here expect the API to refuse before.
type createsRecorded struct {
	api.Engine
	api.Requests
	calls int
}

func (c *createsRecorded) Create(_ context.Context, req pos.CheckoutRequest) (pos.Checkout, bool, error) {
	c.calls++
	return pos.Checkout{ID: "co_1", IdempotencyKey: req.IdempotencyKey}, false, nil
}

func (*createsRecorded) Serves(pos.RequestKind) bool { return true }

func (c *createsRecorded) SubmitRequest(_ context.Context, kind pos.RequestKind, key string, _ []byte) (pos.Request, bool, error) {
	c.calls++
	return pos.Request{ID: "rq_1", Kind: kind, IdempotencyKey: key}, false, nil
}

func recordingServer(t *testing.T) (*createsRecorded, func(path string, keys []string, body string) (int, errorAnswer)) {
	t.Helper()
	rec := &createsRecorded{}
	s, err := api.New(rec, nil, api.Options{Token: "0123456789abcdef", Requests: rec})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return rec, func(path string, keys []string, body string) (int, errorAnswer) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer 0123456789abcdef")
		req.Header.Set("Content-Type", "application/json")
		for _, k := range keys {
			req.Header.Add("Idempotency-Key", k)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorAnswer
		_ = json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
}

// creates are a valid body for each create endpoint.
var creates = []struct{ path, body string }{
	{"/v1/checkouts", `{"terminal_id":"29708454","amount":"1.250"}`},
	{"/v1/customers", `{"name":"Salman","email":"s@example.com","mobile_number":"12345678"}`},
	{"/v1/installments", `{"invoices":[]}`},
	{"/v1/payees", `{"merchant_customer_id":"C-1"}`},
}

// TestIdempotencyKeyGivenTwice: a create with two Idempotency-Key headers
// (a till library adding its own, a proxy) was stored under the first
// one, silently: a retry carrying the other key in front would be a
// second payment. It is a 400 on Idempotency-Key, and nothing is stored.
func TestIdempotencyKeyGivenTwice(t *testing.T) {
	rec, post := recordingServer(t)
	for _, c := range creates {
		for _, keys := range [][]string{{"k-1", "k-2"}, {"k-1", "k-1"}} {
			code, eb := post(c.path, keys, c.body)
			if code != http.StatusBadRequest || eb.Error.Code != "invalid" || eb.Error.Field != "Idempotency-Key" ||
				!strings.Contains(eb.Error.Message, "more than once") {
				t.Errorf("POST %s with keys %v = %d %+v; want 400 invalid Idempotency-Key given more than once", c.path, keys, code, eb.Error)
			}
		}
	}
	if rec.calls != 0 {
		t.Fatalf("%d creates reached the engine", rec.calls)
	}
	// One key is taken as before.
	if code, eb := post("/v1/checkouts", []string{"k-1"}, creates[0].body); code != http.StatusAccepted {
		t.Fatalf("one key: %d %+v", code, eb.Error)
	}
}

// TestMissingIdempotencyKeyNamesTheKind: a customer, batch or payee
// without a key was told it needs "a unique key per payment attempt";
// the message names what the key is for.
func TestMissingIdempotencyKeyNamesTheKind(t *testing.T) {
	_, post := recordingServer(t)
	for i, want := range []string{"payment attempt", "customer", "installment batch", "payee"} {
		code, eb := post(creates[i].path, nil, creates[i].body)
		if code != http.StatusBadRequest || eb.Error.Field != "Idempotency-Key" || !strings.Contains(eb.Error.Message, "per "+want) {
			t.Errorf("POST %s without a key = %d %+v; want a message about a key per %s", creates[i].path, code, eb.Error, want)
		}
		if i > 0 && strings.Contains(eb.Error.Message, "payment") {
			t.Errorf("POST %s without a key speaks of a payment: %q", creates[i].path, eb.Error.Message)
		}
	}
}

// TestNullBodyIsNotAnObject: a body of JSON null was decoded as an empty
// object, so the till heard "terminal_id is required" (or "name is
// required") for a body that is not an object at all, unlike [] or "x".
func TestNullBodyIsNotAnObject(t *testing.T) {
	rec, post := recordingServer(t)
	for _, c := range creates {
		for _, body := range []string{`null`, " null\n"} {
			code, eb := post(c.path, []string{"k-null"}, body)
			if code != http.StatusBadRequest || eb.Error.Field != "body" || !strings.Contains(eb.Error.Message, "must be a JSON object") {
				t.Errorf("POST %s with body %q = %d %+v; want 400 on body: must be a JSON object", c.path, body, code, eb.Error)
			}
		}
	}
	if rec.calls != 0 {
		t.Fatalf("%d creates reached the engine", rec.calls)
	}
}

// TestIdempotencyKeyIsDocumentedPattern: both Idempotency-Key parameters
// of docs/openapi.yaml give the pattern the API checks. The spec said
// "1-128 printable ASCII characters", and a key with a space (printable
// ASCII) was refused.
func TestIdempotencyKeyIsDocumentedPattern(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				Name   string `yaml:"name"`
				Schema struct {
					Pattern string `yaml:"pattern"`
				} `yaml:"schema"`
			} `yaml:"parameters"`
		} `yaml:"paths"`
		Components struct {
			Parameters map[string]struct {
				Name   string `yaml:"name"`
				Schema struct {
					Pattern string `yaml:"pattern"`
				} `yaml:"schema"`
			} `yaml:"parameters"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	patterns := map[string]string{"components": spec.Components.Parameters["IdempotencyKey"].Schema.Pattern}
	for _, p := range spec.Paths["/v1/checkouts"]["post"].Parameters {
		if p.Name == "Idempotency-Key" {
			patterns["createCheckout"] = p.Schema.Pattern
		}
	}
	_, post := recordingServer(t)
	for where, pattern := range patterns {
		if pattern == "" {
			t.Errorf("%s: the Idempotency-Key parameter has no pattern", where)
			continue
		}
		re := regexp.MustCompile(pattern)
		for _, key := range []string{"k-1", "a b", "k\t1", "ключ", "~!@#$%^&*()_+{}|:<>?", strings.Repeat("k", 128), strings.Repeat("k", 129)} {
			for _, c := range creates[:2] {
				code, eb := post(c.path, []string{key}, c.body)
				if accepted := code < 300; accepted != re.MatchString(key) {
					t.Errorf("%s: key %q matches %s: %v, but POST %s answered %d %+v", where, key, pattern, re.MatchString(key), c.path, code, eb.Error)
				}
			}
		}
	}
}
