package hitpay

import (
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/pos"
)

// MaxLength bounds every free-text field, in characters (runes).
const MaxLength = 255

// Rule names one of the bridge's rules. The simulator words its 422
// messages by it, in the Laravel wording of HitPay's 422 answers.
type Rule string

// The rules.
const (
	RuleRequired      Rule = "required"        // must be given
	RuleMax           Rule = "max"             // at most Max characters
	RuleEmail         Rule = "email"           // an email address
	RuleDigits        Rule = "digits"          // digits 0-9 only
	RuleDigitsBetween Rule = "digits_between"  // Min to Max digits
	RuleRequiredWith  Rule = "required_with"   // required when Other is given
	RuleDateFormat    Rule = "date_format"     // YYYY-MM-DD
	RuleDate          Rule = "date"            // a real date
	RuleNotFuture     Rule = "before_or_equal" // today or earlier
	RuleIn            Rule = "in"              // one of a list
	RuleCountry       Rule = "country"         // ISO 3166-1 alpha-2
)

// Violation is one broken rule.
type Violation struct {
	// Field is the till API's name, e.g. "mobile_number", "address.country".
	Field string
	// WireField is HitPay's name, e.g. "phone_number", "address.country".
	WireField string
	Rule      Rule
	// Min and Max bound RuleMax, RuleDigits and RuleDigitsBetween.
	Min, Max int
	// Other is the HitPay field RuleRequiredWith depends on.
	Other string
	// Message says what is wrong, for the till.
	Message string
}

// wireNames maps the till API's field names to HitPay's where they differ.
var wireNames = map[string]string{
	"mobile_number": "phone_number",
	"country_code":  "phone_number_country_code",
}

// WireField returns HitPay's name for a till API field.
func WireField(till string) string {
	if w, ok := wireNames[till]; ok {
		return w
	}
	return till
}

// TillField returns the till API's name for a HitPay field.
func TillField(wire string) string {
	for t, w := range wireNames {
		if w == wire {
			return t
		}
	}
	return wire
}

// Validate checks r against the bridge's rules for a customer. HitPay's
// public documentation lists the fields but hardly says what it accepts,
// so these rules are the bridge's own, chosen so that what the bridge
// accepts HitPay should accept too; the simulator (hitpaysim) enforces the
// same rules with HitPay's 422 answers. A field counts as given when it is
// not blank; given fields are checked as they are, not trimmed. Fields are
// named as in the till API:
//
//	name                required, at most 255 characters (runes: Arabic is fine)
//	email               optional; at most 255 characters; an address such as
//	                    name@example.com (no display name, a domain of at least
//	                    two labels)
//	mobile_number       optional (HitPay: phone_number); digits 0-9 only, 6 to 15
//	country_code        (HitPay: phone_number_country_code) digits 0-9 only, 1 to
//	                    4, without '+'; required when mobile_number is given
//	remark              at most 255 characters
//	birth_date          YYYY-MM-DD, a real date, not in the future (today
//	                    anywhere on Earth is accepted: the check uses UTC+14)
//	gender              "male", "female" or empty
//	address.city, address.state, address.street, address.postal_code
//	                    at most 255 characters each
//	address.country     an ISO 3166-1 alpha-2 code in capitals, e.g. SG, KW
//
// It returns the first field that breaks a rule, in the order listed, as a
// *pos.Error with code pos.EInvalid naming the till API field, or nil.
func Validate(r CustomerRequest) error {
	if vs := violations(r, time.Now()); len(vs) > 0 {
		return pos.FieldErrorf(pos.EInvalid, vs[0].Field, "%s", vs[0].Message)
	}
	return nil
}

// Violations returns every field of r that breaks the bridge's rules, at
// most one per field, in the order the rules list them.
func Violations(r CustomerRequest) []Violation { return violations(r, time.Now()) }

// latestZone is the time zone that reaches a date first (Kiribati's Line
// Islands): a birth date that is today there is today somewhere.
var latestZone = time.FixedZone("UTC+14", 14*3600)

func violations(r CustomerRequest, now time.Time) []Violation {
	var out []Violation
	add := func(v *Violation) {
		if v != nil {
			out = append(out, *v)
		}
	}
	add(checkName(r.Name))
	add(checkEmail(r.Email))
	add(checkDigits("mobile_number", "mobile number", r.PhoneNumber, 6, 15))
	if given(r.PhoneNumber) && !given(r.PhoneNumberCountryCode) {
		add(&Violation{Field: "country_code", Rule: RuleRequiredWith, Other: WireField("mobile_number"),
			Message: "country code is required with a mobile number (digits only, such as 65 or 965)"})
	} else {
		add(checkDigits("country_code", "country code", r.PhoneNumberCountryCode, 1, 4))
	}
	add(checkMax("remark", "remark", r.Remark))
	add(checkBirthDate(r.BirthDate, now))
	if given(r.Gender) && r.Gender != "male" && r.Gender != "female" {
		add(&Violation{Field: "gender", Rule: RuleIn, Message: `gender must be "male", "female" or empty`})
	}
	add(checkMax("address.city", "city", r.Address.City))
	add(checkMax("address.state", "state", r.Address.State))
	add(checkMax("address.street", "street", r.Address.Street))
	add(checkMax("address.postal_code", "postal code", r.Address.PostalCode))
	if c := r.Address.Country; given(c) && !isCountry(c) {
		add(&Violation{Field: "address.country", Rule: RuleCountry,
			Message: "country must be an ISO 3166-1 alpha-2 code in capitals, such as SG or KW"})
	}
	for i := range out {
		out[i].WireField = WireField(out[i].Field)
	}
	return out
}

func given(s string) bool { return strings.TrimSpace(s) != "" }

func checkName(name string) *Violation {
	if !given(name) {
		return &Violation{Field: "name", Rule: RuleRequired, Message: "name is required"}
	}
	return checkMax("name", "name", name)
}

func checkMax(field, what, s string) *Violation {
	if n := utf8.RuneCountInString(s); n > MaxLength {
		return &Violation{Field: field, Rule: RuleMax, Max: MaxLength,
			Message: fmt.Sprintf("%s must be at most %d characters (got %d)", what, MaxLength, n)}
	}
	return nil
}

func checkEmail(email string) *Violation {
	if !given(email) {
		return nil
	}
	if v := checkMax("email", "email", email); v != nil {
		return v
	}
	if !validEmail(email) {
		return &Violation{Field: "email", Rule: RuleEmail, Message: "email must be a valid address such as name@example.com"}
	}
	return nil
}

// validEmail accepts what net/mail parses as a bare address (no display
// name, nothing around it) whose domain has at least two labels of
// letters, digits and inner hyphens.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	labels := strings.Split(s[at+1:], ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if r != '-' && !isLetterOrDigit(r) {
				return false
			}
		}
	}
	return true
}

func isLetterOrDigit(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r >= utf8.RuneSelf
}

func checkDigits(field, what, s string, minN, maxN int) *Violation {
	if !given(s) {
		return nil
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return &Violation{Field: field, Rule: RuleDigits, Min: minN, Max: maxN,
				Message: what + " must hold only the digits 0-9 (no spaces, '+' or '-')"}
		}
	}
	if len(s) < minN || len(s) > maxN {
		return &Violation{Field: field, Rule: RuleDigitsBetween, Min: minN, Max: maxN,
			Message: fmt.Sprintf("%s must be %d to %d digits (got %d)", what, minN, maxN, len(s))}
	}
	return nil
}

func checkBirthDate(s string, now time.Time) *Violation {
	if !given(s) {
		return nil
	}
	if !isDateShape(s) {
		return &Violation{Field: "birth_date", Rule: RuleDateFormat, Message: "birth date must be YYYY-MM-DD"}
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return &Violation{Field: "birth_date", Rule: RuleDate, Message: fmt.Sprintf("birth date %s is not a real date", s)}
	}
	if today := now.In(latestZone).Format(time.DateOnly); s > today {
		return &Violation{Field: "birth_date", Rule: RuleNotFuture, Message: fmt.Sprintf("birth date %s is in the future", s)}
	}
	return nil
}

// isDateShape reports whether s is NNNN-NN-NN.
func isDateShape(s string) bool {
	if len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 4, 7:
			if s[i] != '-' {
				return false
			}
		default:
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
	}
	return true
}

// isCountry reports whether c is an officially assigned ISO 3166-1 alpha-2
// code.
func isCountry(c string) bool {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return false
	}
	for i := 0; i+2 <= len(countryCodes); i += 3 {
		if countryCodes[i:i+2] == c {
			return true
		}
	}
	return false
}

// countryCodes lists the 249 officially assigned ISO 3166-1 alpha-2 codes.
const countryCodes = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ " +
	"BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ " +
	"DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY " +
	"HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY " +
	"MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ OM " +
	"PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ " +
	"TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ " +
	"VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW "
