package payout

import (
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/pos"
)

// Field limits (hesabe-api.md §7). IdentityMaxLen and BankCodeMaxLen are
// ours: the reference gives none, and a sealed field must fit one RSA
// block under every padding.
const (
	NameMaxLen          = 64
	MerchantCustomIDMax = 128
	IdentityMaxLen      = 64
	BankCodeMaxLen      = 32
	CardNoMinDigits     = 13
	CardNoMaxDigits     = 19
	IBANMaxLen          = 34
	AddressMaxLen       = 255
	SwiftCodeMaxLen     = 32
	OTPAppNameMaxLen    = 32
	DefaultCurrency     = "SAR"
)

// PayeeRequest is what the till asks for: a payee (a person to pay out to)
// with one account, a bank account or an STC Pay wallet. JSON names are
// the till API's.
//
// Identity, CardNo and STCAccount are secrets: String, GoString, Format
// and LogValue never show them (nor any other field but the merchant's
// customer id and the kind of account). Encoding a PayeeRequest to JSON
// does show them; it is the till's own input, never log it.
type PayeeRequest struct {
	NameEn             string `json:"name_en,omitempty"`
	NameAr             string `json:"name_ar,omitempty"`
	MerchantCustomerID string `json:"merchant_customer_id"`
	Identity           string `json:"identity"` // national id / iqama / passport; secret
	BankCode           string `json:"bank_code,omitempty"`
	CardNo             string `json:"card_number,omitempty"` // secret
	IBAN               string `json:"iban,omitempty"`
	STCAccount         string `json:"stc_account,omitempty"` // secret
	Address            string `json:"address,omitempty"`
	SwiftCode          string `json:"swift_code,omitempty"`
	// AutoApproval is 0 or 1; nil leaves it to the provider's default.
	AutoApproval *int   `json:"auto_approval,omitempty"`
	OTPAppName   string `json:"otp_app_name,omitempty"`
	// Currency of the payouts to this payee (ISO 4217); "" means SAR.
	Currency string `json:"currency,omitempty"`
}

// AccountKind says which account a payee request names.
func (r PayeeRequest) AccountKind() string {
	bank := r.BankCode != "" || r.CardNo != "" || r.IBAN != ""
	switch {
	case bank && r.STCAccount != "":
		return "conflicting"
	case bank:
		return "bank"
	case r.STCAccount != "":
		return "stc_pay"
	}
	return "none"
}

// String shows no secret: only the merchant's customer id and the account
// kind.
func (r PayeeRequest) String() string {
	return fmt.Sprintf("payout.PayeeRequest{merchant_customer_id:%q account:%s, secrets redacted}", r.MerchantCustomerID, r.AccountKind())
}

// GoString is String, for %#v.
func (r PayeeRequest) GoString() string { return r.String() }

// Format makes every verb print String: no %+v or %x dumps the fields.
func (r PayeeRequest) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(r.String())) }

// LogValue keeps secrets out of structured logs.
func (r PayeeRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("merchant_customer_id", r.MerchantCustomerID), slog.String("account", r.AccountKind()))
}

var (
	stcPattern      = regexp.MustCompile(`^(5[0-9]{8}|9665[0-9]{8}|\+9665[0-9]{8}|05[0-9]{8})$`)
	currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ValidSTCAccount reports whether s is an STC Pay account in one of the
// provider's formats: 5xxxxxxxx, 9665xxxxxxxx, +9665xxxxxxxx, 05xxxxxxxx.
func ValidSTCAccount(s string) bool { return stcPattern.MatchString(s) }

// ValidCardNo reports whether s is 13 to 19 ASCII digits.
func ValidCardNo(s string) bool {
	return len(s) >= CardNoMinDigits && len(s) <= CardNoMaxDigits && allDigits(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func alnumASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// Validate checks a payee request against the provider's rules (and a few
// of ours), returning the first problem as a *pos.Error naming the till
// API field. Messages never quote a secret field's value.
func Validate(r PayeeRequest) error {
	bad := func(field, format string, args ...any) error {
		return pos.FieldErrorf(pos.EInvalid, field, format, args...)
	}
	// Names.
	if r.NameEn == "" && r.NameAr == "" {
		return bad("name_en", "name_en or name_ar is required")
	}
	for _, f := range []struct{ field, val string }{{"name_en", r.NameEn}, {"name_ar", r.NameAr}} {
		if !utf8.ValidString(f.val) {
			return bad(f.field, "must be valid UTF-8")
		}
		if n := runes(f.val); n > NameMaxLen {
			return bad(f.field, "must be at most %d characters (got %d)", NameMaxLen, n)
		}
		if hasControl(f.val) {
			return bad(f.field, "must not contain control characters")
		}
		if f.val != "" && strings.TrimSpace(f.val) == "" {
			return bad(f.field, "must not be blank")
		}
	}
	// The merchant's own id for the payee: the provider's duplicate key.
	switch id := r.MerchantCustomerID; {
	case id == "":
		return bad("merchant_customer_id", "is required")
	case !printableASCII(id):
		return bad("merchant_customer_id", "must be printable ASCII")
	case len(id) > MerchantCustomIDMax:
		return bad("merchant_customer_id", "must be at most %d characters (got %d)", MerchantCustomIDMax, len(id))
	}
	// Identity: secret, so no value in any message.
	switch {
	case strings.TrimSpace(r.Identity) == "":
		return bad("identity", "is required")
	case !utf8.ValidString(r.Identity):
		return bad("identity", "must be valid UTF-8")
	case runes(r.Identity) > IdentityMaxLen:
		return bad("identity", "must be at most %d characters", IdentityMaxLen)
	case hasControl(r.Identity):
		return bad("identity", "must not contain control characters")
	}
	// Account fields, each on its own.
	if r.BankCode != "" {
		if !printableASCII(r.BankCode) || strings.TrimSpace(r.BankCode) == "" {
			return bad("bank_code", "must be printable ASCII")
		}
		if len(r.BankCode) > BankCodeMaxLen {
			return bad("bank_code", "must be at most %d characters (got %d)", BankCodeMaxLen, len(r.BankCode))
		}
	}
	if r.CardNo != "" && !ValidCardNo(r.CardNo) {
		return bad("card_number", "must be %d to %d digits (no spaces or dashes)", CardNoMinDigits, CardNoMaxDigits)
	}
	if r.IBAN != "" {
		if !alnumASCII(r.IBAN) {
			return bad("iban", "must be letters and digits only (no spaces)")
		}
		if len(r.IBAN) > IBANMaxLen {
			return bad("iban", "must be at most %d characters (got %d)", IBANMaxLen, len(r.IBAN))
		}
	}
	if r.STCAccount != "" && !ValidSTCAccount(r.STCAccount) {
		return bad("stc_account", "must be an STC Pay number: 5xxxxxxxx, 05xxxxxxxx, 9665xxxxxxxx or +9665xxxxxxxx")
	}
	// Other optional fields.
	if n := runes(r.Address); n > AddressMaxLen {
		return bad("address", "must be at most %d characters (got %d)", AddressMaxLen, n)
	}
	if hasControl(strings.NewReplacer("\n", "", "\r", "").Replace(r.Address)) {
		return bad("address", "must not contain control characters other than line breaks")
	}
	if r.SwiftCode != "" {
		if !alnumASCII(r.SwiftCode) {
			return bad("swift_code", "must be letters and digits only")
		}
		if len(r.SwiftCode) > SwiftCodeMaxLen {
			return bad("swift_code", "must be at most %d characters (got %d)", SwiftCodeMaxLen, len(r.SwiftCode))
		}
	}
	if a := r.AutoApproval; a != nil && *a != 0 && *a != 1 {
		return bad("auto_approval", "must be 0 or 1 (got %d)", *a)
	}
	if n := runes(r.OTPAppName); n > OTPAppNameMaxLen {
		return bad("otp_app_name", "must be at most %d characters (got %d)", OTPAppNameMaxLen, n)
	}
	if hasControl(r.OTPAppName) {
		return bad("otp_app_name", "must not contain control characters")
	}
	if r.Currency != "" && !currencyPattern.MatchString(r.Currency) {
		return bad("currency", "must be a 3-letter upper-case ISO 4217 code such as SAR")
	}
	// Exactly one kind of account, complete.
	var bankGiven, bankMissing []string
	for _, f := range []struct{ field, val string }{{"bank_code", r.BankCode}, {"card_number", r.CardNo}, {"iban", r.IBAN}} {
		if f.val != "" {
			bankGiven = append(bankGiven, f.field)
		} else {
			bankMissing = append(bankMissing, f.field)
		}
	}
	switch {
	case len(bankGiven) > 0 && r.STCAccount != "":
		return bad("stc_account", "give either a bank account (%s) or an STC Pay account (stc_account), not both", strings.Join(bankGiven, ", "))
	case len(bankGiven) > 0 && len(bankMissing) > 0:
		return bad(bankMissing[0], "a bank account needs bank_code, card_number and iban together: %s missing", strings.Join(bankMissing, ", "))
	case len(bankGiven) == 0 && r.STCAccount == "":
		return bad("bank_code", "an account is required: bank_code, card_number and iban for a bank account, or stc_account for STC Pay")
	}
	if cur := r.Currency; (cur == "KWD" || cur == "AED") && r.Address == "" && r.SwiftCode == "" {
		return bad("address", "%s payouts need address or swift_code", cur)
	}
	return nil
}

// SealedPayee is the provider's create-payee request as it goes on the
// wire, with identity, cardno and stcaccount already sealed with the
// provider's public key. Its JSON is the request body; the bridge stores
// it as is, so no plaintext secret is ever written to disk.
type SealedPayee struct {
	NameE        string `json:"name_e,omitempty"`
	NameA        string `json:"name_a,omitempty"`
	MerCustomID  string `json:"mercustomid"`
	Identity     string `json:"identity"` // sealed
	BankCode     string `json:"bankcode,omitempty"`
	CardNo       string `json:"cardno,omitempty"` // sealed
	IBANAccount  string `json:"ibanaccount,omitempty"`
	STCAccount   string `json:"stcaccount,omitempty"` // sealed
	Address      string `json:"address,omitempty"`
	SwiftCode    string `json:"swiftcode,omitempty"`
	AutoApproval *int   `json:"autoapproval,omitempty"`
	OTPAppName   string `json:"otpappname,omitempty"`
}

// LogValue logs what identifies the request, not the sealed blobs.
func (p SealedPayee) LogValue() slog.Value {
	kind := "bank"
	if p.STCAccount != "" {
		kind = "stc_pay"
	}
	return slog.GroupValue(slog.String("mercustomid", p.MerCustomID), slog.String("account", kind))
}

// SealPayee validates r and returns the wire request: provider field
// names, name_a falling back to name_en, and identity, cardno and
// stcaccount sealed with s. Validation errors are *pos.Error.
func SealPayee(r PayeeRequest, s *crypto.Sealer) (SealedPayee, error) {
	if err := Validate(r); err != nil {
		return SealedPayee{}, err
	}
	if s == nil {
		return SealedPayee{}, fmt.Errorf("payout: seal payee: no sealer")
	}
	out := SealedPayee{
		NameE: r.NameEn, NameA: r.NameAr, MerCustomID: r.MerchantCustomerID,
		BankCode: r.BankCode, IBANAccount: r.IBAN, Address: r.Address, SwiftCode: r.SwiftCode,
		AutoApproval: r.AutoApproval, OTPAppName: r.OTPAppName,
	}
	if out.NameA == "" {
		out.NameA = r.NameEn
	}
	if r.AutoApproval != nil {
		a := *r.AutoApproval
		out.AutoApproval = &a
	}
	for _, f := range []struct {
		field string
		plain string
		dst   *string
	}{
		{"identity", r.Identity, &out.Identity},
		{"card_number", r.CardNo, &out.CardNo},
		{"stc_account", r.STCAccount, &out.STCAccount},
	} {
		if f.plain == "" {
			continue
		}
		sealed, err := s.Seal(f.plain)
		if err != nil {
			return SealedPayee{}, fmt.Errorf("payout: seal %s: %w", f.field, err)
		}
		*f.dst = sealed
	}
	return out, nil
}
