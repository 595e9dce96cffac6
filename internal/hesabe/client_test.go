package hesabe_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// startSim runs a simulator on a loopback port for the test's life.
func startSim(tb testing.TB, opts hesabesim.Options) *hesabesim.Server {
	tb.Helper()
	s, err := hesabesim.Start("127.0.0.1:0", opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// newClient returns a client for the simulator's sandbox merchant whose
// logs go to buf (if not nil).
func newClient(tb testing.TB, s *hesabesim.Server, buf *bytes.Buffer) *hesabe.Client {
	tb.Helper()
	cfg := s.ClientConfig(0)
	cfg.Timeout = 5 * time.Second
	if buf != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := hesabe.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func sampleRequest(n string) hesabe.POSInvoiceRequest {
	return hesabe.POSInvoiceRequest{CustomerName: "Salman", Amount: 100, TerminalID: "29708454",
		InvoiceNumber: n, Description: "test"}
}

// TestPOSInvoiceWireFormat checks the request JSON against Hesabe's vector,
// byte for byte, including "amount":0.1.
func TestPOSInvoiceWireFormat(t *testing.T) {
	got, err := hesabe.EncodePOSInvoice("842217", hesabe.POSInvoiceRequest{
		CustomerName: "Salman", Amount: 100, TerminalID: "29708454", Description: "test"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"merchantCode":"842217","customer_name":"Salman","customer_email":"","customer_phone":"","amount":0.1,"terminal_id":"29708454","invoice_number":"","description":"test"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	codec, _ := crypto.NewCodec([]byte("PkW64zMe5NVdrlPVNnjo2Jy9nOb7v1Xg"), []byte("5NVdrlPVNnjo2Jy9"))
	wantHex := "0e7898bd7464d0c402fe8a949d9cbf9b191a5c36b416dd227c080e9e34889e3789f0a48c2a935932bc2698cfae0745a892b6fffc18bf86638fda8dcebd9e216416e552057bfe18900f0fd3e52c8f2d87ae1a2c74c68ae67b941d1f55e6a1ad3fbbbb043d5be213831c86448d163a473601f52f115944b2fe5f218424c0eaa54aa7af4880acf1ddd6e514617670691a3f6f539422c79992b3d6ea3cb6d1d3ead2fe3656b2b7a66ce06649af3577536865"
	if h := codec.Encrypt(got); h != wantHex {
		t.Fatalf("encrypted request differs from the vector:\n%s", h)
	}
	cust, _ := hesabe.EncodeCustomer("842217", hesabe.CustomerRequest{Name: "Ahmed Al-Mansouri", Email: "ahmed@example.com", MobileNumber: "12345678"})
	if want := `{"merchantCode":"842217","name":"Ahmed Al-Mansouri","email":"ahmed@example.com","mobile_number":"12345678"}`; string(cust) != want {
		t.Fatalf("customer JSON = %s", cust)
	}
}

func TestHappyPaths(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	c := newClient(t, s, nil)
	ctx := context.Background()

	t.Run("Terminals", func(t *testing.T) {
		terms, err := c.Terminals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(terms) != 2 || terms[0].TerminalID != "29708454" || terms[0].TerminalName != "A99" {
			t.Fatalf("terminals = %+v", terms)
		}
	})
	var created *hesabe.POSInvoice
	t.Run("CreatePOSInvoice", func(t *testing.T) {
		inv, err := c.CreatePOSInvoice(ctx, sampleRequest("PB-1"))
		if err != nil {
			t.Fatal(err)
		}
		if inv.ID == 0 || len(inv.TransactionID) != 30 || inv.Amount != 100 || inv.Status != hesabe.InvoicePending || inv.InvoiceNumber != "PB-1" {
			t.Fatalf("invoice = %+v", inv)
		}
		created = inv
	})
	t.Run("ResendPOSInvoice", func(t *testing.T) {
		inv, err := c.ResendPOSInvoice(ctx, sampleRequest("PB-1"), created.TransactionID)
		if err != nil {
			t.Fatal(err)
		}
		if inv.ID != created.ID {
			t.Fatalf("resend made invoice %d, want %d", inv.ID, created.ID)
		}
		if n := len(s.Invoices()); n != 1 {
			t.Fatalf("simulator holds %d invoices after a resend, want 1", n)
		}
	})
	t.Run("GetPOSInvoice", func(t *testing.T) {
		if err := s.SetInvoiceStatus(created.ID, hesabe.InvoicePaid); err != nil {
			t.Fatal(err)
		}
		inv, err := c.GetPOSInvoice(ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != hesabe.InvoicePaid || !inv.Status.Final() {
			t.Fatalf("status = %v", inv.Status)
		}
		_, err = c.GetPOSInvoice(ctx, 999999)
		if !errors.Is(err, hesabe.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})
	t.Run("FindPOSInvoice", func(t *testing.T) {
		inv, err := c.FindPOSInvoice(ctx, "PB-1")
		if err != nil {
			t.Fatal(err)
		}
		if inv.ID != created.ID {
			t.Fatalf("found %d, want %d", inv.ID, created.ID)
		}
		_, err = c.FindPOSInvoice(ctx, "PB-none")
		if !errors.Is(err, hesabe.ErrNotFound) || pos.ClassOf(err) != pos.ClassPermanent {
			t.Fatalf("missing number: %v", err)
		}
	})
	t.Run("CreateCustomer", func(t *testing.T) {
		cu, err := c.CreateCustomer(ctx, hesabe.CustomerRequest{Name: "أحمد المنصوري", Email: "ahmed@example.com", MobileNumber: "12345678"})
		if err != nil {
			t.Fatal(err)
		}
		if cu.ID == 0 || cu.CustomerID == "" || cu.Name != "أحمد المنصوري" {
			t.Fatalf("customer = %+v", cu)
		}
	})
	t.Run("CreateInstallments", func(t *testing.T) {
		exp := time.Now().AddDate(0, 1, 0).Format(time.DateOnly)
		inv := hesabe.EMIInvoice{Amount: 150000, ExpiresAt: exp, ReferenceNumber: "R1", InvoiceType: "0",
			InvoiceSubType: "3", Language: "ar", Description: "أقساط", CustomerName: "Ahmed",
			MobileNumber: "12345678", CountryCode: "965", AllocatePayType: "1,2",
			Items: []hesabe.EMIItem{{Title: "TV", Rate: 150000, Quantity: 1, Amount: 150000}}}
		inv2 := inv
		inv2.ReferenceNumber = "R2"
		res, err := c.CreateInstallments(ctx, []hesabe.EMIInvoice{inv, inv2})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 || res[0].URL == "" || res[1].Token == "" || res[0].Amount != 150000 {
			t.Fatalf("results = %+v", res)
		}
		// The simulator mixes numbers and strings between elements.
		if res[0].InvoiceSubType != "3" || res[1].InvoiceSubType != "3" || res[0].MerchantID != "84" || res[1].MerchantID != "84" {
			t.Fatalf("tolerant decode: %+v / %+v", res[0], res[1])
		}
		if res[0].InvoiceStatus.Valid == res[1].InvoiceStatus.Valid {
			t.Fatalf("invoice_status should be 0 then null: %+v %+v", res[0].InvoiceStatus, res[1].InvoiceStatus)
		}
	})
}

// TestFaults injects every fault the simulator offers into a POS invoice
// create and checks the class the client gives it, and whether the
// simulator applied the request.
func TestFaults(t *testing.T) {
	const path = "smartpos-transaction"
	for _, tc := range []struct {
		fault   hesabesim.Fault
		class   pos.ErrorClass // ClassUnknown: the call succeeds
		applied bool
		errIs   error
	}{
		{fault: hesabesim.Fault{Kind: hesabesim.FaultLatency, Latency: 50 * time.Millisecond}, applied: true},
		{fault: hesabesim.Fault{Kind: hesabesim.Fault5xx}, class: pos.ClassRetryable},
		{fault: hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 503}, class: pos.ClassRetryable},
		{fault: hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 504}, class: pos.ClassAmbiguous},
		{fault: hesabesim.Fault{Kind: hesabesim.Fault429}, class: pos.ClassRetryable},
		{fault: hesabesim.Fault{Kind: hesabesim.FaultResetBeforeRead}, class: pos.ClassRetryable},
		{fault: hesabesim.Fault{Kind: hesabesim.FaultResetAfterRead}, class: pos.ClassAmbiguous},
		{fault: hesabesim.Fault{Kind: hesabesim.FaultMalformedHex}, class: pos.ClassAmbiguous, applied: true, errIs: crypto.ErrNotHex},
		{fault: hesabesim.Fault{Kind: hesabesim.FaultBadPadding}, class: pos.ClassAmbiguous, applied: true, errIs: crypto.ErrBadPadding},
		{fault: hesabesim.Fault{Kind: hesabesim.FaultPlainError}, class: pos.ClassPermanent},
		{fault: hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop}, class: pos.ClassAmbiguous, applied: true},
		{fault: hesabesim.Fault{Kind: hesabesim.FaultExpireToken}, applied: true}, // re-login and retry once
	} {
		name := string(tc.fault.Kind)
		if tc.fault.Status != 0 {
			name += fmt.Sprint(tc.fault.Status)
		}
		t.Run(name, func(t *testing.T) {
			s := startSim(t, hesabesim.DefaultOptions())
			c := newClient(t, s, nil)
			ctx := context.Background()
			if _, err := c.Terminals(ctx); err != nil { // log in first
				t.Fatal(err)
			}
			f := tc.fault
			f.Path, f.Count = path, 1
			s.Inject(f)
			inv, err := c.CreatePOSInvoice(ctx, sampleRequest("PB-"+name))
			if got := pos.ClassOf(err); got != tc.class {
				t.Fatalf("class = %v, want %v (err %v)", got, tc.class, err)
			}
			if tc.class == pos.ClassUnknown && inv == nil {
				t.Fatal("no invoice")
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Fatalf("err = %v, want %v", err, tc.errIs)
			}
			if n := len(s.InvoicesByNumber("PB-" + name)); (n == 1) != tc.applied || n > 1 {
				t.Fatalf("simulator holds %d invoices, applied want %v", n, tc.applied)
			}
			if s.Stats().FaultsFired[tc.fault.Kind] != 1 {
				t.Fatalf("fault did not fire: %+v", s.Stats().FaultsFired)
			}
			if tc.fault.Kind == hesabesim.Fault429 {
				var herr *hesabe.Error
				if !errors.As(err, &herr) || herr.RetryAfter != time.Second {
					t.Fatalf("Retry-After not read: %v", err)
				}
			}
			// After the fault the same client works again.
			if _, err := c.FindPOSInvoice(ctx, "PB-"+name); tc.applied && err != nil {
				t.Fatalf("lookup after fault: %v", err)
			}
		})
	}
}

// TestIdempotentCallsRetryable: every transport fault on a lookup is
// retryable, never ambiguous.
func TestIdempotentCallsRetryable(t *testing.T) {
	for _, k := range []hesabesim.FaultKind{hesabesim.FaultResetAfterRead, hesabesim.FaultApplyThenDrop, hesabesim.FaultMalformedHex} {
		t.Run(string(k), func(t *testing.T) {
			s := startSim(t, hesabesim.DefaultOptions())
			c := newClient(t, s, nil)
			if _, err := c.Terminals(context.Background()); err != nil {
				t.Fatal(err)
			}
			s.Inject(hesabesim.Fault{Kind: k, Count: 1, Path: "smartpos-terminals"})
			// Go's transport may repeat an idempotent GET on a broken
			// connection by itself; if it does not, the error is retryable.
			_, err := c.Terminals(context.Background())
			if got := pos.ClassOf(err); err != nil && got != pos.ClassRetryable {
				t.Fatalf("class = %v (%v)", got, err)
			}
		})
	}
}

func TestTimeoutClassified(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	c := newClient(t, s, nil)
	if _, err := c.Terminals(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Inject(hesabesim.Fault{Kind: hesabesim.FaultLatency, Latency: 3 * time.Second, Path: "smartpos-transaction", Count: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.CreatePOSInvoice(ctx, sampleRequest("PB-slow"))
	// The simulator sleeps before reading the body: with Expect:
	// 100-continue the body never left, so the timeout is retryable.
	if got := pos.ClassOf(err); got != pos.ClassRetryable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("class = %v, err = %v", got, err)
	}
}

func TestValidationErrors(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	c := newClient(t, s, nil)
	ctx := context.Background()
	// Client-side checks never reach the gateway.
	_, err := c.CreatePOSInvoice(ctx, hesabe.POSInvoiceRequest{CustomerName: "x", TerminalID: "29708454"})
	if pos.ClassOf(err) != pos.ClassPermanent || !strings.Contains(err.Error(), "amount must be positive") {
		t.Fatalf("zero amount: %v", err)
	}
	// Unknown terminal: Hesabe's "Request not found".
	req := sampleRequest("PB-x")
	req.TerminalID = "0000"
	_, err = c.CreatePOSInvoice(ctx, req)
	var herr *hesabe.Error
	if !errors.As(err, &herr) || herr.Class != pos.ClassPermanent || !strings.Contains(herr.Message.String(), "Request not found") {
		t.Fatalf("unknown terminal: %v", err)
	}
	// A 422 with an {en,ar} message.
	_, err = c.CreateCustomer(ctx, hesabe.CustomerRequest{Name: "A", Email: "a@b.co", MobileNumber: "123"})
	if !errors.As(err, &herr) || herr.Code != 422 || herr.Class != pos.ClassPermanent || herr.Message.Ar == "" {
		t.Fatalf("bad mobile: %#v", err)
	}
}

func TestWrongCredentials(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	cfg := s.ClientConfig(0)
	cfg.Password = "wrong-password-Xyz"
	c, err := hesabe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Terminals(context.Background())
	var herr *hesabe.Error
	if !errors.As(err, &herr) || herr.Class != pos.ClassPermanent || herr.Code != hesabe.CodeInvalidLogin {
		t.Fatalf("wrong password: %v", err)
	}
	cfg = s.ClientConfig(0)
	cfg.AccessCode = "not-the-access-code"
	c, _ = hesabe.New(cfg)
	if _, err = c.Terminals(context.Background()); pos.ClassOf(err) != pos.ClassPermanent {
		t.Fatalf("wrong access code: %v", err)
	}
}

// TestTokenLifecycle: expiry mid-run, early refresh, one refresh at a time
// under concurrency, login when the refresh fails.
func TestTokenLifecycle(t *testing.T) {
	opts := hesabesim.DefaultOptions()
	opts.TokenLifetime = 90 * time.Second // 60 s early refresh leaves 30 s
	s := startSim(t, opts)
	now := time.Now()
	var clockMu sync.Mutex
	cfg := s.ClientConfig(0)
	cfg.Now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	c, err := hesabe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	parallel := func(n int) {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				if _, err := c.Terminals(ctx); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	parallel(20)
	if st := s.Stats(); st.Logins != 1 || st.Refreshes != 0 {
		t.Fatalf("after first use: %d logins, %d refreshes; want 1, 0", st.Logins, st.Refreshes)
	}
	clockMu.Lock()
	now = now.Add(40 * time.Second) // within RefreshEarly of expiry
	clockMu.Unlock()
	parallel(20)
	if st := s.Stats(); st.Logins != 1 || st.Refreshes != 1 {
		t.Fatalf("after early refresh: %d logins, %d refreshes; want 1, 1", st.Logins, st.Refreshes)
	}
	// Expired at the gateway before the client thinks so: one re-login
	// (the refresh token still works), then the call succeeds.
	s.ExpireTokens()
	parallel(20)
	if st := s.Stats(); st.Refreshes+st.Logins > 4 {
		t.Fatalf("expiry mid-run renewed too often: %d logins, %d refreshes", st.Logins, st.Refreshes)
	}
	// Refresh refused (token already used): full login.
	clockMu.Lock()
	now = now.Add(200 * time.Second)
	clockMu.Unlock()
	s.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Path: "token-refresh", Count: 1})
	before := s.Stats().Logins
	parallel(5)
	if got := s.Stats().Logins; got != before+1 {
		t.Fatalf("failed refresh should fall back to one login: %d → %d", before, got)
	}
}

// TestSecretsNeverLeak drives every error path with secret-looking values
// and checks neither errors nor logs carry them.
func TestSecretsNeverLeak(t *testing.T) {
	m := hesabesim.SandboxMerchant()
	m.AccessCode = "ACCESS-c0de-SECRET-0001"
	m.SecretKey = "SeCrEtKeY0123456789abcdefghijklm"
	m.IVKey = "IvKeY0123456789z"
	m.Password = "P4ssw0rd-SECRET"
	opts := hesabesim.DefaultOptions()
	opts.Merchants = []hesabesim.Merchant{m}
	s := startSim(t, opts)
	var logs bytes.Buffer
	c := newClient(t, s, &logs)
	ctx := context.Background()
	var errs []error
	record := func(_ any, err error) { errs = append(errs, err) }
	record(c.Terminals(ctx))
	for _, k := range hesabesim.FaultKinds {
		s.Inject(hesabesim.Fault{Kind: k, Count: 1, Latency: time.Millisecond})
		record(c.CreatePOSInvoice(ctx, sampleRequest("PB-leak-"+string(k))))
		s.Inject(hesabesim.Fault{Kind: k, Count: 1, Latency: time.Millisecond})
		record(c.FindPOSInvoice(ctx, "PB-leak"))
	}
	s.ExpireTokens()
	record(c.Terminals(ctx))
	cfg := s.ClientConfig(0)
	cfg.Password = "wrong-P4ssw0rd-SECRET"
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bad, _ := hesabe.New(cfg)
	record(bad.Terminals(ctx))
	cfg.MerchantURL = "http://127.0.0.1:1/api" // nothing listens
	bad, _ = hesabe.New(cfg)
	record(bad.Terminals(ctx))

	tokens := []string{m.AccessCode, m.SecretKey, m.IVKey, m.Password, "Bearer "}
	var all strings.Builder
	for _, err := range errs {
		if err != nil {
			fmt.Fprintf(&all, "%v\n%+v\n%#v\n", err, err, err)
		}
	}
	all.WriteString(logs.String())
	all.WriteString(fmt.Sprintf("%v %+v", c, c))
	simCfg := s.ClientConfig(0)
	all.WriteString(fmt.Sprintf("%v %+v %#v %s", simCfg, simCfg, simCfg, simCfg))
	slog.New(slog.NewJSONHandler(&all, nil)).Info("config", "cfg", simCfg)
	if all.Len() < 200 {
		t.Fatalf("too little output to check: %q", all.String())
	}
	for _, secret := range tokens {
		if strings.Contains(all.String(), secret) {
			t.Fatalf("secret %q leaked into errors or logs", secret[:4])
		}
	}
}

func TestSimRejectsGarbage(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	m := hesabesim.SandboxMerchant()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+hesabe.PathPOSTransaction, strings.NewReader(`{"data":"nothex"}`))
	req.Header.Set("accessCode", m.AccessCode)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token got %d", resp.StatusCode)
	}
}

func BenchmarkCreatePOSInvoice(b *testing.B) {
	s := startSim(b, hesabesim.DefaultOptions())
	c := newClient(b, s, nil)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := c.CreatePOSInvoice(ctx, sampleRequest(fmt.Sprint("B-", i))); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLookupNotFoundOnlyOnNotFound: a look-up's ErrNotFound is the engine's
// licence to send a checkout again, so only Hesabe's "Request not found"
// (or an HTTP 404, or a list without the number) carries it. A refused
// look-up (a 401 without a Hesabe code, a plain error) is a failed look-up,
// whatever its class.
func TestLookupNotFoundOnlyOnNotFound(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	c := newClient(t, s, nil)
	ctx := context.Background()
	if _, err := c.Terminals(ctx); err != nil { // log in first
		t.Fatal(err)
	}
	if _, err := c.FindPOSInvoice(ctx, "PB-none"); !errors.Is(err, hesabe.ErrNotFound) {
		t.Fatalf("a number the gateway does not know: %v", err)
	}
	if _, err := c.GetPOSInvoice(ctx, 999999); !errors.Is(err, hesabe.ErrNotFound) {
		t.Fatalf("an id the gateway does not know: %v", err)
	}
	// A 401 makes the client log in again and retry once: two hits a call.
	for kind, hits := range map[hesabesim.FaultKind]int{hesabesim.FaultUnauthorized: 2, hesabesim.FaultPlainError: 1} {
		s.Inject(hesabesim.Fault{Kind: kind, Path: "smartpos-invoices", Count: 2 * hits})
		if _, err := c.FindPOSInvoice(ctx, "PB-none"); err == nil || errors.Is(err, hesabe.ErrNotFound) {
			t.Fatalf("FindPOSInvoice refused with %s: %v, want a failed look-up", kind, err)
		}
		if _, err := c.GetPOSInvoice(ctx, 999999); err == nil || errors.Is(err, hesabe.ErrNotFound) {
			t.Fatalf("GetPOSInvoice refused with %s: %v, want a failed look-up", kind, err)
		}
		if n := s.Stats().FaultsFired[kind]; n != 2*hits {
			t.Fatalf("%s fired %d times, want %d", kind, n, 2*hits)
		}
	}
}
