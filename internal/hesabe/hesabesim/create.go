package hesabesim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

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
	emailRe     = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	dateRe      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

func (s *Server) handleCustomer(req *request) answer {
	p := req.payload
	for _, k := range []string{"name", "email", "mobile_number"} {
		if str(p, k) == "" {
			return fieldError("The "+strings.ReplaceAll(k, "_", " ")+" field is required.", "حقل "+k+" مطلوب.")
		}
	}
	if !digits8to10.MatchString(str(p, "mobile_number")) {
		return fieldError("The mobile number must be 8 to 10 digits.", "يجب أن يتكون رقم الجوال من 8 إلى 10 أرقام.")
	}
	if !emailRe.MatchString(str(p, "email")) {
		return fieldError("The email must be a valid email address.", "يجب أن يكون البريد الإلكتروني صالحا.")
	}
	s.mu.Lock()
	s.nextCust++
	c := hesabe.Customer{ID: s.nextCust, CustomerID: fmt.Sprintf("8422%04d", s.nextCust%10000),
		Name: str(p, "name"), MobileNumber: str(p, "mobile_number"), Email: str(p, "email")}
	req.m.customers = append(req.m.customers, c)
	s.mu.Unlock()
	return ok("Customer created successfully", "data", map[string]any{
		"id": c.ID, "customer_id": c.CustomerID, "name": c.Name, "mobile_number": c.MobileNumber, "email": c.Email,
	})
}

// Payment type codes Hesabe documents for allocatePayType.
var payTypes = map[string]bool{"1": true, "2": true, "5": true, "7": true, "8": true, "9": true, "10": true,
	"11": true, "12": true, "13": true, "14": true, "16": true}

// validateEMI checks one installment invoice as Hesabe's docs describe.
func validateEMI(i int, inv map[string]any, today time.Time) (string, bool) {
	at := fmt.Sprintf("invoices.%d.", i)
	for _, k := range []string{"amount", "expiresAt", "referenceNumber", "invoiceType", "invoiceSubType",
		"description", "customerName", "mobileNumber", "countryCode", "allocatePayType"} {
		if str(inv, k) == "" {
			return "The " + at + k + " field is required.", false
		}
	}
	amt, okAmt := inv["amount"].(string)
	m, err := pos.ParseMoney(amt)
	if !okAmt || err != nil || m <= 0 || !strings.Contains(amt, ".") || len(amt)-strings.Index(amt, ".") != 4 {
		return "The " + at + "amount must be a string with 3 decimals.", false
	}
	exp := str(inv, "expiresAt")
	d, err := time.Parse(time.DateOnly, exp)
	if !dateRe.MatchString(exp) || err != nil || !d.After(today) {
		return "The " + at + "expiresAt must be a date after today.", false
	}
	if t := str(inv, "invoiceType"); t != "0" && t != "1" {
		return "The " + at + "invoiceType is invalid.", false
	}
	if t := str(inv, "invoiceSubType"); t < "0" || t > "3" || len(t) != 1 {
		return "The " + at + "invoiceSubType is invalid.", false
	}
	if l := str(inv, "language"); l != "" && l != "en" && l != "ar" {
		return "The " + at + "language must be en or ar.", false
	}
	if !digits8to10.MatchString(str(inv, "mobileNumber")) {
		return "The " + at + "mobileNumber must be 8 to 10 digits.", false
	}
	for _, code := range strings.Split(str(inv, "allocatePayType"), ",") {
		if !payTypes[strings.TrimSpace(code)] {
			return "The " + at + "allocatePayType has an unknown payment type " + strconv.Quote(code) + ".", false
		}
	}
	if items, ok := inv["itemsList"].([]any); ok && len(items) > 0 {
		var total pos.Money
		for _, it := range items {
			im, _ := it.(map[string]any)
			a, okA := moneyField(im, "amount")
			if !okA {
				return "The " + at + "itemsList amount is invalid.", false
			}
			total += a
		}
		if total < m {
			return "The " + at + "itemsList total must not be below the invoice amount.", false
		}
	}
	return "", true
}

func (s *Server) handleEMI(req *request) answer {
	list, okList := req.payload["invoices"].([]any)
	if !okList || len(list) == 0 {
		return fieldError("The invoices field is required.", "حقل الفواتير مطلوب.")
	}
	today := time.Now().In(time.FixedZone("AST", 3*3600)).Truncate(24 * time.Hour)
	for i, it := range list {
		inv, _ := it.(map[string]any)
		if msg, valid := validateEMI(i, inv, today); !valid {
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
			"amount": str(inv, "amount"), "payment_method": strings.Split(str(inv, "allocatePayType"), ","),
			"invoice_status": status, "url": "https://sandbox.hesabe.com/invoice/" + token,
			"expires_at": str(inv, "expiresAt"), "merchant_id": merchantID,
			"customer": map[string]any{"name": str(inv, "customerName"), "email": str(inv, "customerEmail"),
				"phone_number": str(inv, "mobileNumber")},
			"products": []any{}, "transaction": nil,
		})
	}
	return ok("Invoices processed successfully.", "response", out)
}
