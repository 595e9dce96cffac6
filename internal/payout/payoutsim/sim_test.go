package payoutsim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/simfault"
)

func stcPayee(id string) payout.PayeeRequest {
	return payout.PayeeRequest{NameEn: "Sara", NameAr: "سارة", MerchantCustomerID: id, Identity: "2098765432", STCAccount: "0551234567"}
}

func mustCreate(t *testing.T, c *payout.Client, r payout.PayeeRequest) *payout.Payee {
	t.Helper()
	sp, err := c.SealPayee(r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := c.CreatePayee(ctx, sp)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newClient(t *testing.T, cfg payout.Config) *payout.Client {
	t.Helper()
	c, err := payout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func call(t *testing.T, method, url, body string) (int, []byte) {
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
	return resp.StatusCode, b
}

func TestAdminAPI(t *testing.T) {
	sim, cfg := payoutsim.StartTest(t, payoutsim.Options{})
	c := newClient(t, cfg)
	p := mustCreate(t, c, stcPayee("adm-1"))

	t.Run("Payees", func(t *testing.T) {
		code, body := call(t, "GET", sim.URL()+"/_sim/payees", "")
		if code != 200 || !bytes.Contains(body, []byte(`"customid":"`+p.CustomID+`"`)) {
			t.Fatalf("GET payees = %d %s", code, body)
		}
		for _, secret := range []string{"2098765432", "0551234567"} {
			if bytes.Contains(body, []byte(secret)) {
				t.Errorf("admin payee list shows %s: %s", secret, body)
			}
		}
		if !bytes.Contains(body, []byte(`"stcaccount":"****4567"`)) {
			t.Errorf("masked STC account missing: %s", body)
		}
	})
	t.Run("Status", func(t *testing.T) {
		for _, st := range []string{"pending", "normal", "banned"} {
			code, body := call(t, "POST", sim.URL()+"/_sim/payees/"+p.CustomID+"/status", `{"status":"`+st+`"}`)
			if code != 200 {
				t.Fatalf("set %s = %d %s", st, code, body)
			}
			got, _ := sim.PayeeByMerchantID("adm-1")
			if string(got.Status) != st {
				t.Errorf("status = %s, want %s", got.Status, st)
			}
			if len(got.DemandPerfection) != 0 {
				t.Errorf("still demanding %v once %s", got.DemandPerfection, st)
			}
		}
		if code, _ := call(t, "POST", sim.URL()+"/_sim/payees/"+p.CustomID+"/status", `{"status":"approved-ish"}`); code != 400 {
			t.Errorf("unknown status: %d", code)
		}
		if code, _ := call(t, "POST", sim.URL()+"/_sim/payees/nope/status", `{"status":"normal"}`); code != 404 {
			t.Errorf("unknown payee: %d", code)
		}
		if code, _ := call(t, "POST", sim.URL()+"/_sim/payees/"+p.CustomID+"/status", `not json`); code != 400 {
			t.Errorf("bad body: %d", code)
		}
		// The answer to a duplicate carries the current status.
		sp, _ := c.SealPayee(stcPayee("adm-1"))
		_, err := c.CreatePayee(context.Background(), sp)
		var perr *payout.Error
		if !errors.As(err, &perr) || !errors.Is(err, payout.ErrDuplicate) || perr.CustomID != p.CustomID {
			t.Errorf("duplicate = %v", err)
		}
	})
	t.Run("Faults", func(t *testing.T) {
		code, body := call(t, "POST", sim.URL()+"/_sim/faults", `{"spec":"5xx=503:1@/payee/custom"}`)
		if code != 200 || !bytes.Contains(body, []byte(`"status":503`)) {
			t.Fatalf("inject = %d %s", code, body)
		}
		sp, _ := c.SealPayee(stcPayee("adm-2"))
		if _, err := c.CreatePayee(context.Background(), sp); pos.ClassOf(err) != pos.ClassRetryable {
			t.Errorf("after injecting 503: %v", err)
		}
		if len(sim.Faults()) != 0 {
			t.Errorf("a one-shot fault is still armed: %v", sim.Faults())
		}
		call(t, "POST", sim.URL()+"/_sim/faults", `{"spec":"429"}`)
		if code, _ := call(t, "DELETE", sim.URL()+"/_sim/faults", ""); code != 200 || len(sim.Faults()) != 0 {
			t.Errorf("clear = %d, armed %v", code, sim.Faults())
		}
		if code, _ := call(t, "POST", sim.URL()+"/_sim/faults", `{"spec":"malformed-hex"}`); code != 400 {
			t.Errorf("a Hesabe-only fault kind was accepted: %d", code)
		}
	})
	t.Run("Stats", func(t *testing.T) {
		code, body := call(t, "GET", sim.URL()+"/_sim/stats", "")
		var st payoutsim.Stats
		if err := json.Unmarshal(body, &st); code != 200 || err != nil {
			t.Fatalf("stats = %d %s", code, body)
		}
		if st.Payees != 1 || st.Requests[payout.PathCreatePayee] != 3 || st.FaultsFired[simfault.Status5xx] != 1 {
			t.Errorf("stats = %+v", st)
		}
	})
}

func TestRefusesWhatDoesNotOpen(t *testing.T) {
	sim, cfg := payoutsim.StartTest(t, payoutsim.Options{})
	c := newClient(t, cfg)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, _ := crypto.NewSealer(&other.PublicKey, "")
	oaep, _ := crypto.NewSealer(sim.ProviderPublicKey(), crypto.OAEPSHA256)
	good, _ := c.SealPayee(stcPayee("ref-1"))
	seal := func(s *crypto.Sealer, v string) string {
		out, err := s.Seal(v)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for name, tc := range map[string]struct {
		mod   func(*payout.SealedPayee)
		field string
	}{
		"Plaintext":    {func(p *payout.SealedPayee) { p.Identity = "2098765432" }, "identity"},
		"OtherKey":     {func(p *payout.SealedPayee) { p.Identity = seal(wrongKey, "2098765432") }, "identity"},
		"OtherPadding": {func(p *payout.SealedPayee) { p.STCAccount = seal(oaep, "0551234567") }, "stc_account"},
		"PlainSTC":     {func(p *payout.SealedPayee) { p.STCAccount = "0551234567" }, "stc_account"},
		"PlainCard": {func(p *payout.SealedPayee) {
			p.STCAccount, p.BankCode, p.IBANAccount, p.CardNo = "", "RJHI", "SA00", "4111111111111111"
		}, "card_number"},
		"UnknownField":    {func(p *payout.SealedPayee) { p.OTPAppName = "x" }, ""},
		"TruncatedSealed": {func(p *payout.SealedPayee) { p.Identity = p.Identity[:200] }, "identity"},
	} {
		t.Run(name, func(t *testing.T) {
			sp := good
			sp.MerCustomID = "ref-" + name
			tc.mod(&sp)
			body, _ := json.Marshal(sp)
			if name == "UnknownField" {
				body = bytes.Replace(body, []byte(`"otpappname"`), []byte(`"otp_app"`), 1)
				code, answer := postRaw(t, sim, cfg, body)
				if code != 200 || !bytes.Contains(answer, []byte(`"code":400`)) || !bytes.Contains(answer, []byte("otp_app")) {
					t.Fatalf("unknown field: %d %s", code, answer)
				}
				return
			}
			_, err := c.CreatePayee(context.Background(), sp)
			var perr *payout.Error
			if !errors.As(err, &perr) || perr.Code != payout.CodeInvalidParam || perr.Field != tc.field {
				t.Fatalf("err = %v, want code 400 on %s", err, tc.field)
			}
		})
	}
	if n := sim.PayeeCount(); n != 0 {
		t.Errorf("payees = %d, want 0", n)
	}
}

// postRaw posts body to the create endpoint with cfg's credentials.
func postRaw(t *testing.T, sim *payoutsim.Server, cfg payout.Config, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", sim.URL()+payout.PathCreatePayee, bytes.NewReader(body))
	req.Header.Set("X-Merchant-Id", cfg.MerchantID)
	req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestRawAnswerShape(t *testing.T) {
	sim, cfg := payoutsim.StartTest(t, payoutsim.Options{})
	c := newClient(t, cfg)
	sp, _ := c.SealPayee(stcPayee("shape-1"))
	body, _ := json.Marshal(sp)
	code, answer := postRaw(t, sim, cfg, body)
	var env struct {
		Code            int            `json:"code"`
		Message         string         `json:"message"`
		Data            map[string]any `json:"data"`
		SensitiveFields []string       `json:"sensitiveFields"`
		RequestID       string         `json:"requestId"`
	}
	if err := json.Unmarshal(answer, &env); code != 200 || err != nil {
		t.Fatalf("answer = %d %s", code, answer)
	}
	if env.Code != 200 || env.Message != "Request succeeded." || env.RequestID == "" || len(env.SensitiveFields) != 5 {
		t.Errorf("envelope = %+v", env)
	}
	for _, k := range []string{"customid", "mercustomid", "status", "statusdesc", "demand_perfection", "created_at", "identity", "stcaccount"} {
		if _, ok := env.Data[k]; !ok {
			t.Errorf("data lacks %s: %s", k, answer)
		}
	}
	if env.Data["status"] != float64(4) || env.Data["statusdesc"] != "incomplete" {
		t.Errorf("status = %v %v", env.Data["status"], env.Data["statusdesc"])
	}
	if s, _ := env.Data["identity"].(string); len(s) != 344 || strings.Contains(string(answer), "2098765432") {
		t.Errorf("identity not sealed in the answer: %s", answer)
	}
}

func TestOptionsKeysAndPadding(t *testing.T) {
	provider, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	merchant, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := payoutsim.Start("127.0.0.1:0", payoutsim.Options{
		ProviderKey: provider, MerchantPublicKey: &merchant.PublicKey, Padding: crypto.OAEPSHA256,
		MerchantID: "M-77", APIKey: "k-77",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	if sim.MerchantPrivateKey() != nil {
		t.Error("the simulator claims a merchant private key it was not given")
	}
	if _, err := sim.ClientConfig(t.TempDir()); err == nil {
		t.Fatal("ClientConfig without the merchant's private key succeeded")
	}
	pub, priv, err := payoutsim.WriteKeyFiles(t.TempDir(), &provider.PublicKey, merchant)
	if err != nil {
		t.Fatal(err)
	}
	cfg := payout.Config{BaseURL: sim.URL(), MerchantID: "M-77", APIKey: "k-77",
		ProviderPublicKeyFile: pub, MerchantPrivateKeyFile: priv, Padding: crypto.OAEPSHA256}
	c := newClient(t, cfg)
	p := mustCreate(t, c, stcPayee("oaep-1"))
	if got, err := c.OpenField(p.Sealed["identity"]); err != nil || got != "2098765432" {
		t.Errorf("OAEP identity opens to %q, %v", got, err)
	}
	// A client on the other padding: the provider cannot open its fields.
	cfg.Padding = crypto.PKCS1v15
	sp, _ := newClient(t, cfg).SealPayee(stcPayee("oaep-2"))
	_, err = c.CreatePayee(context.Background(), sp)
	var perr *payout.Error
	if !errors.As(err, &perr) || perr.Field != "identity" || !strings.Contains(perr.Message, "could not be decrypted") {
		t.Errorf("mismatched padding: %v", err)
	}
}

func TestCloseEndsLatency(t *testing.T) {
	sim, cfg := payoutsim.StartTest(t, payoutsim.Options{})
	c := newClient(t, cfg)
	sim.Inject(simfault.Fault{Kind: simfault.Latency, Latency: time.Minute})
	sp, _ := c.SealPayee(stcPayee("close-1"))
	done := make(chan error, 1)
	go func() {
		_, err := c.CreatePayee(context.Background(), sp)
		done <- err
	}()
	// Wait until the request is in the handler, then close.
	for deadline := time.Now().Add(5 * time.Second); sim.Stats().Requests[payout.PathCreatePayee] == 0; {
		if time.Now().After(deadline) {
			t.Fatal("request never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	if err := sim.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v with a request sleeping", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Log("request finished before the close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client call did not end after Close")
	}
}
