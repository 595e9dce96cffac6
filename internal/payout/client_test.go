package payout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/simfault"
	"github.com/posbridge/posbridge/internal/testutil"
)

// mustClient starts a simulator and returns it with a client for it,
// logging into logs when given.
func mustClient(t *testing.T, opts payoutsim.Options, logs *testutil.SyncBuffer) (*payoutsim.Server, *payout.Client, payout.Config) {
	t.Helper()
	sim, cfg := payoutsim.StartTest(t, opts)
	if logs != nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := payout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c, cfg
}

// rawSeal builds the wire request for r without validating it, as a
// broken or hostile client would: the provider must refuse it by itself.
func rawSeal(t *testing.T, s *crypto.Sealer, r payout.PayeeRequest) payout.SealedPayee {
	t.Helper()
	seal := func(v string) string {
		if v == "" {
			return ""
		}
		out, err := s.Seal(v)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	nameA := r.NameAr
	if nameA == "" {
		nameA = r.NameEn
	}
	return payout.SealedPayee{
		NameE: r.NameEn, NameA: nameA, MerCustomID: r.MerchantCustomerID, Identity: seal(r.Identity),
		BankCode: r.BankCode, CardNo: seal(r.CardNo), IBANAccount: r.IBAN, STCAccount: seal(r.STCAccount),
		Address: r.Address, SwiftCode: r.SwiftCode, AutoApproval: r.AutoApproval, OTPAppName: r.OTPAppName,
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRulesThroughSimulator sends every rule case to the simulator sealed
// but unvalidated: the provider's rules refuse with the provider's field,
// which the client maps back to the till's; our own rules pass there.
func TestRulesThroughSimulator(t *testing.T) {
	sim, c, _ := mustClient(t, payoutsim.Options{}, nil)
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.request()
			before := sim.PayeeCount()
			p, err := c.CreatePayee(ctxT(t), rawSeal(t, c.Sealer(), r))
			if tc.simField == "" {
				if err != nil {
					t.Fatalf("simulator refused: %v", err)
				}
				if p.MerchantCustomerID != r.MerchantCustomerID || p.CustomID == "" {
					t.Errorf("payee = %+v", p)
				}
				if got := sim.PayeeCount(); got != before+1 {
					t.Errorf("payee count %d → %d, want one more", before, got)
				}
				return
			}
			var perr *payout.Error
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v, want *payout.Error", err)
			}
			if perr.Code != payout.CodeInvalidParam || perr.HTTPStatus != http.StatusOK || perr.ErrorClass() != pos.ClassPermanent {
				t.Errorf("err = %v, want code 400 at HTTP 200, permanent", err)
			}
			if want := payout.TillField(tc.simField); perr.Field != want {
				t.Errorf("field = %q, want %q (provider's %q): %v", perr.Field, want, tc.simField, err)
			}
			if perr.RequestID == "" {
				t.Errorf("no request id: %v", err)
			}
			if errors.Is(err, payout.ErrDuplicate) {
				t.Errorf("a field error matches ErrDuplicate")
			}
			for _, s := range secretsOf(r) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
			if got := sim.PayeeCount(); got != before {
				t.Errorf("a refused request created a payee")
			}
			// The bridge's own check would have caught it first, on the
			// same till field when both name one.
			if verr := payout.Validate(r); verr == nil {
				t.Errorf("Validate accepts what the provider refuses")
			}
		})
	}
}

func TestCreatePayee(t *testing.T) {
	logs := new(testutil.SyncBuffer)
	sim, c, cfg := mustClient(t, payoutsim.Options{}, logs)
	keys, err := payoutsim.ProcessKeys()
	if err != nil {
		t.Fatal(err)
	}
	merchant, err := crypto.NewOpener(keys.Merchant, "")
	if err != nil {
		t.Fatal(err)
	}
	provider, err := crypto.NewOpener(keys.Provider, "")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("Bank", func(t *testing.T) {
		r := bankRequest("bank-1")
		sp, err := c.SealPayee(r)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.CreatePayee(ctxT(t), sp)
		if err != nil {
			t.Fatal(err)
		}
		if p.CustomID == "" || p.MerchantCustomerID != "bank-1" || p.RequestID == "" {
			t.Errorf("payee = %+v", p)
		}
		if p.Status != payout.StatusIncomplete || p.StatusCode != 4 || len(p.DemandPerfection) != 1 || p.DemandPerfection[0] != "identitypic" {
			t.Errorf("status = %s (%d) demanding %v, want incomplete (4) demanding [identitypic]", p.Status, p.StatusCode, p.DemandPerfection)
		}
		if time.Since(p.CreatedAt) > time.Minute || p.CreatedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("created_at = %v", p.CreatedAt)
		}
		if p.NameA != "محمد العتيبي" || p.IBANAccount != testIBAN || p.BankCode != "RJHI" {
			t.Errorf("payee fields = %+v", p)
		}
		if got := strings.Join(p.SensitiveFields, ","); got != "identity,identitypic,signpic,stcaccount,cardno" {
			t.Errorf("sensitiveFields = %s", got)
		}
		// The answer's sensitive fields are still sealed, for the merchant.
		for field, want := range map[string]string{"identity": testIdentity, "cardno": testCardNo} {
			sealed := p.Sealed[field]
			if len(sealed) != 344 {
				t.Fatalf("answer's %s is %d characters, want a sealed 344", field, len(sealed))
			}
			if got, err := c.OpenField(sealed); err != nil || got != want {
				t.Errorf("OpenField(%s) = %q, %v", field, got, err)
			}
			if got, err := merchant.Open(sealed); err != nil || got != want {
				t.Errorf("merchant key opens %s to %q, %v", field, got, err)
			}
			if _, err := provider.Open(sealed); !errors.Is(err, crypto.ErrOpenFailed) {
				t.Errorf("the provider's key opens the answer's %s: %v", field, err)
			}
		}
		if _, ok := p.Sealed["stcaccount"]; ok {
			t.Error("a bank payee has an stcaccount")
		}
		// What went on the wire: sealed, no plaintext, the provider's names.
		bodies := sim.RequestBodies()
		body := bodies[len(bodies)-1]
		for _, s := range []string{testIdentity, testCardNo, "identity_", "card_number"} {
			if bytes.Contains(body, []byte(s)) {
				t.Fatalf("request body contains %q: %s", s, body)
			}
		}
		var wire map[string]any
		if err := json.Unmarshal(body, &wire); err != nil {
			t.Fatal(err)
		}
		if got, err := provider.Open(wire["identity"].(string)); err != nil || got != testIdentity {
			t.Errorf("wire identity opens to %q, %v", got, err)
		}
		if got, err := provider.Open(wire["cardno"].(string)); err != nil || got != testCardNo {
			t.Errorf("wire cardno opens to %q, %v", got, err)
		}
		if wire["ibanaccount"] != testIBAN || wire["mercustomid"] != "bank-1" || wire["name_a"] != "محمد العتيبي" {
			t.Errorf("wire = %v", wire)
		}
		// The simulator really opened them.
		sp2, ok := sim.PayeeByMerchantID("bank-1")
		if !ok || sp2.Identity != testIdentity || sp2.CardNo != testCardNo || sp2.CustomID != p.CustomID {
			t.Errorf("simulator payee = %+v", sp2)
		}
		// The till sees the last four characters only.
		m, err := c.MaskPayee(p)
		if err != nil {
			t.Fatal(err)
		}
		if m.Identity != "****5678" || m.CardNo != "****1111" || m.IBAN != "****7519" || m.STCAccount != "" ||
			m.Status != payout.StatusIncomplete || m.CustomID != p.CustomID || m.NameAr != "محمد العتيبي" {
			t.Errorf("masked = %+v", m)
		}
		mjs, _ := json.Marshal(m)
		for _, s := range []string{testIdentity, testCardNo, testIBAN} {
			if strings.Contains(string(mjs), s) {
				t.Errorf("masked payee shows %q: %s", s, mjs)
			}
		}
		// A stored Payee survives JSON and still opens.
		pjs, _ := json.Marshal(p)
		var back payout.Payee
		if err := json.Unmarshal(pjs, &back); err != nil {
			t.Fatal(err)
		}
		if got, err := c.OpenField(back.Sealed["cardno"]); err != nil || got != testCardNo || back.Status != p.Status {
			t.Errorf("stored payee: %q, %v, %s", got, err, back.Status)
		}
	})

	t.Run("STC", func(t *testing.T) {
		for i, stc := range []string{"512345678", "0512345678", "966512345678", "+966512345678"} {
			r := stcRequest(fmt.Sprintf("stc-%d", i))
			r.STCAccount = stc
			sp, err := c.SealPayee(r)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.CreatePayee(ctxT(t), sp)
			if err != nil {
				t.Fatalf("%s: %v", stc, err)
			}
			if got, err := c.OpenField(p.Sealed["stcaccount"]); err != nil || got != stc {
				t.Errorf("stcaccount opens to %q, %v; want %q", got, err, stc)
			}
			m, err := c.MaskPayee(p)
			if err != nil || m.STCAccount != payout.Mask(stc) || m.CardNo != "" {
				t.Errorf("masked = %+v, %v", m, err)
			}
			body := sim.RequestBodies()[len(sim.RequestBodies())-1]
			if bytes.Contains(body, []byte(stc)) {
				t.Errorf("request body contains the STC number: %s", body)
			}
		}
	})

	t.Run("Duplicate", func(t *testing.T) {
		sp, err := c.SealPayee(bankRequest("dup-1"))
		if err != nil {
			t.Fatal(err)
		}
		first, err := c.CreatePayee(ctxT(t), sp)
		if err != nil {
			t.Fatal(err)
		}
		n := sim.PayeeCount()
		// The same mercustomid again, even with other details.
		sp2, _ := c.SealPayee(stcRequest("dup-1"))
		for _, again := range []payout.SealedPayee{sp, sp2} {
			_, err = c.CreatePayee(ctxT(t), again)
			if !errors.Is(err, payout.ErrDuplicate) {
				t.Fatalf("err = %v, want ErrDuplicate", err)
			}
			var perr *payout.Error
			errors.As(err, &perr)
			if perr.CustomID != first.CustomID || perr.ErrorClass() != pos.ClassPermanent || perr.Field != "merchant_customer_id" {
				t.Errorf("duplicate error = %+v", perr)
			}
		}
		if got := sim.PayeeCount(); got != n {
			t.Errorf("duplicates created payees: %d → %d", n, got)
		}
	})

	t.Run("NoSecretsInLogs", func(t *testing.T) {
		out := logs.String()
		if !strings.Contains(out, "payout payee created") || !strings.Contains(out, "payout call failed") {
			t.Fatalf("expected log lines missing:\n%s", out)
		}
		priv, _ := os.ReadFile(cfg.MerchantPrivateKeyFile)
		pemBody := strings.Split(string(priv), "\n")[2]
		for _, s := range []string{testIdentity, testCardNo, testSTC, "512345678", cfg.APIKey, pemBody, keys.Merchant.D.String()[:20]} {
			if strings.Contains(out, s) {
				t.Errorf("logs contain %q", s)
			}
		}
	})
}

func TestCreatePayeePending(t *testing.T) {
	sim, c, _ := mustClient(t, payoutsim.Options{DemandPerfection: payoutsim.DemandNone}, nil)
	sp, err := c.SealPayee(stcRequest("pending-1"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CreatePayee(ctxT(t), sp)
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != payout.StatusPending || p.StatusCode != 2 || len(p.DemandPerfection) != 0 {
		t.Errorf("status = %s (%d) %v, want pending with nothing demanded", p.Status, p.StatusCode, p.DemandPerfection)
	}
	// The review moves it on; a resend shows where it stands through the
	// duplicate answer.
	if err := sim.SetStatus(p.CustomID, payout.StatusNormal); err != nil {
		t.Fatal(err)
	}
	if got, _ := sim.PayeeByMerchantID("pending-1"); got.Status != payout.StatusNormal {
		t.Errorf("simulator status = %s", got.Status)
	}
	if err := sim.SetStatus("nope", payout.StatusNormal); !errors.Is(err, payoutsim.ErrNoPayee) {
		t.Errorf("SetStatus(unknown) = %v", err)
	}
}

func TestAuthFailure(t *testing.T) {
	_, _, cfg := mustClient(t, payoutsim.Options{}, nil)
	for name, mod := range map[string]func(*payout.Config){
		"WrongKey":      func(c *payout.Config) { c.APIKey = "wrong-key-1234" },
		"WrongMerchant": func(c *payout.Config) { c.MerchantID = "SOMEONE-ELSE" },
	} {
		t.Run(name, func(t *testing.T) {
			bad := cfg
			mod(&bad)
			c, err := payout.New(bad)
			if err != nil {
				t.Fatal(err)
			}
			sp, _ := c.SealPayee(bankRequest("auth-1"))
			_, err = c.CreatePayee(ctxT(t), sp)
			var perr *payout.Error
			if !errors.As(err, &perr) || perr.HTTPStatus != 401 || perr.Code != payout.CodeUnauthorized || perr.ErrorClass() != pos.ClassPermanent {
				t.Fatalf("err = %v, want HTTP 401 code 401 permanent", err)
			}
			if strings.Contains(err.Error(), bad.APIKey) || strings.Contains(err.Error(), cfg.APIKey) {
				t.Errorf("error shows the API key: %v", err)
			}
		})
	}
}

func TestHTTPErrorStatuses(t *testing.T) {
	sim, c, _ := mustClient(t, payoutsim.Options{HTTPErrors: true}, nil)
	sp, _ := c.SealPayee(bankRequest("h-1"))
	if _, err := c.CreatePayee(ctxT(t), sp); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreatePayee(ctxT(t), sp)
	var perr *payout.Error
	if !errors.Is(err, payout.ErrDuplicate) || !errors.As(err, &perr) || perr.HTTPStatus != 409 || perr.ErrorClass() != pos.ClassPermanent {
		t.Fatalf("duplicate at HTTP 409: %v", err)
	}
	bad := bankRequest("h-2")
	bad.CardNo = "123"
	_, err = c.CreatePayee(ctxT(t), rawSeal(t, c.Sealer(), bad))
	if !errors.As(err, &perr) || perr.HTTPStatus != 400 || perr.Field != "card_number" || perr.ErrorClass() != pos.ClassPermanent {
		t.Fatalf("field error at HTTP 400: %v", err)
	}
	if sim.PayeeCount() != 1 {
		t.Errorf("payees = %d, want 1", sim.PayeeCount())
	}
}

// TestFaults checks each injected fault's class and whether the simulator
// applied the request, and that the bridge's recovery (send again after an
// ambiguous failure, read a duplicate as "already created") ends with
// exactly one payee.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   simfault.Fault
		timeout time.Duration
		class   pos.ErrorClass // ClassUnknown: success
		applied bool
		retry   time.Duration // RetryAfterDelay
	}{
		{name: "Latency", fault: simfault.Fault{Kind: simfault.Latency, Latency: 150 * time.Millisecond}, applied: true},
		{name: "LatencyTimeout", fault: simfault.Fault{Kind: simfault.Latency, Latency: 5 * time.Second}, timeout: 200 * time.Millisecond, class: pos.ClassRetryable},
		{name: "500", fault: simfault.Fault{Kind: simfault.Status5xx}, class: pos.ClassRetryable},
		{name: "503", fault: simfault.Fault{Kind: simfault.Status5xx, Status: 503}, class: pos.ClassRetryable},
		{name: "502", fault: simfault.Fault{Kind: simfault.Status5xx, Status: 502}, class: pos.ClassAmbiguous},
		{name: "429", fault: simfault.Fault{Kind: simfault.Status429}, class: pos.ClassRetryable, retry: time.Second},
		{name: "ResetBeforeRead", fault: simfault.Fault{Kind: simfault.ResetBeforeRead}, class: pos.ClassRetryable},
		{name: "ResetAfterRead", fault: simfault.Fault{Kind: simfault.ResetAfterRead}, class: pos.ClassAmbiguous},
		{name: "ApplyThenDrop", fault: simfault.Fault{Kind: simfault.ApplyThenDrop}, class: pos.ClassAmbiguous, applied: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, c, _ := mustClient(t, payoutsim.Options{}, nil)
			f := tc.fault
			f.Count = 1
			sim.Inject(f)
			sp, err := c.SealPayee(bankRequest("fault-" + tc.name))
			if err != nil {
				t.Fatal(err)
			}
			ctx := ctxT(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			p, err := c.CreatePayee(ctx, sp)
			if got := pos.ClassOf(err); got != tc.class {
				t.Fatalf("class = %s, want %s (err %v)", got, tc.class, err)
			}
			if tc.class == pos.ClassUnknown && (p == nil || p.CustomID == "") {
				t.Fatalf("payee = %+v", p)
			}
			var perr *payout.Error
			if err != nil && !errors.As(err, &perr) {
				t.Fatalf("err %T is not a *payout.Error", err)
			}
			if perr != nil && perr.RetryAfterDelay() != tc.retry {
				t.Errorf("RetryAfterDelay = %v, want %v", perr.RetryAfterDelay(), tc.retry)
			}
			if got := sim.Stats().FaultsFired[f.Kind]; got != 1 {
				t.Errorf("fault fired %d times", got)
			}
			want := 0
			if tc.applied {
				want = 1
			}
			if got := sim.PayeeCount(); got != want {
				t.Errorf("payees after the fault = %d, want %d", got, want)
			}
			if err == nil {
				return
			}
			// The engine sends it again (the fault was for one request).
			_, err2 := c.CreatePayee(ctxT(t), sp)
			switch {
			case tc.applied && !errors.Is(err2, payout.ErrDuplicate):
				t.Errorf("resend after an applied request: %v, want ErrDuplicate", err2)
			case !tc.applied && err2 != nil:
				t.Errorf("resend: %v", err2)
			}
			if got := sim.PayeeCount(); got != 1 {
				t.Errorf("payees after the resend = %d, want exactly 1", got)
			}
		})
	}
}

func TestNoExpectContinue(t *testing.T) {
	// Without "Expect: 100-continue" the body leaves with the headers, so
	// even a reset before the server read it is ambiguous.
	sim, cfg := payoutsim.StartTest(t, payoutsim.Options{})
	cfg.NoExpectContinue = true
	c, err := payout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sim.Inject(simfault.Fault{Kind: simfault.ResetBeforeRead, Count: 1})
	sp, _ := c.SealPayee(stcRequest("nec-1"))
	if _, err := c.CreatePayee(ctxT(t), sp); pos.ClassOf(err) != pos.ClassAmbiguous {
		t.Fatalf("class = %s (%v), want ambiguous", pos.ClassOf(err), err)
	}
}

func TestConcurrentCreates(t *testing.T) {
	sim, c, _ := mustClient(t, payoutsim.Options{}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 10 {
		wg.Go(func() {
			id := fmt.Sprintf("conc-%d", i%5) // each id twice: one wins, one is a duplicate
			sp, err := c.SealPayee(stcRequest(id))
			if err != nil {
				errs <- err
				return
			}
			if _, err := c.CreatePayee(context.Background(), sp); err != nil && !errors.Is(err, payout.ErrDuplicate) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := sim.PayeeCount(); got != 5 {
		t.Errorf("payees = %d, want 5", got)
	}
}

// answerServer answers every request with status and body.
func answerServer(t *testing.T, status int, body string, header map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// cannedClient is a client for the simulator's keys against base.
func cannedClient(t *testing.T, base string) *payout.Client {
	t.Helper()
	_, cfg := payoutsim.StartTest(t, payoutsim.Options{})
	cfg.BaseURL = base
	c, err := payout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAnswerShapes covers answers the simulator does not give: types that
// vary, statuses by number and by text, and broken answers.
func TestAnswerShapes(t *testing.T) {
	type want struct {
		status     payout.PayeeStatus
		statusCode int
		customID   string
		created    int64
	}
	for _, tc := range []struct {
		name string
		data string
		want want
	}{
		{"Reference", `{"customid":"C1","mercustomid":"m","status":4,"statusdesc":"","demand_perfection":["identitypic"],"created_at":1686809574}`,
			want{payout.StatusIncomplete, 4, "C1", 1686809574}},
		{"NumericIDStringStatus", `{"customid":123456,"mercustomid":"m","status":"1","created_at":"1686809574"}`,
			want{payout.StatusNormal, 1, "123456", 1686809574}},
		{"DescWins", `{"customid":"C2","status":4,"statusdesc":"Pending review"}`, want{payout.StatusPending, 4, "C2", 0}},
		{"DescRejected", `{"customid":"C3","status":2,"statusdesc":"Rejected: blurry document"}`, want{payout.StatusRejected, 2, "C3", 0}},
		{"DescBanned", `{"customid":"C4","status":1,"statusdesc":"Banned"}`, want{payout.StatusBanned, 1, "C4", 0}},
		{"DescIncomplete", `{"customid":"C5","status":2,"statusdesc":"Incomplete information"}`, want{payout.StatusIncomplete, 2, "C5", 0}},
		{"DescUnknownTextNumberWins", `{"customid":"C6","status":3,"statusdesc":"تم الرفض"}`, want{payout.StatusRejected, 3, "C6", 0}},
		{"UnknownNumber", `{"customid":"C7","status":9}`, want{payout.StatusUnknown, 9, "C7", 0}},
		{"FloatStatus", `{"customid":"C8","status":5.0,"created_at":1.686809574e9}`, want{payout.StatusBanned, 5, "C8", 1686809574}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"code":200,"message":"Request succeeded.","data":` + tc.data + `,"sensitiveFields":["identity"],"requestId":"r1"}`
			c := cannedClient(t, answerServer(t, 200, body, nil))
			p, err := c.CreatePayee(ctxT(t), payout.SealedPayee{MerCustomID: "m"})
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != tc.want.status || p.StatusCode != tc.want.statusCode || p.CustomID != tc.want.customID || p.RequestID != "r1" {
				t.Errorf("payee = %+v, want %+v", p, tc.want)
			}
			if tc.want.created != 0 && p.CreatedAt.Unix() != tc.want.created {
				t.Errorf("created_at = %v", p.CreatedAt)
			}
		})
	}

	for _, tc := range []struct {
		name   string
		status int
		body   string
		header map[string]string
		class  pos.ErrorClass
		code   int
		field  string
		retry  time.Duration
	}{
		{"NotJSON200", 200, "<html>OK</html>", nil, pos.ClassAmbiguous, 0, "", 0},
		{"NoData", 200, `{"code":200,"message":"Request succeeded."}`, nil, pos.ClassAmbiguous, 200, "", 0},
		{"NoCustomID", 200, `{"code":200,"data":{"status":4}}`, nil, pos.ClassAmbiguous, 200, "", 0},
		{"NoCode", 200, `{"message":"ok","data":{"customid":"1"}}`, nil, pos.ClassAmbiguous, 0, "", 0},
		{"StringCode", 200, `{"code":"400","message":"ibanaccount is invalid"}`, nil, pos.ClassPermanent, 400, "iban", 0},
		{"FieldMember", 200, `{"code":400,"message":"Parameter error","field":"stcaccount"}`, nil, pos.ClassPermanent, 400, "stc_account", 0},
		{"FieldInMessage", 200, `{"code":400,"message":"The cardno field format is wrong"}`, nil, pos.ClassPermanent, 400, "card_number", 0},
		{"Busy", 200, `{"code":503,"message":"System busy"}`, nil, pos.ClassRetryable, 503, "", time.Second},
		{"InternalCode", 200, `{"code":500,"message":"error"}`, nil, pos.ClassRetryable, 500, "", 0},
		{"429RetryAfter", 429, `{"code":429}`, map[string]string{"Retry-After": "7"}, pos.ClassRetryable, 429, "", 7 * time.Second},
		{"ProxyHTML502", 502, "<html>Bad Gateway</html>", nil, pos.ClassAmbiguous, 0, "", 0},
		{"ProxyHTML504", 504, "", nil, pos.ClassAmbiguous, 0, "", 0},
		{"Plain500", 500, "Internal Server Error", nil, pos.ClassRetryable, 0, "", 0},
		{"Forbidden", 403, `{"code":403,"message":"Payees are not enabled for this merchant"}`, nil, pos.ClassPermanent, 403, "", 0},
		{"NotFound", 404, "404 page not found", nil, pos.ClassPermanent, 0, "", 0},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			c := cannedClient(t, answerServer(t, tc.status, tc.body, tc.header))
			_, err := c.CreatePayee(ctxT(t), payout.SealedPayee{MerCustomID: "m"})
			var perr *payout.Error
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v", err)
			}
			if perr.ErrorClass() != tc.class || perr.Code != tc.code || perr.Field != tc.field || perr.HTTPStatus != tc.status {
				t.Errorf("err = %v (code %d field %q), want %s code %d field %q", err, perr.Code, perr.Field, tc.class, tc.code, tc.field)
			}
			if perr.RetryAfterDelay() != tc.retry {
				t.Errorf("RetryAfterDelay = %v, want %v", perr.RetryAfterDelay(), tc.retry)
			}
			if strings.Contains(err.Error(), "<html>") {
				t.Errorf("error quotes the body: %v", err)
			}
		})
	}

	t.Run("EchoedSecretScrubbed", func(t *testing.T) {
		c := cannedClient(t, answerServer(t, 200, `{"code":400,"message":"cardno 4111 1111 1111 1111 / identity 1012345678 invalid; max 19"}`, nil))
		_, err := c.CreatePayee(ctxT(t), payout.SealedPayee{MerCustomID: "m"})
		msg := err.Error()
		if strings.Contains(msg, "1111 1111") || strings.Contains(msg, testIdentity) || !strings.Contains(msg, "max 19") {
			t.Errorf("message not scrubbed as expected: %s", msg)
		}
		var perr *payout.Error
		errors.As(err, &perr)
		re := perr.RequestError()
		if re.Code != "400" || re.Field != "card_number" || strings.Contains(re.Message, testIdentity) {
			t.Errorf("RequestError = %+v", re)
		}
	})
}

func TestConfig(t *testing.T) {
	_, cfg := payoutsim.StartTest(t, payoutsim.Options{})
	cfg.APIKey = "s3cr3t-api-key-value"
	t.Run("Valid", func(t *testing.T) {
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	for name, tc := range map[string]struct {
		mod  func(*payout.Config)
		want string
	}{
		"NoBaseURL":   {func(c *payout.Config) { c.BaseURL = "" }, "base_url is required"},
		"BadBaseURL":  {func(c *payout.Config) { c.BaseURL = "ftp://x" }, "not an http(s) URL"},
		"NoMerchant":  {func(c *payout.Config) { c.MerchantID = "" }, "merchant_id is required"},
		"NoAPIKey":    {func(c *payout.Config) { c.APIKey = " " }, "api_key is required"},
		"NoPubKey":    {func(c *payout.Config) { c.ProviderPublicKeyFile = "" }, "provider_public_key_file is required"},
		"NoPrivKey":   {func(c *payout.Config) { c.MerchantPrivateKeyFile = "" }, "merchant_private_key_file is required"},
		"BadPadding":  {func(c *payout.Config) { c.Padding = "rot13" }, "unknown padding"},
		"APIKeyLines": {func(c *payout.Config) { c.APIKey = "a\r\nX-Evil: 1" }, "one line"},
		"NegTimeout":  {func(c *payout.Config) { c.Timeout = -time.Second }, "timeout"},
	} {
		t.Run("Err"+name, func(t *testing.T) {
			bad := cfg
			tc.mod(&bad)
			err := bad.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
			if _, err := payout.New(bad); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	t.Run("KeyFiles", func(t *testing.T) {
		dir := t.TempDir()
		missing := cfg
		missing.ProviderPublicKeyFile = filepath.Join(dir, "nope.pem")
		if _, err := payout.New(missing); err == nil || !strings.Contains(err.Error(), "provider_public_key_file") {
			t.Errorf("missing key file: %v", err)
		}
		swapped := cfg
		swapped.ProviderPublicKeyFile, swapped.MerchantPrivateKeyFile = cfg.MerchantPrivateKeyFile, cfg.ProviderPublicKeyFile
		if _, err := payout.New(swapped); !errors.Is(err, crypto.ErrKeyBlockType) {
			t.Errorf("swapped key files: %v", err)
		}
		keys, _ := payoutsim.ProcessKeys()
		own := cfg
		own.ProviderPublicKeyFile = filepath.Join(dir, "own.pub.pem")
		pub, _ := crypto.MarshalRSAPublicKeyPEM(&keys.Merchant.PublicKey)
		_ = os.WriteFile(own.ProviderPublicKeyFile, pub, 0o644)
		if _, err := payout.New(own); err == nil || !strings.Contains(err.Error(), "merchant's own key") {
			t.Errorf("merchant key as the provider's: %v", err)
		}
	})
	t.Run("Redacted", func(t *testing.T) {
		c, err := payout.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg, "client", c.String())
		dumps := []string{logs.String()}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			dumps = append(dumps, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, c), fmt.Sprintf(verb, c.Sealer()))
		}
		for _, d := range dumps {
			if strings.Contains(d, cfg.APIKey) {
				t.Fatalf("dump shows the API key: %s", d)
			}
		}
		if !strings.Contains(fmt.Sprint(cfg), "[redacted]") {
			t.Errorf("Config String = %s", cfg)
		}
	})
}

func TestPayeeHash(t *testing.T) {
	_, c, _ := mustClient(t, payoutsim.Options{}, nil)
	a, b := bankRequest("h-1"), bankRequest("h-1")
	if c.PayeeHash(a) != c.PayeeHash(b) {
		t.Error("equal requests hash differently")
	}
	b.CardNo = "4111111111111112"
	if c.PayeeHash(a) == c.PayeeHash(b) {
		t.Error("different card numbers hash the same")
	}
	sar := a
	sar.Currency = "SAR"
	if c.PayeeHash(a) != c.PayeeHash(sar) {
		t.Error("the default currency hashes differently from SAR")
	}
	// Field boundaries count: moving text between fields changes the hash.
	x, y := a, a
	x.NameEn, x.NameAr = "ab", "c"
	y.NameEn, y.NameAr = "a", "bc"
	if c.PayeeHash(x) == c.PayeeHash(y) {
		t.Error("field boundaries are not part of the hash")
	}
	if h := c.PayeeHash(a); len(h) != 64 || strings.Contains(h, testCardNo) {
		t.Errorf("hash = %q", h)
	}
}
