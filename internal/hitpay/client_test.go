package hitpay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/hitpay/hitpaysim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/simfault"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func sampleRequest() hitpay.CustomerRequest {
	return hitpay.CustomerRequest{
		Name: arabicName, Email: "ahmed@example.com", PhoneNumber: "91234567", PhoneNumberCountryCode: "65",
		Remark: "VIP", BirthDate: "1990-05-17", Gender: "male",
		Address: hitpay.Address{City: "Singapore", Street: "1 Raffles Place", PostalCode: "048616", Country: "SG"},
	}
}

func TestCreateCustomer(t *testing.T) {
	s, events := startSim(t, hitpaysim.Options{})
	c := newClient(t, s, 5*time.Second)
	before := time.Now().Add(-time.Second)
	got, err := c.CreateCustomer(context.Background(), sampleRequest())
	if err != nil {
		t.Fatal(err)
	}
	if !uuidV4.MatchString(got.ID) {
		t.Errorf("id %q is not a UUID v4", got.ID)
	}
	want := sampleRequest()
	if got.Name != want.Name || got.Email != want.Email || got.PhoneNumber != want.PhoneNumber ||
		got.PhoneNumberCountryCode != want.PhoneNumberCountryCode || got.Remark != want.Remark ||
		got.BirthDate != want.BirthDate || got.Gender != want.Gender || got.Address != want.Address {
		t.Errorf("customer %+v does not echo the request %+v", got, want)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("created_at %v, updated_at %v", got.CreatedAt, got.UpdatedAt)
	}
	if _, off := got.CreatedAt.Zone(); off != 8*3600 {
		t.Errorf("created_at offset %ds, want +08:00 as HitPay sends", off)
	}
	if ev := waitEvent(t, events); !ev.Applied || ev.Status != 201 || ev.CustomerID != got.ID {
		t.Errorf("event %+v", ev)
	}
	custs := s.Customers()
	if len(custs) != 1 || custs[0].ID != got.ID || s.CustomerCount() != 1 {
		t.Fatalf("simulator holds %+v", custs)
	}
}

// TestWireFormat checks what goes on the wire: the path, the headers
// (Expect: 100-continue, the key) and HitPay's field names, empty
// optional fields left out.
func TestWireFormat(t *testing.T) {
	type seen struct {
		method, path, key, expect, ctype string
		body                             string
	}
	got := make(chan seen, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("X-BUSINESS-API-KEY"), r.Header.Get("Expect"), r.Header.Get("Content-Type"), string(b)}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"9741164c-06a1-4d6a-8d5a-5e8a4c5b1f0e","name":"x"}`)
	}))
	defer srv.Close()
	c, err := hitpay.New(hitpay.Config{BaseURL: srv.URL + "/", APIKey: "k-123", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.CreateCustomer(ctx, hitpay.CustomerRequest{Name: "Ahmed"}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.method != "POST" || s.path != "/v1/customers" || s.key != "k-123" || s.expect != "100-continue" ||
		s.ctype != "application/json" || s.body != `{"name":"Ahmed"}` {
		t.Fatalf("minimal request on the wire: %+v", s)
	}
	if _, err := c.CreateCustomer(ctx, sampleRequest()); err != nil {
		t.Fatal(err)
	}
	want := `{"name":"أحمد المنصوري","email":"ahmed@example.com","phone_number":"91234567","phone_number_country_code":"65",` +
		`"remark":"VIP","birth_date":"1990-05-17","gender":"male",` +
		`"address":{"city":"Singapore","street":"1 Raffles Place","postal_code":"048616","country":"SG"}}`
	if s := <-got; s.body != want {
		t.Fatalf("full request body\n got %s\nwant %s", s.body, want)
	}
}

// TestTolerantDecode feeds the client answers shaped unlike the simulator's.
func TestTolerantDecode(t *testing.T) {
	const id = "9741164c-06a1-4d6a-8d5a-5e8a4c5b1f0e"
	for _, tc := range []struct {
		name, body string
		status     int
		check      func(*hitpay.Customer) bool
		class      pos.ErrorClass // for failures
	}{
		{name: "ExtraFieldsNumbersNulls", status: 201,
			body: `{"id":"` + id + `","business_id":"b1","name":"Ahmed","email":null,"phone_number":91234567,` +
				`"phone_number_country_code":65,"gender":null,"address":null,"created_at":"2025-11-12T11:25:27+08:00",` +
				`"updated_at":"2025-11-12T11:25:27.123456+08:00","meta":{"a":[1,2]}}`,
			check: func(c *hitpay.Customer) bool {
				return c.ID == id && c.Name == "Ahmed" && c.Email == "" && c.PhoneNumber == "91234567" &&
					c.PhoneNumberCountryCode == "65" && c.CreatedAt.Equal(time.Date(2025, 11, 12, 3, 25, 27, 0, time.UTC)) &&
					c.UpdatedAt.Nanosecond() == 123456000
			}},
		{name: "BadTimesAndAddress", status: 201,
			body: `{"id":"` + id + `","name":"Ahmed","address":"somewhere","created_at":"2025-11-12 11:25:27","updated_at":17}`,
			check: func(c *hitpay.Customer) bool {
				return c.ID == id && c.CreatedAt.IsZero() && c.UpdatedAt.IsZero() && c.Address == hitpay.Address{}
			}},
		{name: "Enveloped", status: 200,
			body:  `{"data":{"id":"` + id + `","name":"Ahmed","address":{"country":"SG","city":7}}}`,
			check: func(c *hitpay.Customer) bool { return c.ID == id && c.Address.Country == "SG" && c.Address.City == "7" }},
		{name: "NoID", status: 201, body: `{"name":"Ahmed"}`, class: pos.ClassAmbiguous},
		{name: "NotJSON", status: 201, body: `<html>created</html>`, class: pos.ClassAmbiguous},
		{name: "Empty", status: 201, body: ``, class: pos.ClassAmbiguous},
		{name: "ErrorsAsStrings", status: 422, body: `{"message":"Bad","errors":{"email":"bad email","name":["a","b"],"x":null}}`, class: pos.ClassPermanent},
		{name: "ProxyHTML500", status: 500, body: `<html>oops</html>`, class: pos.ClassRetryable},
		{name: "ProxyHTML502", status: 502, body: `<html>bad gateway</html>`, class: pos.ClassAmbiguous},
		{name: "Forbidden", status: 403, body: `{"message":"This action is unauthorized."}`, class: pos.ClassPermanent},
		{name: "RequestTimeout", status: 408, body: ``, class: pos.ClassRetryable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, err := hitpay.New(hitpay.Config{BaseURL: srv.URL, APIKey: "k", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			cust, err := c.CreateCustomer(context.Background(), hitpay.CustomerRequest{Name: "Ahmed"})
			if tc.check != nil {
				if err != nil || !tc.check(cust) {
					t.Fatalf("got %+v, %v", cust, err)
				}
				return
			}
			var he *hitpay.Error
			if !errors.As(err, &he) || he.ErrorClass() != tc.class || he.Status != tc.status {
				t.Fatalf("got %v, want a %s *Error with status %d", err, tc.class, tc.status)
			}
			if tc.name == "ErrorsAsStrings" && (len(he.Fields["email"]) != 1 || len(he.Fields["name"]) != 2 || he.TillField() != "email") {
				t.Fatalf("fields %v", he.Fields)
			}
		})
	}
}

// TestFaults injects each fault once and checks the error's class and
// whether the simulator applied the request; then a retry makes exactly
// one customer.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   string
		timeout time.Duration
		class   pos.ErrorClass // ClassUnknown: success
		applied bool
		status  int
	}{
		{name: "Latency", fault: "latency=50ms", timeout: 5 * time.Second, applied: true},
		// The server sleeps before asking for the body; the client gives
		// up first, having sent none of it.
		{name: "LatencyPastTimeout", fault: "latency=1s", timeout: 200 * time.Millisecond, class: pos.ClassRetryable},
		{name: "5xx", fault: "5xx", class: pos.ClassRetryable, status: 500},
		{name: "503", fault: "5xx=503", class: pos.ClassRetryable, status: 503},
		// A proxy's 502/504 may hide a created customer.
		{name: "502", fault: "5xx=502", class: pos.ClassAmbiguous, status: 502},
		{name: "504", fault: "5xx=504", class: pos.ClassAmbiguous, status: 504},
		{name: "429", fault: "429", class: pos.ClassRetryable, status: 429},
		{name: "ResetBeforeRead", fault: "reset-before-read", class: pos.ClassRetryable},
		{name: "ResetAfterRead", fault: "reset-after-read", class: pos.ClassAmbiguous},
		{name: "ApplyThenDrop", fault: "apply-then-drop", class: pos.ClassAmbiguous, applied: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, events := startSim(t, hitpaysim.Options{})
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			c := newClient(t, s, timeout)
			f, err := hitpaysim.ParseFault(tc.fault + ":1")
			if err != nil {
				t.Fatal(err)
			}
			s.Inject(f)
			ctx := context.Background()
			cust, err := c.CreateCustomer(ctx, sampleRequest())
			ev := waitEvent(t, events) // the simulator is done with it
			if !slices.Contains(ev.Faults, f.Kind) {
				t.Fatalf("fault %s did not fire: %+v", f.Kind, ev)
			}
			if ev.Applied != tc.applied {
				t.Fatalf("simulator applied = %v, want %v", ev.Applied, tc.applied)
			}
			wantCount := 0
			if tc.applied {
				wantCount = 1
			}
			if got := s.CustomerCount(); got != wantCount {
				t.Fatalf("simulator holds %d customers, want %d", got, wantCount)
			}
			if tc.class == pos.ClassUnknown {
				if err != nil || cust == nil {
					t.Fatalf("CreateCustomer: %v", err)
				}
				return
			}
			var he *hitpay.Error
			if !errors.As(err, &he) {
				t.Fatalf("CreateCustomer = %v, %v; want a *hitpay.Error", cust, err)
			}
			if got := pos.ClassOf(err); got != tc.class {
				t.Fatalf("class %s, want %s (%v)", got, tc.class, err)
			}
			if he.Status != tc.status {
				t.Fatalf("status %d, want %d", he.Status, tc.status)
			}
			switch tc.name {
			case "429":
				if he.RetryAfterDelay() != time.Second {
					t.Fatalf("RetryAfterDelay = %v, want 1s", he.RetryAfterDelay())
				}
			case "LatencyPastTimeout":
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("%v does not wrap context.DeadlineExceeded", err)
				}
			}

			// The fault is used up: sending again (what the engine does
			// for a retryable error) makes exactly one more customer.
			c = newClient(t, s, 5*time.Second)
			if _, err := c.CreateCustomer(ctx, sampleRequest()); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got := s.CustomerCount(); got != wantCount+1 {
				t.Fatalf("after the retry the simulator holds %d customers, want %d", got, wantCount+1)
			}
		})
	}
}

// TestTimeoutAfterBodySent: a server slower than the transport's wait for
// "100 Continue" gets the body anyway; a timeout after that is ambiguous,
// and indeed the simulator may or may not create the customer.
func TestTimeoutAfterBodySent(t *testing.T) {
	s, events := startSim(t, hitpaysim.Options{})
	s.Inject(simfault.Fault{Kind: simfault.Latency, Latency: 600 * time.Millisecond, Count: 1})
	cfg := s.ClientConfig()
	cfg.Timeout = 300 * time.Millisecond
	tr := &http.Transport{ExpectContinueTimeout: time.Millisecond}
	defer tr.CloseIdleConnections()
	cfg.HTTPClient = &http.Client{Transport: tr}
	c, err := hitpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateCustomer(context.Background(), sampleRequest())
	if got := pos.ClassOf(err); got != pos.ClassAmbiguous || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("class %s (%v), want ambiguous after a deadline", got, err)
	}
	waitEvent(t, events)
	if n := s.CustomerCount(); n > 1 {
		t.Fatalf("%d customers", n)
	}
}

func TestUnauthorized(t *testing.T) {
	s, events := startSim(t, hitpaysim.Options{})
	cfg := s.ClientConfig()
	cfg.APIKey = "wrong-key"
	c, err := hitpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateCustomer(context.Background(), sampleRequest())
	var he *hitpay.Error
	if !errors.As(err, &he) || he.Status != 401 || he.Message != "Unauthenticated." || he.ErrorClass() != pos.ClassPermanent {
		t.Fatalf("got %v", err)
	}
	if ev := waitEvent(t, events); ev.Applied || ev.Status != 401 || s.CustomerCount() != 0 {
		t.Fatalf("event %+v, %d customers", ev, s.CustomerCount())
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := hitpay.New(hitpay.Config{BaseURL: "http://" + addr, APIKey: "k", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateCustomer(context.Background(), sampleRequest())
	var he *hitpay.Error
	if !errors.As(err, &he) || he.Status != 0 || he.ErrorClass() != pos.ClassRetryable {
		t.Fatalf("got %v", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("%v does not wrap the network error", err)
	}
}

func TestCallerCancel(t *testing.T) {
	s, _ := startSim(t, hitpaysim.Options{})
	s.Inject(simfault.Fault{Kind: simfault.Latency, Latency: time.Minute, Count: 1})
	c := newClient(t, s, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := c.CreateCustomer(ctx, sampleRequest())
	if !errors.Is(err, context.Canceled) || pos.ClassOf(err) != pos.ClassRetryable {
		t.Fatalf("got %v (%s), want a retryable cancellation", err, pos.ClassOf(err))
	}
}

// TestConcurrent checks, under -race, that concurrent requests each make
// exactly one customer.
func TestConcurrent(t *testing.T) {
	s, _ := startSim(t, hitpaysim.Options{})
	c := newClient(t, s, 5*time.Second)
	const n = 32
	ids := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := sampleRequest()
			r.Remark = fmt.Sprint("till-", i)
			cust, err := c.CreateCustomer(context.Background(), r)
			if err != nil {
				t.Error(err)
				return
			}
			ids <- cust.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != n || s.CustomerCount() != n {
		t.Fatalf("%d distinct ids, %d customers; want %d", len(seen), s.CustomerCount(), n)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := hitpay.Config{BaseURL: hitpay.SandboxURL, APIKey: "k"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  hitpay.Config
		want string
	}{
		{hitpay.Config{APIKey: "k"}, "base_url is required"},
		{hitpay.Config{BaseURL: "api.sandbox.hit-pay.com", APIKey: "k"}, "is not an http(s) URL"},
		{hitpay.Config{BaseURL: "ftp://x", APIKey: "k"}, "is not an http(s) URL"},
		{hitpay.Config{BaseURL: "https://user:pw-SECRET@x", APIKey: "k"}, "must not carry credentials"},
		{hitpay.Config{BaseURL: hitpay.SandboxURL}, "api_key is required"},
		{hitpay.Config{BaseURL: hitpay.SandboxURL, APIKey: "  "}, "api_key is required"},
		{hitpay.Config{BaseURL: hitpay.SandboxURL, APIKey: "k", Timeout: -time.Second}, "timeout -1s is negative"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%v) = %v, want %q", tc.cfg, err, tc.want)
		}
		if _, nerr := hitpay.New(tc.cfg); nerr == nil {
			t.Errorf("New(%v) accepted", tc.cfg)
		}
		if err != nil && strings.Contains(err.Error(), "pw-SECRET") {
			t.Errorf("Validate leaks a URL password: %v", err)
		}
	}
}

// TestSecretsNeverLeak drives every error path with a secret-looking key
// and checks that no error, dump or log line carries it.
func TestSecretsNeverLeak(t *testing.T) {
	const key = "SeCrEt-HitPay-Key-0123456789abcdef"
	const wrongKey = "WrOnG-HitPay-Key-fedcba9876543210"
	s, _ := startSim(t, hitpaysim.Options{APIKey: key})
	cfg := s.ClientConfig()
	cfg.Timeout = 5 * time.Second
	c, err := hitpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var errs []error
	record := func(_ *hitpay.Customer, err error) { errs = append(errs, err) }
	for _, k := range hitpaysim.FaultKinds {
		s.Inject(simfault.Fault{Kind: k, Count: 1, Latency: time.Millisecond})
		record(c.CreateCustomer(ctx, sampleRequest()))
	}
	record(c.CreateCustomer(ctx, hitpay.CustomerRequest{Email: "bad"}))
	bad := cfg
	bad.APIKey = wrongKey
	bc, _ := hitpay.New(bad)
	record(bc.CreateCustomer(ctx, sampleRequest()))
	bad.BaseURL = "http://127.0.0.1:1"
	bc, _ = hitpay.New(bad)
	record(bc.CreateCustomer(ctx, sampleRequest()))
	short := cfg
	short.Timeout = time.Nanosecond
	sc, _ := hitpay.New(short)
	record(sc.CreateCustomer(ctx, sampleRequest()))

	var all bytes.Buffer
	n := 0
	for _, err := range errs {
		if err != nil {
			n++
			fmt.Fprintf(&all, "%v\n%+v\n%#v\n", err, err, err)
		}
	}
	if n < len(hitpaysim.FaultKinds) {
		t.Fatalf("only %d errors to check", n)
	}
	cp := &cfg
	fmt.Fprintf(&all, "%v %+v %#v %s %v %+v %#v\n", cfg, cfg, cfg, cfg, cp, cp, cp)
	fmt.Fprintf(&all, "%v %+v %#v\n", c, c, c)
	fmt.Fprintf(&all, "%+v %#v\n", struct{ HitPay hitpay.Config }{cfg}, []hitpay.Config{cfg})
	js, err := json.Marshal(map[string]any{"hitpay": cfg})
	if err != nil {
		t.Fatal(err)
	}
	all.Write(js)
	for _, h := range []slog.Handler{slog.NewTextHandler(&all, nil), slog.NewJSONHandler(&all, nil)} {
		slog.New(h).Info("configured", "hitpay", cfg, "client", c, "cfgptr", cp)
	}
	out := all.String()
	for _, secret := range []string{key, wrongKey, "SeCrEt", "WrOnG"} {
		if strings.Contains(out, secret) {
			t.Fatalf("secret %q leaked:\n%s", secret[:5], out)
		}
	}
	for _, want := range []string{"[redacted]", s.URL()} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
