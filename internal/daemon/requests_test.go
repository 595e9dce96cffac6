package daemon_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/requests"
)

// call makes one till API call and decodes the answer into out (if not nil).
func call(t *testing.T, s *demo.Stack, method, path, key, body string, out any) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, s.Daemon.APIURL()+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp
}

// TestRequestsThroughTheAPI: a customer and an installment batch through
// the real daemon's till API, to the simulator and back.
func TestRequestsThroughTheAPI(t *testing.T) {
	s := startStack(t)
	body := `{"name":"أحمد المنصوري","email":"ahmed@example.com","mobile_number":"12345678","till_ref":"R-9"}`
	var created pos.Request
	resp := call(t, s, http.MethodPost, "/v1/customers", "cust-1", body, &created)
	if resp.StatusCode != http.StatusAccepted || created.ID == "" || created.Kind != pos.KindCustomer ||
		resp.Header.Get("Location") != "/v1/customers/"+created.ID {
		t.Fatalf("create: %d %+v %q", resp.StatusCode, created, resp.Header.Get("Location"))
	}
	var again pos.Request
	resp = call(t, s, http.MethodPost, "/v1/customers", "cust-1", body, &again)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Idempotent-Replayed") != "true" || again.ID != created.ID {
		t.Fatalf("retry: %d %+v", resp.StatusCode, again)
	}
	final := func(path string) pos.Request {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var r pos.Request
			if resp := call(t, s, http.MethodGet, path, "", "", &r); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			if r.State.Final() {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still %s", path, r.State)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	got := final("/v1/customers/" + created.ID)
	var cr requests.CustomerResult
	if err := json.Unmarshal(got.Result, &cr); err != nil || got.State != pos.RequestSucceeded ||
		cr.Name != "أحمد المنصوري" || cr.CustomerID == "" || got.TillRef != "R-9" {
		t.Fatalf("customer %+v, result %+v, %v", got, cr, err)
	}
	if n := len(s.Sim.Customers()); n != 1 {
		t.Fatalf("the simulator has %d customers", n)
	}

	batch := `{"invoices":[{"amount":"150.000","expires_at":"` + time.Now().Add(72*time.Hour).Format(time.DateOnly) +
		`","reference_number":"INV-9","invoice_type":"0","invoice_sub_type":"3","description":"Sofa","customer_name":"سارة","mobile_number":"98765432","payment_types":[1,2]}]}`
	var inst pos.Request
	if resp := call(t, s, http.MethodPost, "/v1/installments", "inst-1", batch, &inst); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("installments: %d", resp.StatusCode)
	}
	got = final("/v1/installments/" + inst.ID)
	var ir requests.InstallmentsResult
	if err := json.Unmarshal(got.Result, &ir); err != nil || got.State != pos.RequestSucceeded || len(ir.Invoices) != 1 || ir.Invoices[0].URL == "" {
		t.Fatalf("installments %+v, result %+v, %v", got, ir, err)
	}

	// A customer id is not an installment batch; lists are per kind.
	if resp := call(t, s, http.MethodGet, "/v1/installments/"+created.ID, "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a customer read as installments: %d", resp.StatusCode)
	}
	var list struct {
		Customers []pos.Request `json:"customers"`
	}
	if call(t, s, http.MethodGet, "/v1/customers", "", "", &list); len(list.Customers) != 1 || list.Customers[0].ID != created.ID {
		t.Fatalf("customer list %+v", list)
	}
	// Finished requests cannot be canceled.
	if resp := call(t, s, http.MethodPost, "/v1/customers/"+created.ID+"/cancel", "", "", nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("cancel a delivered customer: %d", resp.StatusCode)
	}

	// Errors: the field, and payees are off in this configuration.
	var eb struct {
		Error struct {
			Code  pos.Code `json:"code"`
			Field string   `json:"field"`
		} `json:"error"`
	}
	resp = call(t, s, http.MethodPost, "/v1/customers", "cust-2", `{"name":"x","email":"x@example.com","mobile_number":"12"}`, &eb)
	if resp.StatusCode != http.StatusBadRequest || eb.Error.Field != "mobile_number" {
		t.Fatalf("bad mobile: %d %+v", resp.StatusCode, eb)
	}
	resp = call(t, s, http.MethodPost, "/v1/customers", "", body, &eb)
	if resp.StatusCode != http.StatusBadRequest || eb.Error.Field != "Idempotency-Key" {
		t.Fatalf("no key: %d %+v", resp.StatusCode, eb)
	}
	resp = call(t, s, http.MethodPost, "/v1/payees", "p-1", `{"merchant_customer_id":"C","identity":"1","stc_account":"0512345678"}`, &eb)
	if resp.StatusCode != http.StatusNotFound || eb.Error.Code != pos.ENotFound {
		t.Fatalf("payees when not configured: %d %+v", resp.StatusCode, eb)
	}
}
