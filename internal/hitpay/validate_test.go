package hitpay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/hitpay/hitpaysim"
	"github.com/posbridge/posbridge/internal/pos"
)

const arabicName = "أحمد المنصوري"

// ruleCase is one request and what the bridge and the simulator say of
// it. field == "" means valid.
type ruleCase struct {
	name    string
	req     hitpay.CustomerRequest
	field   string // till API field
	msg     string // the bridge's message
	wire    string // HitPay's field
	wireMsg string // the simulator's 422 message
}

func with(mod func(*hitpay.CustomerRequest)) hitpay.CustomerRequest {
	r := hitpay.CustomerRequest{Name: "Ahmed Al-Mansouri"}
	mod(&r)
	return r
}

func ruleCases() []ruleCase {
	long := strings.Repeat("ب", 256) // 256 runes, 512 bytes
	max := strings.Repeat("ب", 255)
	today := time.Now().UTC().Format(time.DateOnly)
	future := time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly)
	const (
		mobileDigits = "mobile number must hold only the digits 0-9 (no spaces, '+' or '-')"
		ccDigits     = "country code must hold only the digits 0-9 (no spaces, '+' or '-')"
		badEmail     = "email must be a valid address such as name@example.com"
		wireEmail    = "The email must be a valid email address."
		wireMobile   = "The phone number must be between 6 and 15 digits."
		wireCC       = "The phone number country code must be between 1 and 4 digits."
		wireCountry  = "The selected address.country is invalid."
		countryMsg   = "country must be an ISO 3166-1 alpha-2 code in capitals, such as SG or KW"
	)
	return []ruleCase{
		// Valid.
		{name: "Minimal", req: with(func(r *hitpay.CustomerRequest) {})},
		{name: "ArabicName", req: with(func(r *hitpay.CustomerRequest) { r.Name = arabicName })},
		{name: "Name255ArabicRunes", req: with(func(r *hitpay.CustomerRequest) { r.Name = max })},
		{name: "Full", req: hitpay.CustomerRequest{
			Name: arabicName, Email: "ahmed.mansouri+pos@example.com.kw", PhoneNumber: "91234567",
			PhoneNumberCountryCode: "965", Remark: "عميل دائم — regular", BirthDate: "1990-02-28", Gender: "male",
			Address: hitpay.Address{City: "الكويت", State: "Al Asimah", Street: "Gulf Road 1", PostalCode: "13001", Country: "KW"},
		}},
		{name: "EmailUnicodeDomain", req: with(func(r *hitpay.CustomerRequest) { r.Email = "info@مثال.إختبار" })},
		{name: "Email255", req: with(func(r *hitpay.CustomerRequest) { r.Email = strings.Repeat("a", 243) + "@example.com" })},
		{name: "BlankOptionals", req: with(func(r *hitpay.CustomerRequest) { r.Email, r.Gender, r.BirthDate = " ", " ", " " })},
		{name: "Mobile6CountryCode1", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "123456", "1" })},
		{name: "Mobile15", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "123456789012345", "1868" })},
		{name: "CountryCodeAlone", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumberCountryCode = "65" })},
		{name: "Remark255", req: with(func(r *hitpay.CustomerRequest) { r.Remark = max })},
		{name: "BirthLeapDay", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = "2000-02-29" })},
		{name: "BirthToday", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = today })},
		{name: "GenderFemale", req: with(func(r *hitpay.CustomerRequest) { r.Gender = "female" })},
		{name: "AddressArabic", req: with(func(r *hitpay.CustomerRequest) {
			r.Address = hitpay.Address{City: max, State: "حولي", Street: "شارع تونس", PostalCode: "32001", Country: "SG"}
		})},

		// name
		{name: "NameMissing", req: hitpay.CustomerRequest{Email: "a@example.com"},
			field: "name", msg: "name is required", wire: "name", wireMsg: "The name field is required."},
		{name: "NameBlank", req: with(func(r *hitpay.CustomerRequest) { r.Name = " \t " }),
			field: "name", msg: "name is required", wire: "name", wireMsg: "The name field is required."},
		{name: "NameTooLong", req: with(func(r *hitpay.CustomerRequest) { r.Name = long }),
			field: "name", msg: "name must be at most 255 characters (got 256)", wire: "name", wireMsg: "The name must not be greater than 255 characters."},

		// email
		{name: "EmailNoAt", req: with(func(r *hitpay.CustomerRequest) { r.Email = "not-an-email" }),
			field: "email", msg: badEmail, wire: "email", wireMsg: wireEmail},
		{name: "EmailDisplayName", req: with(func(r *hitpay.CustomerRequest) { r.Email = "Ahmed <a@example.com>" }),
			field: "email", msg: badEmail, wire: "email", wireMsg: wireEmail},
		{name: "EmailOneLabelDomain", req: with(func(r *hitpay.CustomerRequest) { r.Email = "ahmed@gmail" }),
			field: "email", msg: badEmail, wire: "email", wireMsg: wireEmail},
		{name: "EmailEmptyLabel", req: with(func(r *hitpay.CustomerRequest) { r.Email = "ahmed@example..com" }),
			field: "email", msg: badEmail, wire: "email", wireMsg: wireEmail},
		{name: "EmailHyphenLabel", req: with(func(r *hitpay.CustomerRequest) { r.Email = "ahmed@-example.com" }),
			field: "email", msg: badEmail, wire: "email", wireMsg: wireEmail},
		{name: "EmailSpaces", req: with(func(r *hitpay.CustomerRequest) { r.Email = " ahmed@example.com" }),
			field: "email", msg: badEmail, wire: "email", wireMsg: wireEmail},
		{name: "EmailTooLong", req: with(func(r *hitpay.CustomerRequest) { r.Email = strings.Repeat("a", 244) + "@example.com" }),
			field: "email", msg: "email must be at most 255 characters (got 256)", wire: "email", wireMsg: "The email must not be greater than 255 characters."},

		// mobile_number
		{name: "MobilePlus", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "+6591234567", "65" }),
			field: "mobile_number", msg: mobileDigits, wire: "phone_number", wireMsg: wireMobile},
		{name: "MobileSpace", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "9123 4567", "65" }),
			field: "mobile_number", msg: mobileDigits, wire: "phone_number", wireMsg: wireMobile},
		{name: "MobileArabicIndicDigits", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "٩١٢٣٤٥٦٧", "965" }),
			field: "mobile_number", msg: mobileDigits, wire: "phone_number", wireMsg: wireMobile},
		{name: "MobileTooShort", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "12345", "65" }),
			field: "mobile_number", msg: "mobile number must be 6 to 15 digits (got 5)", wire: "phone_number", wireMsg: wireMobile},
		{name: "MobileTooLong", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "1234567890123456", "65" }),
			field: "mobile_number", msg: "mobile number must be 6 to 15 digits (got 16)", wire: "phone_number", wireMsg: wireMobile},

		// country_code
		{name: "CountryCodeMissing", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber = "91234567" }),
			field: "country_code", msg: "country code is required with a mobile number (digits only, such as 65 or 965)",
			wire: "phone_number_country_code", wireMsg: "The phone number country code field is required when phone number is present."},
		{name: "CountryCodePlus", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "91234567", "+65" }),
			field: "country_code", msg: ccDigits, wire: "phone_number_country_code", wireMsg: wireCC},
		{name: "CountryCodeTooLong", req: with(func(r *hitpay.CustomerRequest) { r.PhoneNumber, r.PhoneNumberCountryCode = "91234567", "12345" }),
			field: "country_code", msg: "country code must be 1 to 4 digits (got 5)", wire: "phone_number_country_code", wireMsg: wireCC},

		// remark
		{name: "RemarkTooLong", req: with(func(r *hitpay.CustomerRequest) { r.Remark = long }),
			field: "remark", msg: "remark must be at most 255 characters (got 256)", wire: "remark", wireMsg: "The remark must not be greater than 255 characters."},

		// birth_date
		{name: "BirthSlashes", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = "1990/01/01" }),
			field: "birth_date", msg: "birth date must be YYYY-MM-DD", wire: "birth_date", wireMsg: "The birth date does not match the format Y-m-d."},
		{name: "BirthShort", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = "1990-1-1" }),
			field: "birth_date", msg: "birth date must be YYYY-MM-DD", wire: "birth_date", wireMsg: "The birth date does not match the format Y-m-d."},
		{name: "BirthFeb30", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = "1990-02-30" }),
			field: "birth_date", msg: "birth date 1990-02-30 is not a real date", wire: "birth_date", wireMsg: "The birth date is not a valid date."},
		{name: "BirthMonth13", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = "2001-13-01" }),
			field: "birth_date", msg: "birth date 2001-13-01 is not a real date", wire: "birth_date", wireMsg: "The birth date is not a valid date."},
		{name: "BirthNotLeap", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = "1900-02-29" }),
			field: "birth_date", msg: "birth date 1900-02-29 is not a real date", wire: "birth_date", wireMsg: "The birth date is not a valid date."},
		{name: "BirthFuture", req: with(func(r *hitpay.CustomerRequest) { r.BirthDate = future }),
			field: "birth_date", msg: "birth date " + future + " is in the future", wire: "birth_date", wireMsg: "The birth date must be a date before or equal to today."},

		// gender
		{name: "GenderCapital", req: with(func(r *hitpay.CustomerRequest) { r.Gender = "Male" }),
			field: "gender", msg: `gender must be "male", "female" or empty`, wire: "gender", wireMsg: "The selected gender is invalid."},
		{name: "GenderOther", req: with(func(r *hitpay.CustomerRequest) { r.Gender = "m" }),
			field: "gender", msg: `gender must be "male", "female" or empty`, wire: "gender", wireMsg: "The selected gender is invalid."},

		// address
		{name: "CityTooLong", req: with(func(r *hitpay.CustomerRequest) { r.Address.City = long }),
			field: "address.city", msg: "city must be at most 255 characters (got 256)", wire: "address.city", wireMsg: "The address.city must not be greater than 255 characters."},
		{name: "StateTooLong", req: with(func(r *hitpay.CustomerRequest) { r.Address.State = long }),
			field: "address.state", msg: "state must be at most 255 characters (got 256)", wire: "address.state", wireMsg: "The address.state must not be greater than 255 characters."},
		{name: "StreetTooLong", req: with(func(r *hitpay.CustomerRequest) { r.Address.Street = long }),
			field: "address.street", msg: "street must be at most 255 characters (got 256)", wire: "address.street", wireMsg: "The address.street must not be greater than 255 characters."},
		{name: "PostalCodeTooLong", req: with(func(r *hitpay.CustomerRequest) { r.Address.PostalCode = long }),
			field: "address.postal_code", msg: "postal code must be at most 255 characters (got 256)", wire: "address.postal_code", wireMsg: "The address.postal code must not be greater than 255 characters."},
		{name: "CountryLowercase", req: with(func(r *hitpay.CustomerRequest) { r.Address.Country = "sg" }),
			field: "address.country", msg: countryMsg, wire: "address.country", wireMsg: wireCountry},
		{name: "CountryAlpha3", req: with(func(r *hitpay.CustomerRequest) { r.Address.Country = "SGP" }),
			field: "address.country", msg: countryMsg, wire: "address.country", wireMsg: wireCountry},
		{name: "CountryUnassigned", req: with(func(r *hitpay.CustomerRequest) { r.Address.Country = "XX" }),
			field: "address.country", msg: countryMsg, wire: "address.country", wireMsg: wireCountry},
		{name: "CountryName", req: with(func(r *hitpay.CustomerRequest) { r.Address.Country = "Kuwait" }),
			field: "address.country", msg: countryMsg, wire: "address.country", wireMsg: wireCountry},
	}
}

// TestRules checks every rule three ways, so the bridge and the simulator
// cannot drift apart: Validate (what the till is told), the raw request
// sent to the simulator over HTTP (HitPay's 422 with its field names), and
// the client's *Error for the same answer.
func TestRules(t *testing.T) {
	s, _ := startSim(t, hitpaysim.Options{})
	c := newClient(t, s, 5*time.Second)
	ctx := context.Background()
	valid := 0
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			// The bridge.
			err := hitpay.Validate(tc.req)
			vs := hitpay.Violations(tc.req)
			if tc.field == "" {
				if err != nil || len(vs) != 0 {
					t.Fatalf("Validate = %v, Violations = %+v; want valid", err, vs)
				}
			} else {
				var pe *pos.Error
				if !errors.As(err, &pe) {
					t.Fatalf("Validate = %v (%T), want a *pos.Error", err, err)
				}
				if got, want := *pe, (pos.Error{Code: pos.EInvalid, Field: tc.field, Message: tc.msg}); got != want {
					t.Fatalf("Validate = %+v, want %+v", got, want)
				}
				if len(vs) != 1 || vs[0].Field != tc.field || vs[0].WireField != tc.wire {
					t.Fatalf("Violations = %+v, want one for %s (%s)", vs, tc.field, tc.wire)
				}
				if got := hitpay.WireField(tc.field); got != tc.wire {
					t.Fatalf("WireField(%q) = %q, want %q", tc.field, got, tc.wire)
				}
			}

			// The simulator, sent the raw request.
			status, body := postRaw(t, s, s.ClientConfig().APIKey, tc.req)
			if tc.field == "" {
				if status != http.StatusCreated {
					t.Fatalf("simulator answered %d %s, want 201", status, body)
				}
			} else {
				want := map[string]any{"message": "The given data was invalid.",
					"errors": map[string]any{tc.wire: []any{tc.wireMsg}}}
				var got map[string]any
				if err := json.Unmarshal(body, &got); err != nil || status != http.StatusUnprocessableEntity || !reflect.DeepEqual(got, want) {
					t.Fatalf("simulator answered %d %s, want 422 %v", status, body, want)
				}
			}

			// The client.
			cust, err := c.CreateCustomer(ctx, tc.req)
			if tc.field == "" {
				valid++
				if err != nil {
					t.Fatalf("CreateCustomer: %v", err)
				}
				if cust.Name != tc.req.Name || cust.Email != tc.req.Email || cust.Address != tc.req.Address ||
					cust.PhoneNumber != tc.req.PhoneNumber || cust.BirthDate != tc.req.BirthDate {
					t.Fatalf("created %+v from %+v", cust, tc.req)
				}
				return
			}
			var he *hitpay.Error
			if !errors.As(err, &he) {
				t.Fatalf("CreateCustomer = %v, want a *hitpay.Error", err)
			}
			if he.Status != 422 || he.ErrorClass() != pos.ClassPermanent || he.Message != "The given data was invalid." ||
				!reflect.DeepEqual(he.Fields, map[string][]string{tc.wire: {tc.wireMsg}}) || he.TillField() != tc.field {
				t.Fatalf("CreateCustomer error %+v (class %s, till field %q)", he, he.ErrorClass(), he.TillField())
			}
		})
	}
	if got, want := s.CustomerCount(), 2*valid; got != want {
		t.Fatalf("simulator holds %d customers, want %d (one per valid request)", got, want)
	}
}

// TestRulesAllViolations checks that the simulator reports every broken
// field while Validate names the first, in the documented order.
func TestRulesAllViolations(t *testing.T) {
	s, _ := startSim(t, hitpaysim.Options{})
	req := hitpay.CustomerRequest{Email: "x", PhoneNumber: "12", Gender: "x", Address: hitpay.Address{Country: "xx"}}
	var pe *pos.Error
	if err := hitpay.Validate(req); !errors.As(err, &pe) || pe.Field != "name" {
		t.Fatalf("Validate = %v, want name first", err)
	}
	var fields []string
	for _, v := range hitpay.Violations(req) {
		fields = append(fields, v.Field)
	}
	if want := []string{"name", "email", "mobile_number", "country_code", "gender", "address.country"}; !reflect.DeepEqual(fields, want) {
		t.Fatalf("Violations fields = %v, want %v", fields, want)
	}
	status, body := postRaw(t, s, s.ClientConfig().APIKey, req)
	var got struct {
		Errors map[string][]string `json:"errors"`
	}
	if err := json.Unmarshal(body, &got); err != nil || status != 422 || len(got.Errors) != 6 ||
		got.Errors["phone_number_country_code"] == nil {
		t.Fatalf("simulator answered %d %s", status, body)
	}
	// A body that is not JSON reads as no input at all, as in Laravel.
	status, body = postBytes(t, s, s.ClientConfig().APIKey, []byte(`{"name":`))
	if status != 422 || !strings.Contains(string(body), "The name field is required.") {
		t.Fatalf("garbage body: %d %s", status, body)
	}
	if s.CustomerCount() != 0 {
		t.Fatal("an invalid request created a customer")
	}
}

func postRaw(t *testing.T, s *hitpaysim.Server, key string, req hitpay.CustomerRequest) (int, []byte) {
	t.Helper()
	js, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return postBytes(t, s, key, js)
}

func postBytes(t *testing.T, s *hitpaysim.Server, key string, body []byte) (int, []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, s.URL()+hitpay.PathCustomers, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(hitpay.APIKeyHeader, key)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
