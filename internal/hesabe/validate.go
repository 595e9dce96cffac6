package hesabe

// Bridge-side validation of customers and HeStallMent batches. The bridge
// stores these and delivers them to Hesabe later, perhaps after an outage,
// so a request Hesabe would refuse must be refused at once, naming the till
// API field (snake_case, with paths such as invoices[3].items[0].rate) and
// saying what is wrong. The simulator (hesabesim) enforces the same rules
// with Hesabe's 422 answers; validate_test.go sends every invalid case to
// both, so the two cannot drift apart unnoticed.

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/pos"
)

// MaxEMIBatch is the most invoices one HeStallMent batch may hold. Hesabe's
// documentation gives no limit; this is the bridge's, small enough that one
// refused or lost batch stays easy to reconcile. The simulator enforces it.
const MaxEMIBatch = 100

// MaxNameRunes bounds a customer's name, in characters (runes, so an Arabic
// name is not penalised for its two-byte letters). Hesabe documents no
// limit; this is the bridge's, and the simulator enforces it.
const MaxNameRunes = 100

// PaymentType is a payment method code of an installment invoice's
// allocatePayType list.
type PaymentType int

// PaymentTypes names every payment type code Hesabe documents. The
// validator and the simulator both accept exactly these.
var PaymentTypes = map[PaymentType]string{
	1:  "KNET",
	2:  "MPGS",
	5:  "CYBS",
	7:  "AMEX",
	8:  "MPGS AMEX",
	9:  "MPGS Apple Pay",
	10: "CYBS Apple Pay",
	11: "KNET Debit Apple Pay",
	12: "KNET Credit Apple Pay",
	13: "KNET Apple Pay International",
	14: "AMEX Apple Pay International",
	16: "Google Pay",
}

func (p PaymentType) String() string {
	if n, ok := PaymentTypes[p]; ok {
		return n
	}
	return "unknown(" + strconv.Itoa(int(p)) + ")"
}

// JoinPaymentTypes returns the allocatePayType wire string for a list of
// payment types: [1 2] is "1,2".
func JoinPaymentTypes(types []PaymentType) string {
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = strconv.Itoa(int(t))
	}
	return strings.Join(parts, ",")
}

// knownPaymentCodes lists the codes of PaymentTypes in order, for messages.
func knownPaymentCodes() string {
	codes := make([]int, 0, len(PaymentTypes))
	for t := range PaymentTypes {
		codes = append(codes, int(t))
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ", ")
}

// The invoice types and sub-types (hesabe-api.md §6). A URL-sharing
// invoice is delivered as a URL; an SMS invoice is sent to the customer by
// SMS, WhatsApp or email, and sending by email needs an address.
var (
	invoiceTypes    = map[string]string{"0": "URL sharing", "1": "SMS"}
	invoiceSubTypes = map[string]string{"0": "SMS", "1": "WhatsApp", "2": "Email", "3": "URL"}
	subTypesOf      = map[string][]string{"0": {"3"}, "1": {"0", "1", "2"}}
)

const subTypeEmail = "2"

// kuwait is Kuwait's time zone: UTC+3 all year. A fixed zone needs no tz
// database (the bridge runs as a Windows service, too).
var kuwait = time.FixedZone("AST", 3*3600)

var (
	mobileRe      = regexp.MustCompile(`^[0-9]{8,10}$`)
	countryCodeRe = regexp.MustCompile(`^[0-9]{1,3}$`)
	dateRe        = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	// emailRe takes dot-separated atoms of letters (any script), digits and
	// RFC 5322's atom symbols, an '@', and a domain of at least two labels
	// that neither start nor end with '-'. No display names, quotes,
	// comments or IP literals.
	emailRe = regexp.MustCompile("^" + emailAtom + `(?:\.` + emailAtom + `)*@` +
		emailLabel + `(?:\.` + emailLabel + `)+$`)
)

const (
	emailAtom  = "[\\p{L}\\p{M}\\p{N}!#$%&'*+/=?^_`{|}~-]+"
	emailLabel = `[\p{L}\p{N}](?:[\p{L}\p{M}\p{N}-]*[\p{L}\p{M}\p{N}])?`
)

const (
	msgMobile = "mobile number must be 8 to 10 digits (0-9), without spaces, '+' or country code"
	msgEmail  = "must be a valid address such as name@example.com"
)

func blank(s string) bool { return strings.TrimSpace(s) == "" }

func invalid(field, format string, args ...any) *pos.Error {
	return pos.FieldErrorf(pos.EInvalid, field, format, args...)
}

// ValidateCustomer reports the first field of a create-customer request that
// Hesabe would refuse, as a *pos.Error with code pos.EInvalid, or nil.
func ValidateCustomer(r CustomerRequest) error {
	if e := validateCustomer(r); e != nil {
		return e
	}
	return nil
}

func validateCustomer(r CustomerRequest) *pos.Error {
	if e := checkName("name", "name", r.Name); e != nil {
		return e
	}
	switch {
	case blank(r.Email):
		return invalid("email", "email is required")
	case !emailRe.MatchString(r.Email):
		return invalid("email", "email "+msgEmail)
	case blank(r.MobileNumber):
		return invalid("mobile_number", "mobile number is required")
	case !mobileRe.MatchString(r.MobileNumber):
		return invalid("mobile_number", msgMobile)
	}
	return nil
}

// checkName requires a name of at most MaxNameRunes characters; any script.
func checkName(field, what, name string) *pos.Error {
	if blank(name) {
		return invalid(field, "%s is required", what)
	}
	if n := utf8.RuneCountInString(name); n > MaxNameRunes {
		return invalid(field, "%s must be at most %d characters (got %d)", what, MaxNameRunes, n)
	}
	return nil
}

// ValidateInstallments reports the first thing in a HeStallMent batch that
// Hesabe would refuse, as a *pos.Error with code pos.EInvalid, or nil.
// Expiry dates must be after now's date in Kuwait. maxBatch caps the batch;
// below 1 or above MaxEMIBatch it is MaxEMIBatch.
//
// Amounts are Money, whole fils, so "at most 3 decimals" holds by
// construction (pos.ParseMoney refuses more when the till's JSON is read).
func ValidateInstallments(invs []EMIInvoice, now time.Time, maxBatch int) error {
	if e := validateInstallments(invs, now, maxBatch); e != nil {
		return e
	}
	return nil
}

func validateInstallments(invs []EMIInvoice, now time.Time, maxBatch int) *pos.Error {
	if maxBatch < 1 || maxBatch > MaxEMIBatch {
		maxBatch = MaxEMIBatch
	}
	switch {
	case len(invs) == 0:
		return invalid("invoices", "a batch needs at least one invoice")
	case len(invs) > maxBatch:
		return invalid("invoices", "a batch holds at most %d invoices (got %d)", maxBatch, len(invs))
	}
	today := now.In(kuwait).Format(time.DateOnly)
	refs := make(map[string]int, len(invs))
	for i, inv := range invs {
		if e := validateInvoice(i, inv, today, refs); e != nil {
			return e
		}
	}
	return nil
}

// validateInvoice checks invoice i. today is Kuwait's date, YYYY-MM-DD;
// refs maps the reference numbers seen so far to their invoice.
func validateInvoice(i int, inv EMIInvoice, today string, refs map[string]int) *pos.Error {
	at := func(name string) string { return "invoices[" + strconv.Itoa(i) + "]." + name }

	if inv.Amount <= 0 {
		return invalid(at("amount"), "amount must be greater than 0 (got %s)", inv.Amount)
	}

	switch exp := inv.ExpiresAt; {
	case blank(exp):
		return invalid(at("expires_at"), "expiry date is required (YYYY-MM-DD)")
	case !dateRe.MatchString(exp):
		return invalid(at("expires_at"), "expiry date must be YYYY-MM-DD (got %q)", exp)
	default:
		if _, err := time.Parse(time.DateOnly, exp); err != nil {
			return invalid(at("expires_at"), "expiry date %s is not a real date", exp)
		}
		// Both are YYYY-MM-DD: text order is date order.
		if exp <= today {
			return invalid(at("expires_at"), "expiry date %s must be after today (%s in Kuwait)", exp, today)
		}
	}

	ref := inv.ReferenceNumber
	if blank(ref) {
		return invalid(at("reference_number"), "reference number is required")
	}
	if j, dup := refs[ref]; dup {
		return invalid(at("reference_number"), "reference number %q is also used by invoices[%d]; each invoice of a batch needs its own", ref, j)
	}
	refs[ref] = i

	typ, sub := inv.InvoiceType, inv.InvoiceSubType
	switch {
	case typ == "":
		return invalid(at("invoice_type"), `invoice type is required: "0" (URL sharing) or "1" (SMS)`)
	case invoiceTypes[typ] == "":
		return invalid(at("invoice_type"), `invoice type must be "0" (URL sharing) or "1" (SMS) (got %q)`, typ)
	case sub == "":
		return invalid(at("invoice_sub_type"), `invoice sub-type is required: "0" (SMS), "1" (WhatsApp), "2" (Email) or "3" (URL)`)
	case invoiceSubTypes[sub] == "":
		return invalid(at("invoice_sub_type"), `invoice sub-type must be "0" (SMS), "1" (WhatsApp), "2" (Email) or "3" (URL) (got %q)`, sub)
	case !slices.Contains(subTypesOf[typ], sub):
		want := make([]string, len(subTypesOf[typ]))
		for k, s := range subTypesOf[typ] {
			want[k] = fmt.Sprintf("%q (%s)", s, invoiceSubTypes[s])
		}
		return invalid(at("invoice_sub_type"), "invoice sub-type %q (%s) does not fit invoice type %q (%s), which needs sub-type %s",
			sub, invoiceSubTypes[sub], typ, invoiceTypes[typ], orList(want))
	}

	if l := inv.Language; l != "" && l != "en" && l != "ar" {
		return invalid(at("language"), `language must be "en" or "ar" (got %q)`, l)
	}
	if blank(inv.Description) {
		return invalid(at("description"), "description is required")
	}
	if e := checkName(at("customer_name"), "customer name", inv.CustomerName); e != nil {
		return e
	}
	switch {
	case blank(inv.MobileNumber):
		return invalid(at("mobile_number"), "mobile number is required")
	case !mobileRe.MatchString(inv.MobileNumber):
		return invalid(at("mobile_number"), msgMobile)
	case inv.CountryCode != "" && !countryCodeRe.MatchString(inv.CountryCode):
		return invalid(at("country_code"), "country code must be 1 to 3 digits without '+', such as 965 (got %q)", inv.CountryCode)
	case blank(inv.CustomerEmail) && sub == subTypeEmail:
		return invalid(at("customer_email"), `customer email is required when the invoice is sent by email (invoice sub-type "2")`)
	case !blank(inv.CustomerEmail) && !emailRe.MatchString(inv.CustomerEmail):
		return invalid(at("customer_email"), "customer email "+msgEmail)
	}

	if e := checkPaymentTypes(at("payment_types"), inv.AllocatePayType); e != nil {
		return e
	}
	return checkItems(at("items"), inv)
}

// orList joins `a`, `a or b`, `a, b or c`.
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// checkPaymentTypes checks an allocatePayType list such as "1,2": known
// codes, each once. Spaces around a code are allowed, as Hesabe allows them.
func checkPaymentTypes(field, list string) *pos.Error {
	if blank(list) {
		return invalid(field, "at least one payment type is required, such as 1 (KNET)")
	}
	seen := map[PaymentType]bool{}
	for code := range strings.SplitSeq(list, ",") {
		code = strings.TrimSpace(code)
		n, err := strconv.Atoi(code)
		t := PaymentType(n)
		if err != nil || strconv.Itoa(n) != code || PaymentTypes[t] == "" {
			return invalid(field, "payment type %q is unknown; known codes: %s", code, knownPaymentCodes())
		}
		if seen[t] {
			return invalid(field, "payment type %d (%s) is listed twice", n, t)
		}
		seen[t] = true
	}
	return nil
}

// checkItems checks an invoice's optional items: each a titled line whose
// amount is rate × quantity, and together not below the invoice amount.
func checkItems(field string, inv EMIInvoice) *pos.Error {
	if len(inv.Items) == 0 {
		return nil
	}
	var total Money
	for j, it := range inv.Items {
		at := func(name string) string { return field + "[" + strconv.Itoa(j) + "]." + name }
		switch {
		case blank(it.Title):
			return invalid(at("title"), "item title is required")
		case it.Rate < 0:
			return invalid(at("rate"), "item rate must not be negative (got %s)", it.Rate)
		case it.Quantity < 1:
			return invalid(at("quantity"), "item quantity must be at least 1 (got %d)", it.Quantity)
		}
		want, fits := mulMoney(it.Rate, int64(it.Quantity))
		if !fits {
			return invalid(at("amount"), "item amount %s must equal rate %s × quantity %d, which is too large", it.Amount, it.Rate, it.Quantity)
		}
		if it.Amount != want {
			return invalid(at("amount"), "item amount %s must equal rate %s × quantity %d = %s", it.Amount, it.Rate, it.Quantity, want)
		}
		var err error
		if total, err = total.Add(it.Amount); err != nil {
			return invalid(field, "items total is too large")
		}
	}
	if total < inv.Amount {
		return invalid(field, "items total %s is below the invoice amount %s", total, inv.Amount)
	}
	return nil
}

// mulMoney returns rate × qty for rate ≥ 0 and qty ≥ 1, and whether it fits.
func mulMoney(rate Money, qty int64) (Money, bool) {
	if rate > 0 && int64(rate) > math.MaxInt64/qty {
		return 0, false
	}
	return rate * Money(qty), true
}
