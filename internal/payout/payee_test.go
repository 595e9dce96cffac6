package payout_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
	"github.com/posbridge/posbridge/internal/pos"
)

// Test secrets: none of them may appear on the wire, in an error, a log
// line or a dump.
const (
	testIdentity = "1012345678"
	testCardNo   = "4111111111111111"
	testIBAN     = "SA0380000000608010167519"
	testSTC      = "+966512345678"
)

func ptr[T any](v T) *T { return &v }

func bankRequest(id string) payout.PayeeRequest {
	return payout.PayeeRequest{
		NameEn: "Mohammed Al-Otaibi", NameAr: "محمد العتيبي", MerchantCustomerID: id,
		Identity: testIdentity, BankCode: "RJHI", CardNo: testCardNo, IBAN: testIBAN,
	}
}

func stcRequest(id string) payout.PayeeRequest {
	return payout.PayeeRequest{NameAr: "محمد العتيبي", MerchantCustomerID: id, Identity: testIdentity, STCAccount: testSTC}
}

// ruleCase is one field rule: a change to a valid request, what Validate
// says about it, and what the provider (the simulator) says about the same
// request sealed without validation.
type ruleCase struct {
	name string
	base func(string) payout.PayeeRequest
	mod  func(*payout.PayeeRequest)
	// field and msg: Validate's answer ("" field: valid).
	field, msg string
	// simField: the provider field the simulator refuses; "" means the
	// simulator accepts the request (valid, or a rule that is only ours).
	simField string
}

func ruleCases() []ruleCase {
	bank, stc := bankRequest, stcRequest
	rep := strings.Repeat
	return []ruleCase{
		// Valid.
		{name: "BankOK", base: bank},
		{name: "STCPlus9665", base: stc},
		{name: "STC9665", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "966512345678" }},
		{name: "STC05", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "0512345678" }},
		{name: "STC5", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "512345678" }},
		{name: "ArabicOnly", base: stc, mod: func(r *payout.PayeeRequest) { r.NameEn, r.NameAr = "", "نورة القحطاني" }},
		{name: "EnglishOnly", base: stc, mod: func(r *payout.PayeeRequest) { r.NameEn, r.NameAr = "Noura Al-Qahtani", "" }},
		{name: "Names64Runes", base: bank, mod: func(r *payout.PayeeRequest) { r.NameEn, r.NameAr = rep("a", 64), rep("م", 64) }},
		{name: "MerchantID128", base: bank, mod: func(r *payout.PayeeRequest) { r.MerchantCustomerID = rep("x", 124) + r.MerchantCustomerID[:4] }},
		{name: "ArabicIdentity", base: bank, mod: func(r *payout.PayeeRequest) { r.Identity = "جواز ١٢٣٤٥٦٧" }},
		{name: "Card13", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = "4222222222222" }},
		{name: "Card19", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = "6011000990139424000" }},
		{name: "IBAN34", base: bank, mod: func(r *payout.PayeeRequest) { r.IBAN = "SA" + rep("0", 32) }},
		{name: "Address255", base: bank, mod: func(r *payout.PayeeRequest) { r.Address = rep("ش", 255) }},
		{name: "Swift32", base: bank, mod: func(r *payout.PayeeRequest) { r.SwiftCode = rep("A", 32) }},
		{name: "AutoApproval0", base: bank, mod: func(r *payout.PayeeRequest) { r.AutoApproval = ptr(0) }},
		{name: "AutoApproval1", base: bank, mod: func(r *payout.PayeeRequest) { r.AutoApproval = ptr(1) }},
		{name: "OTPApp32", base: bank, mod: func(r *payout.PayeeRequest) { r.OTPAppName = rep("o", 32) }},
		{name: "SAR", base: bank, mod: func(r *payout.PayeeRequest) { r.Currency = "SAR" }},
		{name: "KWDWithAddress", base: bank, mod: func(r *payout.PayeeRequest) { r.Currency, r.Address = "KWD", "Block 3, Salmiya" }},
		{name: "AEDWithSwift", base: bank, mod: func(r *payout.PayeeRequest) { r.Currency, r.SwiftCode = "AED", "EBILAEAD" }},

		// Names.
		{name: "NoName", base: bank, mod: func(r *payout.PayeeRequest) { r.NameEn, r.NameAr = "", "" },
			field: "name_en", msg: "name_en or name_ar is required", simField: "name_e"},
		{name: "NameEnLong", base: bank, mod: func(r *payout.PayeeRequest) { r.NameEn = rep("a", 65) },
			field: "name_en", msg: "at most 64 characters (got 65)", simField: "name_e"},
		{name: "NameArLong", base: bank, mod: func(r *payout.PayeeRequest) { r.NameAr = rep("م", 65) },
			field: "name_ar", msg: "at most 64 characters (got 65)", simField: "name_a"},
		{name: "NameControl", base: bank, mod: func(r *payout.PayeeRequest) { r.NameEn = "Mohammed\x00" },
			field: "name_en", msg: "control characters"},
		{name: "NameBlank", base: bank, mod: func(r *payout.PayeeRequest) { r.NameAr = "   " },
			field: "name_ar", msg: "must not be blank"},
		// The merchant's customer id.
		{name: "MerchantIDMissing", base: bank, mod: func(r *payout.PayeeRequest) { r.MerchantCustomerID = "" },
			field: "merchant_customer_id", msg: "is required", simField: "mercustomid"},
		{name: "MerchantIDLong", base: bank, mod: func(r *payout.PayeeRequest) { r.MerchantCustomerID = rep("x", 125) + r.MerchantCustomerID[:4] },
			field: "merchant_customer_id", msg: "at most 128 characters", simField: "mercustomid"},
		{name: "MerchantIDArabic", base: bank, mod: func(r *payout.PayeeRequest) { r.MerchantCustomerID += "-عميل" },
			field: "merchant_customer_id", msg: "printable ASCII", simField: "mercustomid"},
		{name: "MerchantIDTab", base: bank, mod: func(r *payout.PayeeRequest) { r.MerchantCustomerID += "\t1" },
			field: "merchant_customer_id", msg: "printable ASCII", simField: "mercustomid"},
		// Identity.
		{name: "IdentityMissing", base: bank, mod: func(r *payout.PayeeRequest) { r.Identity = "" },
			field: "identity", msg: "is required", simField: "identity"},
		{name: "IdentityBlank", base: bank, mod: func(r *payout.PayeeRequest) { r.Identity = "   " },
			field: "identity", msg: "is required", simField: "identity"},
		{name: "IdentityLong", base: bank, mod: func(r *payout.PayeeRequest) { r.Identity = rep("7", 65) },
			field: "identity", msg: "at most 64 characters"},
		{name: "IdentityControl", base: bank, mod: func(r *payout.PayeeRequest) { r.Identity = "10123\n45678" },
			field: "identity", msg: "control characters"},
		// Bank account fields.
		{name: "BankCodeLong", base: bank, mod: func(r *payout.PayeeRequest) { r.BankCode = rep("B", 33) },
			field: "bank_code", msg: "at most 32 characters", simField: "bankcode"},
		{name: "BankCodeNonASCII", base: bank, mod: func(r *payout.PayeeRequest) { r.BankCode = "الراجحي" },
			field: "bank_code", msg: "printable ASCII"},
		{name: "Card12", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = "411111111111" },
			field: "card_number", msg: "must be 13 to 19 digits", simField: "cardno"},
		{name: "Card20", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = rep("4", 20) },
			field: "card_number", msg: "must be 13 to 19 digits", simField: "cardno"},
		{name: "CardSpaces", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = "4111 1111 1111 1111" },
			field: "card_number", msg: "must be 13 to 19 digits", simField: "cardno"},
		{name: "CardLetters", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = "411111111111111X" },
			field: "card_number", msg: "must be 13 to 19 digits", simField: "cardno"},
		{name: "CardArabicDigits", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = "٤١١١١١١١١١١١١١١١" },
			field: "card_number", msg: "must be 13 to 19 digits", simField: "cardno"},
		{name: "IBANLong", base: bank, mod: func(r *payout.PayeeRequest) { r.IBAN = "SA" + rep("0", 33) },
			field: "iban", msg: "at most 34 characters", simField: "ibanaccount"},
		{name: "IBANSpaces", base: bank, mod: func(r *payout.PayeeRequest) { r.IBAN = "SA03 8000 0000 6080 1016 7519" },
			field: "iban", msg: "letters and digits only", simField: "ibanaccount"},
		// STC Pay.
		{name: "STCWrongPrefix", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "412345678" },
			field: "stc_account", msg: "must be an STC Pay number", simField: "stcaccount"},
		{name: "STCShort", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "51234567" },
			field: "stc_account", msg: "must be an STC Pay number", simField: "stcaccount"},
		{name: "STC9665Long", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "9665123456789" },
			field: "stc_account", msg: "must be an STC Pay number", simField: "stcaccount"},
		{name: "STCPlusShort", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "+96651234567" },
			field: "stc_account", msg: "must be an STC Pay number", simField: "stcaccount"},
		{name: "STC05Short", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "051234567" },
			field: "stc_account", msg: "must be an STC Pay number", simField: "stcaccount"},
		{name: "STCLandline", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "966112345678" },
			field: "stc_account", msg: "must be an STC Pay number", simField: "stcaccount"},
		{name: "STCSpaces", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "+966 512345678" },
			field: "stc_account", msg: "must be an STC Pay number", simField: "stcaccount"},
		// Other fields.
		{name: "AddressLong", base: bank, mod: func(r *payout.PayeeRequest) { r.Address = rep("ش", 256) },
			field: "address", msg: "at most 255 characters (got 256)", simField: "address"},
		{name: "SwiftLong", base: bank, mod: func(r *payout.PayeeRequest) { r.SwiftCode = rep("A", 33) },
			field: "swift_code", msg: "at most 32 characters", simField: "swiftcode"},
		{name: "SwiftDash", base: bank, mod: func(r *payout.PayeeRequest) { r.SwiftCode = "EBIL-AEAD" },
			field: "swift_code", msg: "letters and digits only"},
		{name: "AutoApproval2", base: bank, mod: func(r *payout.PayeeRequest) { r.AutoApproval = ptr(2) },
			field: "auto_approval", msg: "must be 0 or 1 (got 2)", simField: "autoapproval"},
		{name: "OTPAppLong", base: bank, mod: func(r *payout.PayeeRequest) { r.OTPAppName = rep("o", 33) },
			field: "otp_app_name", msg: "at most 32 characters", simField: "otpappname"},
		{name: "CurrencyLower", base: bank, mod: func(r *payout.PayeeRequest) { r.Currency = "sar" },
			field: "currency", msg: "ISO 4217"},
		{name: "CurrencyShort", base: bank, mod: func(r *payout.PayeeRequest) { r.Currency = "SA" },
			field: "currency", msg: "ISO 4217"},
		// Account rules.
		{name: "BankAndSTC", base: bank, mod: func(r *payout.PayeeRequest) { r.STCAccount = testSTC },
			field: "stc_account", msg: "not both", simField: "stcaccount"},
		{name: "BankNoIBAN", base: bank, mod: func(r *payout.PayeeRequest) { r.IBAN = "" },
			field: "iban", msg: "iban missing", simField: "ibanaccount"},
		{name: "BankNoCard", base: bank, mod: func(r *payout.PayeeRequest) { r.CardNo = "" },
			field: "card_number", msg: "card_number missing", simField: "cardno"},
		{name: "BankOnlyCard", base: bank, mod: func(r *payout.PayeeRequest) { r.BankCode, r.IBAN = "", "" },
			field: "bank_code", msg: "bank_code, iban missing", simField: "bankcode"},
		{name: "IBANAndSTC", base: stc, mod: func(r *payout.PayeeRequest) { r.IBAN = testIBAN },
			field: "stc_account", msg: "(iban) or an STC Pay account", simField: "stcaccount"},
		{name: "NoAccount", base: stc, mod: func(r *payout.PayeeRequest) { r.STCAccount = "" },
			field: "bank_code", msg: "an account is required", simField: "stcaccount"},
		{name: "KWDNoAddress", base: bank, mod: func(r *payout.PayeeRequest) { r.Currency = "KWD" },
			field: "address", msg: "KWD payouts need address or swift_code"},
		{name: "AEDNoAddress", base: stc, mod: func(r *payout.PayeeRequest) { r.Currency = "AED" },
			field: "address", msg: "AED payouts need address or swift_code"},
	}
}

func (tc ruleCase) request() payout.PayeeRequest {
	r := tc.base("cust-" + tc.name)
	if tc.mod != nil {
		tc.mod(&r)
	}
	return r
}

// secretsOf lists a request's secret values worth looking for (long
// enough not to match by chance).
func secretsOf(r payout.PayeeRequest) []string {
	var out []string
	for _, v := range []string{r.Identity, r.CardNo, r.STCAccount} {
		if len(strings.TrimSpace(v)) >= 6 {
			out = append(out, v)
		}
	}
	return out
}

func TestValidate(t *testing.T) {
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.request()
			err := payout.Validate(r)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var pe *pos.Error
			if !errors.As(err, &pe) {
				t.Fatalf("Validate err = %v (%T), want *pos.Error", err, err)
			}
			if pe.Code != pos.EInvalid || pe.Field != tc.field || !strings.Contains(pe.Message, tc.msg) {
				t.Fatalf("Validate = {%s %s %q}, want {invalid %s ...%q...}", pe.Code, pe.Field, pe.Message, tc.field, tc.msg)
			}
			for _, s := range secretsOf(r) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
			// SealPayee refuses it the same way, before sealing anything.
			if _, serr := payout.SealPayee(r, nil); serr == nil || serr.Error() != err.Error() {
				t.Errorf("SealPayee err = %v, want %v", serr, err)
			}
		})
	}
}

func mustSealer(t *testing.T) (*crypto.Sealer, *crypto.Opener) {
	t.Helper()
	keys, err := payoutsim.ProcessKeys()
	if err != nil {
		t.Fatal(err)
	}
	s, err := crypto.NewSealer(&keys.Provider.PublicKey, "")
	if err != nil {
		t.Fatal(err)
	}
	o, err := crypto.NewOpener(keys.Provider, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, o
}

func TestSealPayee(t *testing.T) {
	sealer, provider := mustSealer(t)
	t.Run("Bank", func(t *testing.T) {
		r := bankRequest("cust-1")
		r.Address, r.SwiftCode, r.AutoApproval, r.OTPAppName = "Riyadh", "RJHISARI", ptr(1), "posbridge"
		sp, err := payout.SealPayee(r, sealer)
		if err != nil {
			t.Fatal(err)
		}
		if sp.NameE != r.NameEn || sp.NameA != r.NameAr || sp.MerCustomID != "cust-1" || sp.BankCode != "RJHI" ||
			sp.IBANAccount != testIBAN || sp.Address != "Riyadh" || sp.SwiftCode != "RJHISARI" ||
			sp.AutoApproval == nil || *sp.AutoApproval != 1 || sp.OTPAppName != "posbridge" || sp.STCAccount != "" {
			t.Fatalf("SealPayee = %+v", sp)
		}
		*r.AutoApproval = 0
		if *sp.AutoApproval != 1 {
			t.Error("SealedPayee shares AutoApproval with the request")
		}
		for field, pair := range map[string][2]string{"identity": {sp.Identity, testIdentity}, "cardno": {sp.CardNo, testCardNo}} {
			if len(pair[0]) != 344 {
				t.Errorf("%s sealed to %d characters, want 344", field, len(pair[0]))
			}
			if got, err := provider.Open(pair[0]); err != nil || got != pair[1] {
				t.Errorf("%s opens to %q, %v", field, got, err)
			}
		}
		js, err := json.Marshal(sp)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{testIdentity, testCardNo} {
			if strings.Contains(string(js), s) {
				t.Fatalf("stored JSON holds a plaintext secret: %s", js)
			}
		}
		var keys map[string]any
		_ = json.Unmarshal(js, &keys)
		for _, k := range []string{"name_e", "name_a", "mercustomid", "identity", "bankcode", "cardno", "ibanaccount", "address", "swiftcode", "autoapproval", "otpappname"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("wire JSON lacks %q: %s", k, js)
			}
		}
		if len(keys) != 11 {
			t.Errorf("wire JSON has %d fields, want 11: %s", len(keys), js)
		}
		var back payout.SealedPayee
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(js) {
			t.Errorf("SealedPayee does not survive a JSON round trip:\n%s\n%s", js, again)
		}
	})
	t.Run("STCNameFallback", func(t *testing.T) {
		r := stcRequest("cust-2")
		r.NameEn, r.NameAr = "Noura", ""
		sp, err := payout.SealPayee(r, sealer)
		if err != nil {
			t.Fatal(err)
		}
		if sp.NameA != "Noura" || sp.NameE != "Noura" {
			t.Errorf("name_a = %q, want the English name", sp.NameA)
		}
		if got, err := provider.Open(sp.STCAccount); err != nil || got != testSTC {
			t.Errorf("stcaccount opens to %q, %v", got, err)
		}
		if sp.CardNo != "" || sp.BankCode != "" || sp.AutoApproval != nil {
			t.Errorf("unexpected bank fields: %+v", sp)
		}
		js, _ := json.Marshal(sp)
		if strings.Contains(string(js), "cardno") || strings.Contains(string(js), "autoapproval") {
			t.Errorf("empty optional fields are sent: %s", js)
		}
	})
	t.Run("ArabicOnlyName", func(t *testing.T) {
		sp, err := payout.SealPayee(stcRequest("cust-3"), sealer)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(sp)
		if sp.NameA != "محمد العتيبي" || strings.Contains(string(js), `"name_e"`) {
			t.Errorf("Arabic-only payee: %s", js)
		}
	})
	t.Run("NoSealer", func(t *testing.T) {
		if _, err := payout.SealPayee(bankRequest("cust-4"), nil); err == nil {
			t.Fatal("SealPayee without a sealer succeeded")
		}
	})
}

func TestPayeeRequestRedacted(t *testing.T) {
	r := bankRequest("cust-9")
	r.STCAccount = "0598765432"
	var dumps []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		dumps = append(dumps, fmt.Sprintf(verb, r), fmt.Sprintf(verb, &r), fmt.Sprintf(verb, []payout.PayeeRequest{r}))
	}
	for _, d := range dumps {
		for _, s := range []string{testIdentity, testCardNo, "0598765432", "RJHI", testIBAN} {
			if strings.Contains(d, s) {
				t.Fatalf("dump shows %q: %s", s, d)
			}
		}
	}
	if !strings.Contains(fmt.Sprint(r), "cust-9") {
		t.Errorf("String lost the merchant's customer id: %s", r)
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "1": "****", "1234": "****", "12345": "****2345", testCardNo: "****1111",
		"+966512345678": "****5678", "جواز١٢٣٤٥٦": "****٣٤٥٦",
	} {
		if got := payout.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
