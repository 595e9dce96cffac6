package api_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
	"github.com/posbridge/posbridge/internal/requests"
)

// TestOpenAPIExamplesAreAccepted: every request body example in
// docs/openapi.yaml passes the checks its endpoint makes, so a till
// developer who starts from one gets a 202. The installment batch example
// lacked the required description and answered 400
// invoices[0].description.
func TestOpenAPIExamplesAreAccepted(t *testing.T) {
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]struct {
			OperationID string `yaml:"operationId"`
			RequestBody struct {
				Content map[string]struct {
					Example any `yaml:"example"`
				} `yaml:"content"`
			} `yaml:"requestBody"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	example := func(path string) []byte {
		t.Helper()
		ex := spec.Paths[path]["post"].RequestBody.Content["application/json"].Example
		if ex == nil {
			t.Fatalf("POST %s has no request example", path)
		}
		js, err := json.Marshal(ex)
		if err != nil {
			t.Fatalf("POST %s example: %v", path, err)
		}
		return js
	}

	if _, err := api.DecodeCreate(example("/v1/checkouts"), "k-1"); err != nil {
		t.Errorf("createCheckout example: %v", err)
	}
	// The customer example is Hesabe's (HitPay also needs country_code).
	if _, err := (requests.HesabeCustomers{}).Prepare(example("/v1/customers"), time.Now()); err != nil {
		t.Errorf("createCustomer example: %v", err)
	}

	// The batch is checked as on a day well before its expiry, so the
	// example's date does not make the test fail as it comes near.
	batch := example("/v1/installments")
	var in struct {
		Invoices []struct {
			ExpiresAt string `json:"expires_at"`
		} `json:"invoices"`
	}
	if err := json.Unmarshal(batch, &in); err != nil || len(in.Invoices) == 0 {
		t.Fatalf("createInstallments example: %v %s", err, batch)
	}
	expires, err := time.Parse(time.DateOnly, in.Invoices[0].ExpiresAt)
	if err != nil {
		t.Fatalf("createInstallments example: expires_at: %v", err)
	}
	if _, err := (requests.HesabeInstallments{}).Prepare(batch, expires.AddDate(0, -1, 0)); err != nil {
		t.Errorf("createInstallments example: %v", err)
	}

	if _, err := payees(t).Prepare(example("/v1/payees"), time.Now()); err != nil {
		t.Errorf("createPayee example: %v", err)
	}
}

// payees is the payee handler with the simulator's test keys.
func payees(t *testing.T) engine.RequestHandler {
	t.Helper()
	keys, err := payoutsim.ProcessKeys()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, err := payoutsim.WriteKeyFiles(t.TempDir(), &keys.Provider.PublicKey, keys.Merchant)
	if err != nil {
		t.Fatal(err)
	}
	c, err := payout.New(payout.Config{BaseURL: "http://127.0.0.1:1", MerchantID: "M-1", APIKey: "test-key",
		ProviderPublicKeyFile: pub, MerchantPrivateKeyFile: priv})
	if err != nil {
		t.Fatal(err)
	}
	return requests.Payees{Client: c}
}
