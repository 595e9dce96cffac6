package hesabesim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
)

// fieldError is Hesabe's validation answer: code 422 with an {en,ar} message.
func fieldError(en, ar string) answer {
	return fail(http.StatusUnprocessableEntity, hesabe.CodeInvalidInput, map[string]string{"en": en, "ar": ar})
}

func str(p map[string]any, k string) string {
	switch v := p[k].(type) {
	case string:
		return v
	case json.Number:
		return string(v)
	}
	return ""
}

// moneyField reads an amount given as a JSON number or a string.
func moneyField(p map[string]any, k string) (pos.Money, bool) {
	var text string
	switch v := p[k].(type) {
	case json.Number:
		text = string(v)
	case string:
		text = v
	default:
		return 0, false
	}
	m, err := pos.ParseMoney(text)
	return m, err == nil
}

func (s *Server) handlePOSTransaction(req *request) answer {
	p := req.payload
	for _, k := range []string{"merchantCode", "customer_name", "amount", "terminal_id"} {
		if _, present := p[k]; !present || str(p, k) == "" && k != "amount" {
			return fieldError("The "+strings.ReplaceAll(k, "_", " ")+" field is required.", "حقل "+k+" مطلوب.")
		}
	}
	amount, valid := moneyField(p, "amount")
	if !valid || amount <= 0 {
		return fieldError("The amount must be a positive number with at most 3 decimals.", "يجب أن يكون المبلغ رقما موجبا.")
	}
	m := req.m
	var term *hesabe.Terminal
	for i := range m.Terminals {
		if m.Terminals[i].TerminalID == str(p, "terminal_id") {
			term = &m.Terminals[i]
		}
	}
	if term == nil {
		return fail(http.StatusOK, -1, msgNotFound)
	}
	if str(p, "resend") == "1" {
		return s.resend(req, str(p, "transaction_id"))
	}
	now := time.Now()
	s.mu.Lock()
	s.nextID++
	inv := &hesabe.POSInvoice{
		ID: s.nextID, TransactionID: transactionID(term.TerminalID, m.Code, s.nextID, now),
		InvoiceNumber: str(p, "invoice_number"), Amount: amount, TerminalID: term.TerminalID,
		TerminalName: term.TerminalName, MerchantID: m.ID, MerchantName: m.Name,
		CustomerName: str(p, "customer_name"), CustomerEmail: str(p, "customer_email"),
		CustomerPhone: str(p, "customer_phone"), Description: str(p, "description"),
		Status: hesabe.InvoicePending, CreatedAt: kuwaitTime(now), UpdatedAt: kuwaitTime(now),
	}
	m.invoices = append(m.invoices, inv)
	m.byID[inv.ID] = inv
	m.byTx[inv.TransactionID] = inv
	body := invoiceJSON(inv, m)
	copyInv := *inv
	s.mu.Unlock()
	if s.opts.OnInvoice != nil {
		s.opts.OnInvoice(copyInv)
	}
	return ok("POS invoice created successfully", "response", body)
}

func (s *Server) resend(req *request, txID string) answer {
	s.mu.Lock()
	inv := req.m.byTx[txID]
	if inv == nil {
		s.mu.Unlock()
		return fail(http.StatusOK, -1, msgNotFound)
	}
	body := invoiceJSON(inv, req.m)
	copyInv := *inv
	s.mu.Unlock()
	if s.opts.OnInvoice != nil {
		s.opts.OnInvoice(copyInv)
	}
	return ok("POS invoice resent successfully", "response", body)
}

// transactionID makes a 30-digit id like Hesabe's: terminal id, merchant
// code, then digits from the invoice id and the clock.
func transactionID(terminal, merchant string, id int64, now time.Time) string {
	s := terminal + merchant + strconv.FormatInt(id, 10) + strconv.FormatInt(now.UnixNano(), 10)
	if len(s) > 30 {
		s = s[:30]
	}
	return s
}

var (
	digits8to10 = regexp.MustCompile(`^[0-9]{8,10}$`)
	digits1to3  = regexp.MustCompile(`^[0-9]{1,3}$`)
	dateRe      = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	// emailRe: dot-separated atoms (letters of any script, digits, RFC 5322
	// atom symbols), '@', then at least two domain labels not starting or
	// ending with '-'.
	emailRe = regexp.MustCompile("^" + emailAtom + `(?:\.` + emailAtom + `)*@` + emailLabel + `(?:\.` + emailLabel + `)+$`)
)

const (
	emailAtom  = "[\\p{L}\\p{M}\\p{N}!#$%&'*+/=?^_`{|}~-]+"
	emailLabel = `[\p{L}\p{N}](?:[\p{L}\p{M}\p{N}-]*[\p{L}\p{M}\p{N}])?`
)

// blank is how Hesabe's framework sees a required field: it trims input,
// so a value of spaces is missing.
func blank(s string) bool { return strings.TrimSpace(s) == "" }

func required(k string) answer {
	return fieldError("The "+strings.ReplaceAll(k, "_", " ")+" field is required.", "حقل "+k+" مطلوب.")
}

func (s *Server) handleCustomer(req *request) answer {
	p := req.payload
	name, email, mobile := str(p, "name"), str(p, "email"), str(p, "mobile_number")
	switch {
	case blank(name):
		return required("name")
	case utf8.RuneCountInString(name) > hesabe.MaxNameRunes:
		return fieldError(fmt.Sprintf("The name may not be greater than %d characters.", hesabe.MaxNameRunes),
			fmt.Sprintf("يجب ألا يزيد الاسم عن %d حرفا.", hesabe.MaxNameRunes))
	case blank(email):
		return required("email")
	case !emailRe.MatchString(email):
		return fieldError("The email must be a valid email address.", "يجب أن يكون البريد الإلكتروني صالحا.")
	case blank(mobile):
		return required("mobile_number")
	case !digits8to10.MatchString(mobile):
		return fieldError("The mobile number must be 8 to 10 digits.", "يجب أن يتكون رقم الجوال من 8 إلى 10 أرقام.")
	}
	s.mu.Lock()
	s.nextCust++
	c := hesabe.Customer{ID: s.nextCust, CustomerID: fmt.Sprintf("8422%04d", s.nextCust%10000),
		Name: name, MobileNumber: mobile, Email: email}
	req.m.customers = append(req.m.customers, c)
	s.mu.Unlock()
	return ok("Customer created successfully", "data", map[string]any{
		"id": c.ID, "customer_id": c.CustomerID, "name": c.Name, "mobile_number": c.MobileNumber, "email": c.Email,
	})
}

// Invoice types, and the sub-types each allows: a URL-sharing invoice
// ("0") is delivered as a URL ("3"); an SMS invoice ("1") is sent by SMS
// ("0"), WhatsApp ("1") or email ("2"), the last needing an address.
var subTypesOf = map[string][]string{"0": {"3"}, "1": {"0", "1", "2"}}

// kuwaitDate is t's date in Kuwait (UTC+3, no daylight saving), YYYY-MM-DD.
func kuwaitDate(t time.Time) string {
	return t.In(time.FixedZone("AST", 3*3600)).Format(time.DateOnly)
}

// payTypes splits an allocatePayType list ("1,2"; spaces around a code
// are tolerated).
func payTypes(list string) []string {
	codes := strings.Split(list, ",")
	for i := range codes {
		codes[i] = strings.TrimSpace(codes[i])
	}
	return codes
}

// validateEMI checks invoice i of a batch as Hesabe's docs describe, field
// by field in the order the bridge's validator uses. today is Kuwait's
// date (kuwaitDate); refs maps the reference numbers seen so far to their
// invoice.
func validateEMI(i int, inv map[string]any, today string, refs map[string]int) (string, bool) {
	at := fmt.Sprintf("invoices.%d.", i)
	req := func(k string) (string, bool) { return "The " + at + k + " field is required.", false }

	amt, isString := inv["amount"].(string)
	if blank(str(inv, "amount")) {
		return req("amount")
	}
	m, err := pos.ParseMoney(amt)
	if !isString || err != nil || !strings.Contains(amt, ".") || len(amt)-strings.Index(amt, ".") != 4 {
		return "The " + at + "amount must be a string with 3 decimals.", false
	}
	if m <= 0 {
		return "The " + at + "amount must be greater than 0.", false
	}

	exp := str(inv, "expiresAt")
	if blank(exp) {
		return req("expiresAt")
	}
	if _, err := time.Parse(time.DateOnly, exp); !dateRe.MatchString(exp) || err != nil {
		return "The " + at + "expiresAt does not match the format Y-m-d.", false
	}
	if exp <= today { // both YYYY-MM-DD: text order is date order
		return "The " + at + "expiresAt must be a date after today.", false
	}

	ref := str(inv, "referenceNumber")
	if blank(ref) {
		return req("referenceNumber")
	}
	if _, dup := refs[ref]; dup {
		return "The " + at + "referenceNumber field has a duplicate value.", false
	}
	refs[ref] = i

	typ, sub := str(inv, "invoiceType"), str(inv, "invoiceSubType")
	switch {
	case typ == "":
		return req("invoiceType")
	case subTypesOf[typ] == nil:
		return "The selected " + at + "invoiceType is invalid.", false
	case sub == "":
		return req("invoiceSubType")
	case len(sub) != 1 || sub < "0" || sub > "3":
		return "The selected " + at + "invoiceSubType is invalid.", false
	case !slices.Contains(subTypesOf[typ], sub):
		return "The " + at + "invoiceSubType does not match " + at + "invoiceType.", false
	}

	if l := str(inv, "language"); l != "" && l != "en" && l != "ar" {
		return "The " + at + "language must be en or ar.", false
	}
	if blank(str(inv, "description")) {
		return req("description")
	}
	name := str(inv, "customerName")
	if blank(name) {
		return req("customerName")
	}
	if utf8.RuneCountInString(name) > hesabe.MaxNameRunes {
		return fmt.Sprintf("The %scustomerName may not be greater than %d characters.", at, hesabe.MaxNameRunes), false
	}
	mobile := str(inv, "mobileNumber")
	if blank(mobile) {
		return req("mobileNumber")
	}
	if !digits8to10.MatchString(mobile) {
		return "The " + at + "mobileNumber must be 8 to 10 digits.", false
	}
	// countryCode defaults to Kuwait's 965, as language defaults to en.
	if cc := str(inv, "countryCode"); cc != "" && !digits1to3.MatchString(cc) {
		return "The " + at + "countryCode must be 1 to 3 digits.", false
	}
	email := str(inv, "customerEmail")
	if blank(email) && sub == "2" {
		return "The " + at + "customerEmail field is required when " + at + "invoiceSubType is 2.", false
	}
	if !blank(email) && !emailRe.MatchString(email) {
		return "The " + at + "customerEmail must be a valid email address.", false
	}

	list := str(inv, "allocatePayType")
	if blank(list) {
		return req("allocatePayType")
	}
	seen := map[string]bool{}
	for _, code := range payTypes(list) {
		n, err := strconv.Atoi(code)
		if err != nil || strconv.Itoa(n) != code || hesabe.PaymentTypes[hesabe.PaymentType(n)] == "" {
			return "The " + at + "allocatePayType has an unknown payment type " + strconv.Quote(code) + ".", false
		}
		if seen[code] {
			return "The " + at + "allocatePayType has a duplicate payment type " + strconv.Quote(code) + ".", false
		}
		seen[code] = true
	}

	if items, ok := inv["itemsList"].([]any); ok && len(items) > 0 {
		var total pos.Money
		for j, it := range items {
			im, _ := it.(map[string]any)
			iat := fmt.Sprintf("%sitemsList.%d.", at, j)
			if blank(str(im, "itemTitle")) {
				return "The " + iat + "itemTitle field is required.", false
			}
			rate, okR := moneyField(im, "rate")
			if !okR || rate < 0 {
				return "The " + iat + "rate must be an amount of at least 0.", false
			}
			qty, err := strconv.ParseInt(str(im, "quantity"), 10, 64)
			if err != nil || qty < 1 {
				return "The " + iat + "quantity must be an integer of at least 1.", false
			}
			a, okA := moneyField(im, "amount")
			if !okA || rate > 0 && int64(rate) > math.MaxInt64/qty || a != rate*pos.Money(qty) {
				return "The " + iat + "amount must equal rate × quantity.", false
			}
			if total, err = total.Add(a); err != nil {
				return "The " + at + "itemsList total is too large.", false
			}
		}
		if total < m {
			return fmt.Sprintf("The %sitemsList total %s must not be below the invoice amount %s.", at, total, m), false
		}
	}
	return "", true
}

func (s *Server) handleEMI(req *request) answer {
	list, okList := req.payload["invoices"].([]any)
	if !okList || len(list) == 0 {
		return fieldError("The invoices field is required.", "حقل الفواتير مطلوب.")
	}
	// Hesabe documents no batch limit; the simulator holds the bridge's.
	if len(list) > hesabe.MaxEMIBatch {
		return fieldError(fmt.Sprintf("The invoices may not have more than %d items.", hesabe.MaxEMIBatch),
			fmt.Sprintf("لا يجوز أن تحتوي الفواتير على أكثر من %d فاتورة.", hesabe.MaxEMIBatch))
	}
	today := kuwaitDate(time.Now())
	refs := make(map[string]int, len(list))
	for i, it := range list {
		inv, _ := it.(map[string]any)
		if msg, valid := validateEMI(i, inv, today, refs); !valid {
			return fieldError(msg, "بيانات الفاتورة غير صالحة.")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, 0, len(list))
	for i, it := range list {
		inv := it.(map[string]any)
		s.nextEMI++
		req.m.emi++
		token := randomToken()[:20]
		// Hesabe's answer mixes numbers and strings for the same field from
		// one element to the next; so does the simulator.
		var subType, merchantID, status any = str(inv, "invoiceSubType"), strconv.FormatInt(req.m.ID, 10), nil
		if i%2 == 0 {
			n, _ := strconv.Atoi(str(inv, "invoiceSubType"))
			subType, merchantID, status = n, req.m.ID, 0
		}
		out = append(out, map[string]any{
			"id": s.nextEMI, "invoice_type": str(inv, "invoiceType"), "invoice_sub_type": subType,
			"token": token, "access_key": randomToken()[:16], "reference_number": str(inv, "referenceNumber"),
			"amount": str(inv, "amount"), "payment_method": payTypes(str(inv, "allocatePayType")),
			"invoice_status": status, "url": "https://sandbox.hesabe.com/invoice/" + token,
			"expires_at": str(inv, "expiresAt"), "merchant_id": merchantID,
			"customer": map[string]any{"name": str(inv, "customerName"), "email": str(inv, "customerEmail"),
				"phone_number": str(inv, "mobileNumber")},
			"products": []any{}, "transaction": nil,
		})
	}
	s.emiBatches++ // s.mu is held
	return ok("Invoices processed successfully.", "response", out)
}

// EMIBatchCount is the number of HeStallMent batches accepted (each may
// hold several invoices; see EMIInvoiceCount).
func (s *Server) EMIBatchCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.emiBatches
}
