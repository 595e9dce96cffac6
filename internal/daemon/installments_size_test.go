package daemon_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestInstallmentBatchAtMaxSize: an installment batch of
// requests.max_batch invoices (100, Hesabe's own limit) is taken by the
// till API. The API's 16 KiB body limit, right for a checkout, refused
// such a batch with 413 from about 45 invoices on, although the spec
// allows 100.
func TestInstallmentBatchAtMaxSize(t *testing.T) {
	s := startStack(t)
	if s.Config.Requests.MaxBatch != 100 {
		t.Fatalf("requests.max_batch = %d, this test sends 100", s.Config.Requests.MaxBatch)
	}
	type item struct {
		Title    string `json:"title"`
		Rate     string `json:"rate"`
		Quantity int    `json:"quantity"`
		Amount   string `json:"amount"`
	}
	type invoice struct {
		Amount         string `json:"amount"`
		ExpiresAt      string `json:"expires_at"`
		Reference      string `json:"reference_number"`
		InvoiceType    string `json:"invoice_type"`
		InvoiceSubType string `json:"invoice_sub_type"`
		Language       string `json:"language"`
		Description    string `json:"description"`
		CustomerName   string `json:"customer_name"`
		Mobile         string `json:"mobile_number"`
		Email          string `json:"customer_email"`
		PaymentTypes   []int  `json:"payment_types"`
		Items          []item `json:"items"`
	}
	var batch struct {
		TillRef  string    `json:"till_ref"`
		Invoices []invoice `json:"invoices"`
	}
	batch.TillRef = "R-BATCH"
	expires := time.Now().Add(72 * time.Hour).Format(time.DateOnly)
	for i := range 100 {
		batch.Invoices = append(batch.Invoices, invoice{Amount: "150.000", ExpiresAt: expires, Reference: fmt.Sprintf("INV-%04d", i),
			InvoiceType: "1", InvoiceSubType: "0", Language: "ar", Description: "Sofa, 3 seats, delivered",
			CustomerName: "أحمد المنصوري", Mobile: "12345678", Email: "ahmed@example.com", PaymentTypes: []int{1, 2},
			Items: []item{{Title: "Sofa", Rate: "150.000", Quantity: 1, Amount: "150.000"}}})
	}
	body, _ := json.Marshal(batch)
	var got struct {
		pos.Request
		Error struct {
			Code    pos.Code `json:"code"`
			Field   string   `json:"field"`
			Message string   `json:"message"`
		} `json:"error"`
	}
	resp := call(t, s, http.MethodPost, "/v1/installments", "batch-100", string(body), &got)
	if resp.StatusCode != http.StatusAccepted || got.ID == "" {
		t.Fatalf("a batch of 100 invoices (%d bytes): %d %+v", len(body), resp.StatusCode, got.Error)
	}
	// A batch's body is still bounded, and a customer's as before.
	batch.Invoices[0].Description = strings.Repeat("x", 1<<20)
	body, _ = json.Marshal(batch)
	got.Error.Code = ""
	if resp := call(t, s, http.MethodPost, "/v1/installments", "batch-huge", string(body), &got); resp.StatusCode != http.StatusRequestEntityTooLarge || got.Error.Field != "body" {
		t.Fatalf("a batch of %d bytes: %d %+v", len(body), resp.StatusCode, got.Error)
	}
	cust := `{"name":"` + strings.Repeat("x", 20<<10) + `","email":"a@example.com","mobile_number":"12345678"}`
	if resp := call(t, s, http.MethodPost, "/v1/customers", "cust-huge", cust, &got); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a customer of %d bytes: %d %+v", len(cust), resp.StatusCode, got.Error)
	}
}
