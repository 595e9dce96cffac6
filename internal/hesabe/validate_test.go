package hesabe_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// Every invalid case below is checked twice: the bridge's validator must
// name the field and say why, and the simulator, sent the same request
// through the real client (the validator bypassed), must refuse it as a
// permanent 422 for the same reason and create nothing. Every valid case
// is created at the simulator.

const known = "1, 2, 5, 7, 8, 9, 10, 11, 12, 13, 14, 16"

// wantFieldError checks that err is the validator's EInvalid about field,
// with message msg.
func wantFieldError(t *testing.T, err error, field, msg string) {
	t.Helper()
	var perr *pos.Error
	if !errors.As(err, &perr) {
		t.Fatalf("validator: err = %v, want a *pos.Error", err)
	}
	if got, want := perr.Code, pos.EInvalid; got != want {
		t.Errorf("validator: code = %q, want %q", got, want)
	}
	if perr.Field != field || perr.Message != msg {
		t.Errorf("validator:\n got  %s: %s\n want %s: %s", perr.Field, perr.Message, field, msg)
	}
}

// wantSimRefusal checks that err is the simulator's permanent 422 whose
// English message contains simMsg (and which has an Arabic message).
func wantSimRefusal(t *testing.T, err error, simMsg string) {
	t.Helper()
	if got := pos.ClassOf(err); got != pos.ClassPermanent {
		t.Fatalf("simulator: class = %v, want permanent (err %v)", got, err)
	}
	var herr *hesabe.Error
	if !errors.As(err, &herr) || herr.Code != hesabe.CodeInvalidInput || herr.Message.Ar == "" ||
		!strings.Contains(herr.Message.En, simMsg) {
		t.Fatalf("simulator: err = %v, want a 422 saying %q", err, simMsg)
	}
}

func validCustomer() hesabe.CustomerRequest {
	return hesabe.CustomerRequest{Name: "أحمد المنصوري", Email: "ahmed@example.com", MobileNumber: "12345678"}
}

func TestValidateCustomer(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	c := newClient(t, s, nil)
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		mod  func(*hesabe.CustomerRequest)
	}{
		{"OK", func(*hesabe.CustomerRequest) {}},
		{"OKLatinName", func(r *hesabe.CustomerRequest) { r.Name = "Ahmed Al-Mansouri" }},
		{"OKNameAtLimit", func(r *hesabe.CustomerRequest) { r.Name = strings.Repeat("ع", hesabe.MaxNameRunes) }},
		{"OKMobile10", func(r *hesabe.CustomerRequest) { r.MobileNumber = "9651234567" }},
		{"OKEmailTag", func(r *hesabe.CustomerRequest) { r.Email = "ahmed.m+till@mail.example.com.kw" }},
		{"OKEmailArabic", func(r *hesabe.CustomerRequest) { r.Email = "أحمد@مثال.كويت" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := validCustomer()
			tc.mod(&req)
			if err := hesabe.ValidateCustomer(req); err != nil {
				t.Fatalf("validator: %v", err)
			}
			before := len(s.Customers())
			cu, err := c.CreateCustomer(ctx, req)
			if err != nil {
				t.Fatalf("simulator: %v", err)
			}
			if cu.ID == 0 || cu.CustomerID == "" || cu.Name != req.Name || cu.Email != req.Email || cu.MobileNumber != req.MobileNumber {
				t.Fatalf("customer = %+v", cu)
			}
			if got, want := len(s.Customers()), before+1; got != want {
				t.Fatalf("simulator holds %d customers, want %d", got, want)
			}
		})
	}

	const (
		msgMobile = "mobile number must be 8 to 10 digits (0-9), without spaces, '+' or country code"
		msgEmail  = "email must be a valid address such as name@example.com"
	)
	for _, tc := range []struct {
		name       string
		mod        func(*hesabe.CustomerRequest)
		field, msg string
		sim        string
	}{
		{"ErrNameMissing", func(r *hesabe.CustomerRequest) { r.Name = "" }, "name", "name is required", "The name field is required."},
		{"ErrNameBlank", func(r *hesabe.CustomerRequest) { r.Name = " \t " }, "name", "name is required", "The name field is required."},
		{"ErrNameTooLong", func(r *hesabe.CustomerRequest) { r.Name = strings.Repeat("ع", hesabe.MaxNameRunes+1) },
			"name", "name must be at most 100 characters (got 101)", "The name may not be greater than 100 characters."},
		{"ErrEmailMissing", func(r *hesabe.CustomerRequest) { r.Email = "" }, "email", "email is required", "The email field is required."},
		{"ErrEmailNoAt", func(r *hesabe.CustomerRequest) { r.Email = "ahmed.example.com" }, "email", msgEmail, "The email must be a valid email address."},
		{"ErrEmailNoDomain", func(r *hesabe.CustomerRequest) { r.Email = "ahmed@" }, "email", msgEmail, "valid email"},
		{"ErrEmailNoLocal", func(r *hesabe.CustomerRequest) { r.Email = "@example.com" }, "email", msgEmail, "valid email"},
		{"ErrEmailNoDot", func(r *hesabe.CustomerRequest) { r.Email = "ahmed@example" }, "email", msgEmail, "valid email"},
		{"ErrEmailTwoAts", func(r *hesabe.CustomerRequest) { r.Email = "ahmed@home@example.com" }, "email", msgEmail, "valid email"},
		{"ErrEmailSpace", func(r *hesabe.CustomerRequest) { r.Email = "ahmed m@example.com" }, "email", msgEmail, "valid email"},
		{"ErrEmailDoubleDot", func(r *hesabe.CustomerRequest) { r.Email = "ahmed@example..com" }, "email", msgEmail, "valid email"},
		{"ErrEmailTrailingDot", func(r *hesabe.CustomerRequest) { r.Email = "ahmed@example.com." }, "email", msgEmail, "valid email"},
		{"ErrEmailHyphenLabel", func(r *hesabe.CustomerRequest) { r.Email = "ahmed@-example.com" }, "email", msgEmail, "valid email"},
		{"ErrEmailDisplayName", func(r *hesabe.CustomerRequest) { r.Email = "Ahmed <ahmed@example.com>" }, "email", msgEmail, "valid email"},
		{"ErrMobileMissing", func(r *hesabe.CustomerRequest) { r.MobileNumber = "" }, "mobile_number", "mobile number is required", "The mobile number field is required."},
		{"ErrMobile7", func(r *hesabe.CustomerRequest) { r.MobileNumber = "1234567" }, "mobile_number", msgMobile, "The mobile number must be 8 to 10 digits."},
		{"ErrMobile11", func(r *hesabe.CustomerRequest) { r.MobileNumber = "12345678901" }, "mobile_number", msgMobile, "8 to 10 digits"},
		{"ErrMobileSpace", func(r *hesabe.CustomerRequest) { r.MobileNumber = "1234 5678" }, "mobile_number", msgMobile, "8 to 10 digits"},
		{"ErrMobilePlus", func(r *hesabe.CustomerRequest) { r.MobileNumber = "+96512345678" }, "mobile_number", msgMobile, "8 to 10 digits"},
		{"ErrMobileArabicDigits", func(r *hesabe.CustomerRequest) { r.MobileNumber = "١٢٣٤٥٦٧٨" }, "mobile_number", msgMobile, "8 to 10 digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := validCustomer()
			tc.mod(&req)
			wantFieldError(t, hesabe.ValidateCustomer(req), tc.field, tc.msg)
			before := len(s.Customers())
			_, err := c.CreateCustomer(ctx, req)
			wantSimRefusal(t, err, tc.sim)
			if got := len(s.Customers()); got != before {
				t.Fatalf("simulator holds %d customers after a refusal, want %d", got, before)
			}
		})
	}
}

// kuwaitDay is the date days from now's date in Kuwait, YYYY-MM-DD.
func kuwaitDay(now time.Time, days int) string {
	y, m, d := now.In(time.FixedZone("AST", 3*3600)).Date()
	return time.Date(y, m, d+days, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}

// validBatch is four valid invoices covering each type and sub-type.
func validBatch(now time.Time) []hesabe.EMIInvoice {
	base := hesabe.EMIInvoice{
		Amount: 150_000, ExpiresAt: kuwaitDay(now, 30), InvoiceType: "1", InvoiceSubType: "0",
		Language: "ar", Description: "القسط الأول", CustomerName: "أحمد المنصوري", MobileNumber: "12345678",
		CountryCode: "965", CustomerEmail: "ahmed@example.com", AllocatePayType: "1,2",
		Items: []hesabe.EMIItem{
			{Title: "تلفاز", Rate: 50_000, Quantity: 2, Amount: 100_000},
			{Title: "Wall mount", Rate: 50_000, Quantity: 1, Amount: 50_000},
		},
	}
	b := make([]hesabe.EMIInvoice, 4)
	for i := range b {
		b[i] = base
		b[i].Items = append([]hesabe.EMIItem(nil), base.Items...)
		b[i].ReferenceNumber = fmt.Sprintf("PB-EMI-%d", i)
	}
	// SMS; Email, in English, without items; URL sharing with defaults and
	// no email; WhatsApp.
	b[1].InvoiceSubType, b[1].Language, b[1].CustomerName, b[1].Items = "2", "en", "Ahmed Al-Mansouri", nil
	b[2].InvoiceType, b[2].InvoiceSubType, b[2].Language, b[2].CountryCode, b[2].CustomerEmail = "0", "3", "", "", ""
	b[3].InvoiceSubType = "1"
	return b
}

func TestValidateInstallments(t *testing.T) {
	s := startSim(t, hesabesim.DefaultOptions())
	c := newClient(t, s, nil)
	ctx := context.Background()
	now := time.Now()
	today, yesterday := kuwaitDay(now, 0), kuwaitDay(now, -1)

	type batchMod func(b []hesabe.EMIInvoice) []hesabe.EMIInvoice
	at3 := func(f func(inv *hesabe.EMIInvoice)) batchMod {
		return func(b []hesabe.EMIInvoice) []hesabe.EMIInvoice { f(&b[3]); return b }
	}

	for _, tc := range []struct {
		name string
		mod  batchMod
	}{
		{"OK", func(b []hesabe.EMIInvoice) []hesabe.EMIInvoice { return b }},
		{"OKOne", func(b []hesabe.EMIInvoice) []hesabe.EMIInvoice { return b[2:3] }},
		{"OKMaxBatch", func(b []hesabe.EMIInvoice) []hesabe.EMIInvoice {
			out := make([]hesabe.EMIInvoice, hesabe.MaxEMIBatch)
			for i := range out {
				out[i] = b[i%len(b)]
				out[i].ReferenceNumber = fmt.Sprintf("PB-MAX-%03d", i)
			}
			return out
		}},
		{"OKExpiresSoon", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = kuwaitDay(now, 2) })},
		{"OKEveryPaymentType", at3(func(inv *hesabe.EMIInvoice) {
			inv.AllocatePayType = hesabe.JoinPaymentTypes([]hesabe.PaymentType{1, 2, 5, 7, 8, 9, 10, 11, 12, 13, 14, 16})
		})},
		{"OKPaymentTypesSpaced", at3(func(inv *hesabe.EMIInvoice) { inv.AllocatePayType = "1, 16" })},
		{"OKItemsAboveAmount", at3(func(inv *hesabe.EMIInvoice) { inv.Items[1].Quantity, inv.Items[1].Amount = 3, 150_000 })},
		{"OKFreeItem", at3(func(inv *hesabe.EMIInvoice) {
			inv.Items = append(inv.Items, hesabe.EMIItem{Title: "هدية", Rate: 0, Quantity: 1, Amount: 0})
		})},
		{"OKNameAtLimit", at3(func(inv *hesabe.EMIInvoice) { inv.CustomerName = strings.Repeat("ع", hesabe.MaxNameRunes) })},
		{"OKMobile10", at3(func(inv *hesabe.EMIInvoice) { inv.MobileNumber, inv.CountryCode = "5012345678", "1" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := tc.mod(validBatch(now))
			if err := hesabe.ValidateInstallments(batch, now, hesabe.MaxEMIBatch); err != nil {
				t.Fatalf("validator: %v", err)
			}
			invoices, batches := s.EMIInvoiceCount(), s.EMIBatchCount()
			res, err := c.CreateInstallments(ctx, batch)
			if err != nil {
				t.Fatalf("simulator: %v", err)
			}
			if len(res) != len(batch) {
				t.Fatalf("%d results for %d invoices", len(res), len(batch))
			}
			for i, r := range res {
				inv := batch[i]
				if r.URL == "" || r.Token == "" || string(r.ReferenceNumber) != inv.ReferenceNumber || r.Amount != inv.Amount ||
					string(r.InvoiceSubType) != inv.InvoiceSubType || string(r.Customer.Name) != inv.CustomerName ||
					(r.InvoiceStatus.Valid && r.InvoiceStatus.Value != 0) {
					t.Fatalf("result %d = %+v", i, r)
				}
			}
			if got, want := s.EMIInvoiceCount(), invoices+len(batch); got != want {
				t.Errorf("simulator holds %d installment invoices, want %d", got, want)
			}
			if got, want := s.EMIBatchCount(), batches+1; got != want {
				t.Errorf("simulator accepted %d batches, want %d", got, want)
			}
		})
	}

	const (
		msgMobile  = "mobile number must be 8 to 10 digits (0-9), without spaces, '+' or country code"
		msgEmail   = "customer email must be a valid address such as name@example.com"
		msgSubType = `invoice sub-type must be "0" (SMS), "1" (WhatsApp), "2" (Email) or "3" (URL)`
		msgType    = `invoice type must be "0" (URL sharing) or "1" (SMS)`
	)
	for _, tc := range []struct {
		name       string
		mod        batchMod
		field, msg string
		sim        string // in the simulator's message; "" when the client refuses before sending
	}{
		{"ErrBatchEmpty", func([]hesabe.EMIInvoice) []hesabe.EMIInvoice { return nil },
			"invoices", "a batch needs at least one invoice", ""},
		{"ErrBatchTooLarge", func(b []hesabe.EMIInvoice) []hesabe.EMIInvoice {
			out := make([]hesabe.EMIInvoice, hesabe.MaxEMIBatch+1)
			for i := range out {
				out[i] = b[i%len(b)]
				out[i].ReferenceNumber = fmt.Sprintf("PB-BIG-%03d", i)
			}
			return out
		}, "invoices", "a batch holds at most 100 invoices (got 101)", "The invoices may not have more than 100 items."},

		{"ErrAmountZero", at3(func(inv *hesabe.EMIInvoice) { inv.Amount = 0 }),
			"invoices[3].amount", "amount must be greater than 0 (got 0.000)", "The invoices.3.amount must be greater than 0."},
		{"ErrAmountNegative", at3(func(inv *hesabe.EMIInvoice) { inv.Amount = -1500 }),
			"invoices[3].amount", "amount must be greater than 0 (got -1.500)", "invoices.3.amount must be greater than 0"},

		{"ErrExpiresMissing", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = "" }),
			"invoices[3].expires_at", "expiry date is required (YYYY-MM-DD)", "The invoices.3.expiresAt field is required."},
		{"ErrExpiresSlashes", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = "03/02/2031" }),
			"invoices[3].expires_at", `expiry date must be YYYY-MM-DD (got "03/02/2031")`, "The invoices.3.expiresAt does not match the format Y-m-d."},
		{"ErrExpiresShort", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = "2031-2-3" }),
			"invoices[3].expires_at", `expiry date must be YYYY-MM-DD (got "2031-2-3")`, "invoices.3.expiresAt does not match the format Y-m-d"},
		{"ErrExpiresTimestamp", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = "2031-02-03T00:00:00Z" }),
			"invoices[3].expires_at", `expiry date must be YYYY-MM-DD (got "2031-02-03T00:00:00Z")`, "invoices.3.expiresAt does not match the format Y-m-d"},
		{"ErrExpiresNotADate", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = "2031-02-30" }),
			"invoices[3].expires_at", "expiry date 2031-02-30 is not a real date", "invoices.3.expiresAt does not match the format Y-m-d"},
		{"ErrExpiresMonth13", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = "2031-13-01" }),
			"invoices[3].expires_at", "expiry date 2031-13-01 is not a real date", "invoices.3.expiresAt does not match the format Y-m-d"},
		{"ErrExpiresToday", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = today }),
			"invoices[3].expires_at", fmt.Sprintf("expiry date %s must be after today (%s in Kuwait)", today, today),
			"The invoices.3.expiresAt must be a date after today."},
		{"ErrExpiresYesterday", at3(func(inv *hesabe.EMIInvoice) { inv.ExpiresAt = yesterday }),
			"invoices[3].expires_at", fmt.Sprintf("expiry date %s must be after today (%s in Kuwait)", yesterday, today),
			"invoices.3.expiresAt must be a date after today"},

		{"ErrReferenceMissing", at3(func(inv *hesabe.EMIInvoice) { inv.ReferenceNumber = "" }),
			"invoices[3].reference_number", "reference number is required", "The invoices.3.referenceNumber field is required."},
		{"ErrReferenceBlank", at3(func(inv *hesabe.EMIInvoice) { inv.ReferenceNumber = "  " }),
			"invoices[3].reference_number", "reference number is required", "invoices.3.referenceNumber field is required"},
		{"ErrReferenceDuplicate", at3(func(inv *hesabe.EMIInvoice) { inv.ReferenceNumber = "PB-EMI-1" }),
			"invoices[3].reference_number", `reference number "PB-EMI-1" is also used by invoices[1]; each invoice of a batch needs its own`,
			"The invoices.3.referenceNumber field has a duplicate value."},

		{"ErrTypeMissing", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceType = "" }),
			"invoices[3].invoice_type", `invoice type is required: "0" (URL sharing) or "1" (SMS)`, "The invoices.3.invoiceType field is required."},
		{"ErrTypeUnknown", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceType = "2" }),
			"invoices[3].invoice_type", msgType + ` (got "2")`, "The selected invoices.3.invoiceType is invalid."},
		{"ErrTypeName", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceType = "URL" }),
			"invoices[3].invoice_type", msgType + ` (got "URL")`, "invoices.3.invoiceType is invalid"},

		{"ErrSubTypeMissing", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceSubType = "" }),
			"invoices[3].invoice_sub_type", `invoice sub-type is required: "0" (SMS), "1" (WhatsApp), "2" (Email) or "3" (URL)`,
			"The invoices.3.invoiceSubType field is required."},
		{"ErrSubTypeUnknown", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceSubType = "4" }),
			"invoices[3].invoice_sub_type", msgSubType + ` (got "4")`, "The selected invoices.3.invoiceSubType is invalid."},
		{"ErrSubTypeLeadingZero", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceSubType = "03" }),
			"invoices[3].invoice_sub_type", msgSubType + ` (got "03")`, "invoices.3.invoiceSubType is invalid"},
		{"ErrURLSharingBySMS", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceType, inv.InvoiceSubType = "0", "0" }),
			"invoices[3].invoice_sub_type", `invoice sub-type "0" (SMS) does not fit invoice type "0" (URL sharing), which needs sub-type "3" (URL)`,
			"The invoices.3.invoiceSubType does not match invoices.3.invoiceType."},
		{"ErrURLSharingByEmail", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceType, inv.InvoiceSubType = "0", "2" }),
			"invoices[3].invoice_sub_type", `invoice sub-type "2" (Email) does not fit invoice type "0" (URL sharing), which needs sub-type "3" (URL)`,
			"invoices.3.invoiceSubType does not match invoices.3.invoiceType"},
		{"ErrSMSAsURL", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceType, inv.InvoiceSubType = "1", "3" }),
			"invoices[3].invoice_sub_type", `invoice sub-type "3" (URL) does not fit invoice type "1" (SMS), which needs sub-type "0" (SMS), "1" (WhatsApp) or "2" (Email)`,
			"invoices.3.invoiceSubType does not match invoices.3.invoiceType"},

		{"ErrLanguage", at3(func(inv *hesabe.EMIInvoice) { inv.Language = "fr" }),
			"invoices[3].language", `language must be "en" or "ar" (got "fr")`, "The invoices.3.language must be en or ar."},
		{"ErrLanguageCase", at3(func(inv *hesabe.EMIInvoice) { inv.Language = "EN" }),
			"invoices[3].language", `language must be "en" or "ar" (got "EN")`, "invoices.3.language must be en or ar"},

		{"ErrDescriptionMissing", at3(func(inv *hesabe.EMIInvoice) { inv.Description = "" }),
			"invoices[3].description", "description is required", "The invoices.3.description field is required."},
		{"ErrDescriptionBlank", at3(func(inv *hesabe.EMIInvoice) { inv.Description = "   " }),
			"invoices[3].description", "description is required", "invoices.3.description field is required"},

		{"ErrCustomerNameMissing", at3(func(inv *hesabe.EMIInvoice) { inv.CustomerName = "" }),
			"invoices[3].customer_name", "customer name is required", "The invoices.3.customerName field is required."},
		{"ErrCustomerNameTooLong", at3(func(inv *hesabe.EMIInvoice) { inv.CustomerName = strings.Repeat("ع", hesabe.MaxNameRunes+1) }),
			"invoices[3].customer_name", "customer name must be at most 100 characters (got 101)",
			"The invoices.3.customerName may not be greater than 100 characters."},

		{"ErrMobileMissing", at3(func(inv *hesabe.EMIInvoice) { inv.MobileNumber = "" }),
			"invoices[3].mobile_number", "mobile number is required", "The invoices.3.mobileNumber field is required."},
		{"ErrMobile7", at3(func(inv *hesabe.EMIInvoice) { inv.MobileNumber = "1234567" }),
			"invoices[3].mobile_number", msgMobile, "The invoices.3.mobileNumber must be 8 to 10 digits."},
		{"ErrMobile11", at3(func(inv *hesabe.EMIInvoice) { inv.MobileNumber = "12345678901" }),
			"invoices[3].mobile_number", msgMobile, "invoices.3.mobileNumber must be 8 to 10 digits"},
		{"ErrMobilePlus", at3(func(inv *hesabe.EMIInvoice) { inv.MobileNumber = "+96512345678" }),
			"invoices[3].mobile_number", msgMobile, "invoices.3.mobileNumber must be 8 to 10 digits"},
		{"ErrMobileArabicDigits", at3(func(inv *hesabe.EMIInvoice) { inv.MobileNumber = "٩٩٩٩٨٨٨٨" }),
			"invoices[3].mobile_number", msgMobile, "invoices.3.mobileNumber must be 8 to 10 digits"},

		{"ErrCountryCodePlus", at3(func(inv *hesabe.EMIInvoice) { inv.CountryCode = "+965" }),
			"invoices[3].country_code", `country code must be 1 to 3 digits without '+', such as 965 (got "+965")`,
			"The invoices.3.countryCode must be 1 to 3 digits."},
		{"ErrCountryCodeLong", at3(func(inv *hesabe.EMIInvoice) { inv.CountryCode = "9650" }),
			"invoices[3].country_code", `country code must be 1 to 3 digits without '+', such as 965 (got "9650")`,
			"invoices.3.countryCode must be 1 to 3 digits"},
		{"ErrCountryCodeLetters", at3(func(inv *hesabe.EMIInvoice) { inv.CountryCode = "KW" }),
			"invoices[3].country_code", `country code must be 1 to 3 digits without '+', such as 965 (got "KW")`,
			"invoices.3.countryCode must be 1 to 3 digits"},

		{"ErrEmailNeededForEmail", at3(func(inv *hesabe.EMIInvoice) { inv.InvoiceSubType, inv.CustomerEmail = "2", "" }),
			"invoices[3].customer_email", `customer email is required when the invoice is sent by email (invoice sub-type "2")`,
			"The invoices.3.customerEmail field is required when invoices.3.invoiceSubType is 2."},
		{"ErrEmailInvalid", at3(func(inv *hesabe.EMIInvoice) { inv.CustomerEmail = "ahmed@" }),
			"invoices[3].customer_email", msgEmail, "The invoices.3.customerEmail must be a valid email address."},
		{"ErrEmailNoDot", at3(func(inv *hesabe.EMIInvoice) { inv.CustomerEmail = "ahmed@example" }),
			"invoices[3].customer_email", msgEmail, "invoices.3.customerEmail must be a valid email address"},

		{"ErrPayTypesMissing", at3(func(inv *hesabe.EMIInvoice) { inv.AllocatePayType = "" }),
			"invoices[3].payment_types", "at least one payment type is required, such as 1 (KNET)",
			"The invoices.3.allocatePayType field is required."},
		{"ErrPayTypeUnknown", at3(func(inv *hesabe.EMIInvoice) { inv.AllocatePayType = "1,3" }),
			"invoices[3].payment_types", `payment type "3" is unknown; known codes: ` + known,
			`The invoices.3.allocatePayType has an unknown payment type "3".`},
		{"ErrPayTypeName", at3(func(inv *hesabe.EMIInvoice) { inv.AllocatePayType = "KNET" }),
			"invoices[3].payment_types", `payment type "KNET" is unknown; known codes: ` + known,
			`invoices.3.allocatePayType has an unknown payment type "KNET"`},
		{"ErrPayTypeLeadingZero", at3(func(inv *hesabe.EMIInvoice) { inv.AllocatePayType = "01" }),
			"invoices[3].payment_types", `payment type "01" is unknown; known codes: ` + known,
			`invoices.3.allocatePayType has an unknown payment type "01"`},
		{"ErrPayTypeEmptyEntry", at3(func(inv *hesabe.EMIInvoice) { inv.AllocatePayType = "1,,2" }),
			"invoices[3].payment_types", `payment type "" is unknown; known codes: ` + known,
			`invoices.3.allocatePayType has an unknown payment type ""`},
		{"ErrPayTypeDuplicate", at3(func(inv *hesabe.EMIInvoice) { inv.AllocatePayType = "1,2, 1" }),
			"invoices[3].payment_types", "payment type 1 (KNET) is listed twice",
			`The invoices.3.allocatePayType has a duplicate payment type "1".`},

		{"ErrItemTitle", at3(func(inv *hesabe.EMIInvoice) { inv.Items[0].Title = " " }),
			"invoices[3].items[0].title", "item title is required", "The invoices.3.itemsList.0.itemTitle field is required."},
		{"ErrItemRate", at3(func(inv *hesabe.EMIInvoice) { inv.Items[1].Rate = -1000 }),
			"invoices[3].items[1].rate", "item rate must not be negative (got -1.000)", "The invoices.3.itemsList.1.rate must be an amount of at least 0."},
		{"ErrItemQuantityZero", at3(func(inv *hesabe.EMIInvoice) { inv.Items[0].Quantity = 0 }),
			"invoices[3].items[0].quantity", "item quantity must be at least 1 (got 0)",
			"The invoices.3.itemsList.0.quantity must be an integer of at least 1."},
		{"ErrItemQuantityNegative", at3(func(inv *hesabe.EMIInvoice) { inv.Items[0].Quantity = -2 }),
			"invoices[3].items[0].quantity", "item quantity must be at least 1 (got -2)", "invoices.3.itemsList.0.quantity must be an integer of at least 1"},
		{"ErrItemAmount", at3(func(inv *hesabe.EMIInvoice) { inv.Items[0].Amount = 150_000 }),
			"invoices[3].items[0].amount", "item amount 150.000 must equal rate 50.000 × quantity 2 = 100.000",
			"The invoices.3.itemsList.0.amount must equal rate × quantity."},
		{"ErrItemAmountOverflow", at3(func(inv *hesabe.EMIInvoice) {
			inv.Items[0] = hesabe.EMIItem{Title: "Gold", Rate: 1_000_000_000_000_000, Quantity: 10_000, Amount: 150_000}
		}),
			"invoices[3].items[0].amount", "item amount 150.000 must equal rate 1000000000000.000 × quantity 10000, which is too large",
			"invoices.3.itemsList.0.amount must equal rate × quantity"},
		{"ErrItemsBelowAmount", at3(func(inv *hesabe.EMIInvoice) { inv.Items = inv.Items[:1] }),
			"invoices[3].items", "items total 100.000 is below the invoice amount 150.000",
			"The invoices.3.itemsList total 100.000 must not be below the invoice amount 150.000."},

		// The first invoice of a batch is checked like the rest.
		{"ErrFirstInvoice", func(b []hesabe.EMIInvoice) []hesabe.EMIInvoice { b[0].Amount = 0; return b },
			"invoices[0].amount", "amount must be greater than 0 (got 0.000)", "The invoices.0.amount must be greater than 0."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch := tc.mod(validBatch(now))
			wantFieldError(t, hesabe.ValidateInstallments(batch, now, hesabe.MaxEMIBatch), tc.field, tc.msg)

			invoices, batches := s.EMIInvoiceCount(), s.EMIBatchCount()
			requests := s.Stats().Requests["/api"+hesabe.PathEMI]
			res, err := c.CreateInstallments(ctx, batch)
			if tc.sim == "" {
				if pos.ClassOf(err) != pos.ClassPermanent || s.Stats().Requests["/api"+hesabe.PathEMI] != requests {
					t.Fatalf("client: err = %v, want a permanent refusal before sending", err)
				}
			} else {
				wantSimRefusal(t, err, tc.sim)
			}
			if res != nil || s.EMIInvoiceCount() != invoices || s.EMIBatchCount() != batches {
				t.Fatalf("a refused batch created something: %d results, %d→%d invoices, %d→%d batches",
					len(res), invoices, s.EMIInvoiceCount(), batches, s.EMIBatchCount())
			}
		})
	}
}

// TestValidateInstallmentsKuwaitDate pins "after today" to the date in
// Kuwait (UTC+3) whatever the zone of now: at 00:30 in Kuwait it is still
// the previous day in UTC, and that day's date is no longer valid.
func TestValidateInstallmentsKuwaitDate(t *testing.T) {
	inv := validBatch(time.Now())[0]
	newYork := time.FixedZone("EST", -5*3600)
	for _, tc := range []struct {
		name    string
		now     time.Time
		expires string
		today   string // "" when valid
	}{
		{"OKLastSecondOfDay", time.Date(2026, 5, 1, 20, 59, 59, 0, time.UTC), "2026-05-02", ""},
		{"ErrMidnightKuwait", time.Date(2026, 5, 1, 21, 0, 0, 0, time.UTC), "2026-05-02", "2026-05-02"},
		{"ErrEarlyMorningKuwait", time.Date(2026, 5, 1, 21, 30, 0, 0, time.UTC), "2026-05-02", "2026-05-02"},
		{"OKNextDay", time.Date(2026, 5, 1, 21, 30, 0, 0, time.UTC), "2026-05-03", ""},
		{"ErrOtherZone", time.Date(2026, 5, 1, 16, 30, 0, 0, newYork), "2026-05-02", "2026-05-02"},
		{"ErrYearEnd", time.Date(2026, 12, 31, 22, 0, 0, 0, time.UTC), "2027-01-01", "2027-01-01"},
		{"ErrLeapDay", time.Date(2027, 2, 27, 12, 0, 0, 0, time.UTC), "2027-02-29", "not a date"},
		{"OKLeapDay", time.Date(2028, 2, 27, 12, 0, 0, 0, time.UTC), "2028-02-29", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv.ExpiresAt = tc.expires
			err := hesabe.ValidateInstallments([]hesabe.EMIInvoice{inv}, tc.now, 0)
			switch tc.today {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case "not a date":
				wantFieldError(t, err, "invoices[0].expires_at", "expiry date "+tc.expires+" is not a real date")
			default:
				wantFieldError(t, err, "invoices[0].expires_at",
					fmt.Sprintf("expiry date %s must be after today (%s in Kuwait)", tc.expires, tc.today))
			}
		})
	}
}

func TestValidateInstallmentsMaxBatch(t *testing.T) {
	now := time.Now()
	b := validBatch(now)
	if err := hesabe.ValidateInstallments(b, now, 4); err != nil {
		t.Fatalf("4 of at most 4: %v", err)
	}
	wantFieldError(t, hesabe.ValidateInstallments(b, now, 3), "invoices", "a batch holds at most 3 invoices (got 4)")
	// Below 1 or above MaxEMIBatch, the bridge's limit holds.
	big := make([]hesabe.EMIInvoice, hesabe.MaxEMIBatch+1)
	for i := range big {
		big[i] = b[0]
		big[i].ReferenceNumber = fmt.Sprint("R", i)
	}
	for _, limit := range []int{0, -1, hesabe.MaxEMIBatch + 50} {
		wantFieldError(t, hesabe.ValidateInstallments(big, now, limit), "invoices", "a batch holds at most 100 invoices (got 101)")
		if err := hesabe.ValidateInstallments(big[:hesabe.MaxEMIBatch], now, limit); err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
	}
}

// TestValidateItemsTotalOverflow: a total past int64 is refused, not
// wrapped. Such amounts cannot reach the simulator (each is past what
// ParseMoney reads), so this is the validator's alone.
func TestValidateItemsTotalOverflow(t *testing.T) {
	now := time.Now()
	inv := validBatch(now)[0]
	half := hesabe.Money(1<<62 + 1)
	inv.Items = []hesabe.EMIItem{{Title: "a", Rate: half, Quantity: 1, Amount: half}, {Title: "b", Rate: half, Quantity: 1, Amount: half}}
	wantFieldError(t, hesabe.ValidateInstallments([]hesabe.EMIInvoice{inv}, now, 0), "invoices[0].items", "items total is too large")
}

func TestPaymentTypes(t *testing.T) {
	want := map[hesabe.PaymentType]string{1: "KNET", 2: "MPGS", 5: "CYBS", 7: "AMEX", 8: "MPGS AMEX", 9: "MPGS Apple Pay",
		10: "CYBS Apple Pay", 11: "KNET Debit Apple Pay", 12: "KNET Credit Apple Pay", 13: "KNET Apple Pay International",
		14: "AMEX Apple Pay International", 16: "Google Pay"}
	if len(hesabe.PaymentTypes) != len(want) {
		t.Fatalf("PaymentTypes has %d entries, want %d", len(hesabe.PaymentTypes), len(want))
	}
	for code, name := range want {
		if got := code.String(); got != name {
			t.Errorf("PaymentType(%d) = %q, want %q", code, got, name)
		}
	}
	if got := hesabe.PaymentType(3).String(); got != "unknown(3)" {
		t.Errorf("PaymentType(3) = %q", got)
	}
	for _, tc := range []struct {
		in   []hesabe.PaymentType
		want string
	}{{nil, ""}, {[]hesabe.PaymentType{1}, "1"}, {[]hesabe.PaymentType{1, 2}, "1,2"}, {[]hesabe.PaymentType{16, 5, 11}, "16,5,11"}} {
		if got := hesabe.JoinPaymentTypes(tc.in); got != tc.want {
			t.Errorf("JoinPaymentTypes(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestEMIResultDecodesMixedTypes decodes the answer shape of hesabe-api.md
// §6, where one element has invoice_sub_type 3, merchant_id 84 and
// invoice_status 0 and the next "3", "84" and null.
func TestEMIResultDecodesMixedTypes(t *testing.T) {
	const answer = `[
 {"id":1001,"invoice_type":"1","invoice_sub_type":3,"token":"a1b2c3","access_key":"k1","reference_number":"R1",
  "amount":"150.000","payment_method":[1,"2"],"invoice_status":0,"url":"https://sandbox.hesabe.com/invoice/a1b2c3",
  "expires_at":"2031-02-03","merchant_id":84,"customer":{"name":"أحمد المنصوري","email":"ahmed@example.com","phone_number":"12345678"},
  "products":[],"transaction":null},
 {"id":"1002","invoice_type":1,"invoice_sub_type":"3","token":"d4e5f6","access_key":"k2","reference_number":"R2",
  "amount":"75.500","payment_method":["1","2"],"invoice_status":null,"url":"https://sandbox.hesabe.com/invoice/d4e5f6",
  "expires_at":"2031-03-03","merchant_id":"84","customer":{"name":"Ahmed","email":null,"phone_number":12345678},
  "products":[{"itemTitle":"TV"}],"transaction":{"id":5}}
]`
	var res []hesabe.EMIResult
	if err := json.Unmarshal([]byte(answer), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 {
		t.Fatalf("%d results", len(res))
	}
	a, b := res[0], res[1]
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"id", [2]int64{a.ID.Value, b.ID.Value}, [2]int64{1001, 1002}},
		{"invoice_type", [2]hesabe.FlexString{a.InvoiceType, b.InvoiceType}, [2]hesabe.FlexString{"1", "1"}},
		{"invoice_sub_type", [2]hesabe.FlexString{a.InvoiceSubType, b.InvoiceSubType}, [2]hesabe.FlexString{"3", "3"}},
		{"merchant_id", [2]hesabe.FlexString{a.MerchantID, b.MerchantID}, [2]hesabe.FlexString{"84", "84"}},
		{"invoice_status", [2]hesabe.FlexInt{a.InvoiceStatus, b.InvoiceStatus}, [2]hesabe.FlexInt{{Value: 0, Valid: true}, {}}},
		{"amount", [2]hesabe.Money{a.Amount, b.Amount}, [2]hesabe.Money{150_000, 75_500}},
		{"payment_method", fmt.Sprint(a.PaymentMethod, b.PaymentMethod), "[1 2] [1 2]"},
		{"customer", [2]string{string(a.Customer.Name), string(b.Customer.PhoneNumber)}, [2]string{"أحمد المنصوري", "12345678"}},
		{"customer email", b.Customer.Email, hesabe.FlexString("")},
		{"url", a.URL, hesabe.FlexString("https://sandbox.hesabe.com/invoice/a1b2c3")},
	} {
		if check.got != check.want {
			t.Errorf("%s = %v, want %v", check.what, check.got, check.want)
		}
	}
}
