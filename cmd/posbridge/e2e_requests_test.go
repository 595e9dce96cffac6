//go:build !windows

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/hitpay/hitpaysim"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestRequestsEndToEnd runs the real binary four times over: posbridge
// itself and the Hesabe, HitPay and payout simulators as processes. It
// registers customers while the HitPay simulator's process is dead and
// payees while the payout simulator resets every connection, then checks
// each reaches its gateway exactly once when it is back.
func TestRequestsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	bin := buildBinary(t)
	hesabeAddr, hitpayAddr, payoutAddr := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	startProc(t, bin, "sim", "hesabe", "--listen", hesabeAddr)
	hitpay := startProc(t, bin, "sim", "hitpay", "--listen", hitpayAddr)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	startProc(t, bin, "sim", "payout", "--listen", payoutAddr, "--keys", keys)
	for _, a := range []string{hesabeAddr, hitpayAddr, payoutAddr} {
		waitFor(t, "simulator "+a, 10*time.Second, func() bool { return dialable(a) })
	}
	waitFor(t, "payout key files", 5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(keys, "merchant.key.pem"))
		return err == nil
	})

	apiAddr, diagAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	const token = "e2e-token-0123456789abcdef"
	m := hesabesim.SandboxMerchant()
	cfg := fmt.Sprintf(`data_dir: %s
hesabe:
  merchant_url: http://%[2]s/api
  payment_url: http://%[2]s/api
  merchant_code: "%s"
  access_code: %s
  secret_key: %s
  iv_key: %s
  username: %s
  password: "%s"
  timeout: 3s
api: {listen: %s, token: %s}
diagnostics: {listen: %s}
mqtt: {embedded: {enabled: false}}
terminals:
  - {id: "29708454", link: none}
requests: {customers: hitpay, installments: true, payees: true}
hitpay: {url: "http://%s", api_key: %s, timeout: 3s}
payout:
  url: http://%s
  merchant_id: %s
  api_key: %s
  provider_public_key_file: %s
  merchant_private_key_file: %s
  timeout: 3s
log: {level: debug}
`, filepath.Join(dir, "data"), hesabeAddr, m.Code, m.AccessCode, m.SecretKey, m.IVKey, m.Username, m.Password,
		apiAddr, token, diagAddr, hitpayAddr, hitpaysim.DefaultAPIKey, payoutAddr, payoutsim.DefaultMerchantID,
		payoutsim.DefaultAPIKey, filepath.Join(keys, "provider.pub.pem"), filepath.Join(keys, "merchant.key.pem"))
	cfgPath := filepath.Join(dir, "posbridge.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon := startProc(t, bin, "run", "--config", cfgPath)
	waitFor(t, "till API", 15*time.Second, func() bool { return dialable(apiAddr) })

	do := func(method, url, key, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if strings.Contains(url, apiAddr) {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, url, err, raw)
			}
		}
		return resp.StatusCode
	}
	api := "http://" + apiAddr

	// HitPay's process dies; customers are accepted and wait.
	if err := hitpay.stop(syscall.SIGKILL, 5*time.Second); err == nil {
		t.Fatal("the HitPay simulator exited cleanly on SIGKILL?")
	}
	// The payout provider resets every connection before reading it.
	if code := do(http.MethodPost, "http://"+payoutAddr+"/_sim/faults", "", `{"kind":"reset-before-read"}`, nil); code/100 != 2 {
		t.Fatalf("inject a fault: %d", code)
	}
	var ids []string
	for i := range 3 {
		var r pos.Request
		body := fmt.Sprintf(`{"name":"عميل %d","email":"c%d@example.com","mobile_number":"9123456%d","country_code":"65"}`, i, i, i)
		if code := do(http.MethodPost, api+"/v1/customers", fmt.Sprint("cust-", i), body, &r); code != http.StatusAccepted {
			t.Fatalf("customer %d: %d", i, code)
		}
		ids = append(ids, "/v1/customers/"+r.ID)
	}
	for i := range 2 {
		var r pos.Request
		body := fmt.Sprintf(`{"merchant_customer_id":"P-%d","name_ar":"محمد","identity":"10123456%02d","stc_account":"05123456%02d"}`, i, i, i)
		if code := do(http.MethodPost, api+"/v1/payees", fmt.Sprint("payee-", i), body, &r); code != http.StatusAccepted {
			t.Fatalf("payee %d: %d", i, code)
		}
		ids = append(ids, "/v1/payees/"+r.ID)
	}
	var inst pos.Request
	batch := `{"invoices":[{"amount":"30.000","expires_at":"` + time.Now().Add(72*time.Hour).Format(time.DateOnly) +
		`","reference_number":"E2E-1","invoice_type":"0","invoice_sub_type":"3","description":"Sofa","customer_name":"سارة","mobile_number":"98765432","payment_types":[1]}]}`
	if code := do(http.MethodPost, api+"/v1/installments", "inst-1", batch, &inst); code != http.StatusAccepted {
		t.Fatalf("installments: %d", code)
	}
	time.Sleep(time.Second)
	for _, id := range ids {
		var r pos.Request
		do(http.MethodGet, api+id, "", "", &r)
		if r.State != pos.RequestQueued && r.State != pos.RequestSubmitting {
			t.Fatalf("%s during the outage: %s %+v", id, r.State, r.Error)
		}
	}

	// Both come back: a new HitPay process on the same port, the fault cleared.
	startProc(t, bin, "sim", "hitpay", "--listen", hitpayAddr)
	waitFor(t, "hitpay again", 10*time.Second, func() bool { return dialable(hitpayAddr) })
	if code := do(http.MethodDelete, "http://"+payoutAddr+"/_sim/faults", "", "", nil); code/100 != 2 {
		t.Fatalf("clear faults: %d", code)
	}
	for _, id := range append(ids, "/v1/installments/"+inst.ID) {
		waitFor(t, id+" delivered", 30*time.Second, func() bool {
			var r pos.Request
			do(http.MethodGet, api+id, "", "", &r)
			if r.State.Final() && r.State != pos.RequestSucceeded {
				t.Fatalf("%s ended %s: %+v", id, r.State, r.Error)
			}
			return r.State == pos.RequestSucceeded
		})
	}
	var hs hitpaysim.Stats
	do(http.MethodGet, "http://"+hitpayAddr+"/_sim/stats", "", "", &hs)
	var ps payoutsim.Stats
	do(http.MethodGet, "http://"+payoutAddr+"/_sim/stats", "", "", &ps)
	if hs.Customers != 3 || ps.Payees != 2 {
		t.Fatalf("at the gateways: %d customers (want 3), %d payees (want 2)", hs.Customers, ps.Payees)
	}
	// The identity and STC numbers never reached the bridge's disk or log.
	if err := daemon.stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("posbridge did not stop cleanly: %v", err)
	}
	db, err := os.ReadFile(filepath.Join(dir, "data", "posbridge.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		for _, secret := range []string{fmt.Sprintf("10123456%02d", i), fmt.Sprintf("05123456%02d", i)} {
			if strings.Contains(string(db), secret) || strings.Contains(daemon.output(), secret) {
				t.Fatalf("%s is in plaintext in the database or the log", secret)
			}
		}
	}
}
