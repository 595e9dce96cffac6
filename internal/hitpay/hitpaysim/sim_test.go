package hitpaysim_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/hitpay/hitpaysim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/simfault"
)

func start(t *testing.T, opts hitpaysim.Options) *hitpaysim.Server {
	t.Helper()
	s, err := hitpaysim.Start("", opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("listening at %s, want a loopback port", s.URL())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func call(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminAPI arms a fault through /_sim/faults (as `--fault` would),
// sees it fire, and reads the customers and the counters back.
func TestAdminAPI(t *testing.T) {
	s := start(t, hitpaysim.Options{})
	c, err := hitpay.New(s.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if code, body := call(t, "POST", s.URL()+"/_sim/faults", `{"spec":"5xx=503:1@/v1/customers"}`); code != 200 ||
		body != `[{"kind":"5xx","path":"/v1/customers","count":1,"status":503}]` {
		t.Fatalf("arm: %d %s", code, body)
	}
	if code, body := call(t, "POST", s.URL()+"/_sim/faults", `{"spec":"expire-token"}`); code != 400 || !strings.Contains(body, "unknown kind") {
		t.Fatalf("a Hesabe-only kind was accepted: %d %s", code, body)
	}
	if _, err := c.CreateCustomer(ctx, hitpay.CustomerRequest{Name: "أحمد"}); pos.ClassOf(err) != pos.ClassRetryable {
		t.Fatalf("armed 503: %v", err)
	}
	cust, err := c.CreateCustomer(ctx, hitpay.CustomerRequest{Name: "أحمد"})
	if err != nil {
		t.Fatalf("after the fault is used up: %v", err)
	}
	if code, body := call(t, "GET", s.URL()+"/_sim/faults", ""); code != 200 || body != "[]" {
		t.Fatalf("faults left: %d %s", code, body)
	}
	code, body := call(t, "GET", s.URL()+"/_sim/customers", "")
	var custs []hitpay.Customer
	if err := json.Unmarshal([]byte(body), &custs); err != nil || code != 200 || len(custs) != 1 || custs[0].ID != cust.ID || custs[0].Name != "أحمد" {
		t.Fatalf("customers: %d %s", code, body)
	}
	code, body = call(t, "GET", s.URL()+"/_sim/stats", "")
	var st hitpaysim.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 ||
		st.Requests != 2 || st.Customers != 1 || st.FaultsFired[simfault.Status5xx] != 1 {
		t.Fatalf("stats: %d %s", code, body)
	}
	s.Inject(simfault.Fault{Kind: simfault.Status429})
	if len(s.Faults()) != 1 {
		t.Fatal("Inject did not arm")
	}
	if code, _ := call(t, "DELETE", s.URL()+"/_sim/faults", ""); code != 200 || len(s.Faults()) != 0 {
		t.Fatal("DELETE did not clear")
	}
	s.Inject(simfault.Fault{Kind: simfault.Status429})
	s.ClearFaults()
	if len(s.Faults()) != 0 {
		t.Fatal("ClearFaults did not clear")
	}
}

func TestParseFault(t *testing.T) {
	for _, k := range hitpaysim.FaultKinds {
		if f, err := hitpaysim.ParseFault(string(k) + ":2"); err != nil || f.Kind != k || f.Count != 2 {
			t.Errorf("ParseFault(%s:2) = %+v, %v", k, f, err)
		}
	}
	if _, err := hitpaysim.ParseFault("malformed-hex"); err == nil {
		t.Error("a Hesabe-only kind parsed")
	}
}

// TestCloseStopsEverything: Close cuts an injected latency short, waits
// for the handler, and leaves the port closed, promptly.
func TestCloseStopsEverything(t *testing.T) {
	finished := make(chan hitpaysim.Event, 1)
	s, err := hitpaysim.Start("127.0.0.1:0", hitpaysim.Options{OnRequest: func(ev hitpaysim.Event) { finished <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(simfault.Fault{Kind: simfault.Latency, Latency: time.Hour})
	cfg := s.ClientConfig()
	cfg.Timeout = 30 * time.Second
	c, err := hitpay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.CreateCustomer(context.Background(), hitpay.CustomerRequest{Name: "x"})
		errc <- err
	}()
	for s.Stats().Requests == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %s", d)
	}
	// The request sleeping in the latency went on at once and, within
	// the grace period, finished normally.
	select {
	case ev := <-finished:
		if !ev.Applied || ev.Status != http.StatusCreated || s.CustomerCount() != 1 {
			t.Fatalf("event %+v, %d customers; want the request finished", ev, s.CustomerCount())
		}
	default:
		t.Fatal("Close returned before the handler finished")
	}
	if err := <-errc; err != nil {
		t.Fatalf("client got %v, want its customer", err)
	}
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(s.URL(), "http://"), time.Second); err == nil {
		conn.Close()
		t.Fatal("port still open after Close")
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestStartBusyPort(t *testing.T) {
	s := start(t, hitpaysim.Options{})
	if _, err := hitpaysim.Start(strings.TrimPrefix(s.URL(), "http://"), hitpaysim.Options{}); err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
}

func TestDefaultKey(t *testing.T) {
	s := start(t, hitpaysim.Options{})
	if got := s.ClientConfig(); got.APIKey != hitpaysim.DefaultAPIKey || got.BaseURL != s.URL() {
		t.Fatalf("ClientConfig = %v", got)
	}
	if code, body := call(t, "POST", s.URL()+hitpay.PathCustomers, `{"name":"x"}`); code != 401 || body != `{"message":"Unauthenticated."}` {
		t.Fatalf("no key: %d %s", code, body)
	}
}
