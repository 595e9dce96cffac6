package hesabesim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
)

// The client-driven tests (internal/hesabe/validate_test.go) hold the
// simulator's rules to the bridge's validator. These cover what the client
// cannot send: wire shapes it never produces, and dates at Kuwait's
// midnight, where the simulator's clock cannot be set.

// decode reads JSON as the simulator reads a decrypted payload.
func decode(t *testing.T, js string) map[string]any {
	t.Helper()
	var p map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(js)))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

const wireInvoice = `{"amount":"150.000","expiresAt":"2031-02-03","referenceNumber":"R1","merchantCode":"842217",
 "invoiceType":"1","invoiceSubType":"0","language":"ar","description":"أقساط","customerName":"أحمد المنصوري",
 "mobileNumber":"12345678","countryCode":"965","customerEmail":"ahmed@example.com","allocatePayType":"1,2",
 "itemsList":[{"itemTitle":"TV","rate":"50.000","quantity":3,"amount":"150.000"}]}`

// invoiceWith returns wireInvoice with the fields of patch set (a JSON
// null deletes one).
func invoiceWith(t *testing.T, patch string) map[string]any {
	t.Helper()
	inv := decode(t, wireInvoice)
	for k, v := range decode(t, patch) {
		if v == nil {
			delete(inv, k)
			continue
		}
		inv[k] = v
	}
	return inv
}

func TestKuwaitDate(t *testing.T) {
	for _, tc := range []struct {
		now  time.Time
		want string
	}{
		{time.Date(2026, 5, 1, 20, 59, 59, 0, time.UTC), "2026-05-01"},
		{time.Date(2026, 5, 1, 21, 0, 0, 0, time.UTC), "2026-05-02"},
		{time.Date(2026, 5, 1, 22, 30, 0, 0, time.UTC), "2026-05-02"},
		{time.Date(2026, 5, 1, 16, 30, 0, 0, time.FixedZone("EST", -5*3600)), "2026-05-02"},
		{time.Date(2026, 12, 31, 21, 0, 0, 0, time.UTC), "2027-01-01"},
	} {
		if got := kuwaitDate(tc.now); got != tc.want {
			t.Errorf("kuwaitDate(%v) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

// TestEMIExpiryKuwaitMidnight: from 00:00 to 03:00 in Kuwait the UTC date
// is still yesterday's, and today's date must already be refused.
func TestEMIExpiryKuwaitMidnight(t *testing.T) {
	now := time.Date(2026, 5, 1, 22, 30, 0, 0, time.UTC) // 01:30 on 2 May in Kuwait
	for _, tc := range []struct {
		expires string
		valid   bool
	}{{"2026-05-01", false}, {"2026-05-02", false}, {"2026-05-03", true}} {
		inv := invoiceWith(t, `{"expiresAt":"`+tc.expires+`"}`)
		msg, valid := validateEMI(0, inv, kuwaitDate(now), map[string]int{})
		if valid != tc.valid {
			t.Errorf("expiresAt %s at %v: valid = %v (%s), want %v", tc.expires, now, valid, msg, tc.valid)
		}
	}
}

func TestValidateEMIWire(t *testing.T) {
	const today = "2026-05-01"
	for _, tc := range []struct {
		name  string
		patch string
		msg   string // "" when valid
	}{
		{"OK", `{}`, ""},
		{"OKNoLanguage", `{"language":null}`, ""},
		{"OKNoCountryCode", `{"countryCode":null}`, ""}, // defaults to 965
		{"OKNoEmail", `{"customerEmail":null}`, ""},
		{"OKBlankEmail", `{"customerEmail":"  "}`, ""},
		{"OKNoItems", `{"itemsList":null}`, ""},
		{"OKEmptyItems", `{"itemsList":[]}`, ""},
		{"OKNumericTypes", `{"invoiceType":1,"invoiceSubType":0}`, ""},
		{"OKItemAmountsAsNumbers", `{"itemsList":[{"itemTitle":"TV","rate":50,"quantity":3,"amount":150.0}]}`, ""},
		{"OKQuantityAsString", `{"itemsList":[{"itemTitle":"TV","rate":"50.000","quantity":"3","amount":"150.000"}]}`, ""},

		{"ErrAmountNumber", `{"amount":150.000}`, "The invoices.0.amount must be a string with 3 decimals."},
		{"ErrAmountTwoDecimals", `{"amount":"150.00"}`, "The invoices.0.amount must be a string with 3 decimals."},
		{"ErrAmountFourDecimals", `{"amount":"150.0000"}`, "The invoices.0.amount must be a string with 3 decimals."},
		{"ErrAmountWhole", `{"amount":"150"}`, "The invoices.0.amount must be a string with 3 decimals."},
		{"ErrAmountText", `{"amount":"ten"}`, "The invoices.0.amount must be a string with 3 decimals."},
		{"ErrAmountNull", `{"amount":null}`, "The invoices.0.amount field is required."},
		{"ErrCustomerNameBlank", `{"customerName":"\u00a0 "}`, "The invoices.0.customerName field is required."},
		{"ErrQuantityFraction", `{"itemsList":[{"itemTitle":"TV","rate":"50.000","quantity":1.5,"amount":"75.000"}]}`,
			"The invoices.0.itemsList.0.quantity must be an integer of at least 1."},
		{"ErrQuantityMissing", `{"itemsList":[{"itemTitle":"TV","rate":"50.000","amount":"150.000"}]}`,
			"The invoices.0.itemsList.0.quantity must be an integer of at least 1."},
		{"ErrRateText", `{"itemsList":[{"itemTitle":"TV","rate":"fifty","quantity":3,"amount":"150.000"}]}`,
			"The invoices.0.itemsList.0.rate must be an amount of at least 0."},
		{"ErrItemAmountMissing", `{"itemsList":[{"itemTitle":"TV","rate":"50.000","quantity":3}]}`,
			"The invoices.0.itemsList.0.amount must equal rate × quantity."},
		{"ErrItemNotObject", `{"itemsList":["TV"]}`, "The invoices.0.itemsList.0.itemTitle field is required."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, valid := validateEMI(0, invoiceWith(t, tc.patch), today, map[string]int{})
			if valid != (tc.msg == "") || msg != tc.msg {
				t.Fatalf("got (%q, %v), want %q", msg, valid, tc.msg)
			}
		})
	}
	t.Run("ErrNotObject", func(t *testing.T) {
		if msg, valid := validateEMI(2, nil, today, map[string]int{}); valid || msg != "The invoices.2.amount field is required." {
			t.Fatalf("got (%q, %v)", msg, valid)
		}
	})
}

// TestHandleEMIBatch: a batch is applied whole or not at all, counted once.
func TestHandleEMIBatch(t *testing.T) {
	s, err := New(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(DefaultOptions())
	m := s.merchants[SandboxMerchant().AccessCode]
	send := func(payload string) answer {
		return s.handleEMI(&request{m: m, payload: decode(t, payload)})
	}
	inv := func(ref string) string { return strings.Replace(wireInvoice, `"R1"`, `"`+ref+`"`, 1) }
	batch := func(invs ...string) string {
		return `{"merchantCode":"842217","invoices":[` + strings.Join(invs, ",") + `]}`
	}

	for _, tc := range []struct {
		name    string
		payload string
		msg     string
	}{
		{"ErrNoInvoices", `{"merchantCode":"842217"}`, "The invoices field is required."},
		{"ErrInvoicesNotList", `{"merchantCode":"842217","invoices":{"0":{}}}`, "The invoices field is required."},
		{"ErrEmpty", batch(), "The invoices field is required."},
		{"ErrTooMany", batch(slices.Repeat([]string{inv("R")}, hesabe.MaxEMIBatch+1)...),
			"The invoices may not have more than 100 items."},
		{"ErrLastInvalid", batch(inv("A"), inv("B"), strings.Replace(inv("C"), `"150.000"`, `"0.000"`, 1)),
			"The invoices.2.amount must be greater than 0."},
		{"ErrDuplicate", batch(inv("A"), inv("B"), inv("A")), "The invoices.2.referenceNumber field has a duplicate value."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := send(tc.payload)
			msg, _ := a.envelope["message"].(map[string]string)
			if a.status != http.StatusUnprocessableEntity || a.envelope["code"] != hesabe.CodeInvalidInput || msg["en"] != tc.msg || msg["ar"] == "" {
				t.Fatalf("answer = %d %v, want 422 %q", a.status, a.envelope, tc.msg)
			}
			if s.EMIInvoiceCount() != 0 || s.EMIBatchCount() != 0 {
				t.Fatalf("refused batch counted: %d invoices, %d batches", s.EMIInvoiceCount(), s.EMIBatchCount())
			}
		})
	}

	if a := send(batch(inv("A"), inv("B"), inv("C"))); a.status != http.StatusOK {
		t.Fatalf("valid batch: %d %v", a.status, a.envelope)
	}
	if a := send(batch(inv("D"))); a.status != http.StatusOK {
		t.Fatalf("valid batch: %d %v", a.status, a.envelope)
	}
	if got, want := [2]int{s.EMIInvoiceCount(), s.EMIBatchCount()}, [2]int{4, 2}; got != want {
		t.Fatalf("invoices, batches = %v, want %v", got, want)
	}
	if other.EMIBatchCount() != 0 {
		t.Fatalf("another server counts %d batches", other.EMIBatchCount())
	}
}
