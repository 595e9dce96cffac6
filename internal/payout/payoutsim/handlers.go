package payoutsim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/simfault"
)

// sensitiveFields is what the provider's answers list as sealed.
var sensitiveFields = []string{"identity", "identitypic", "signpic", "stcaccount", "cardno"}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+payout.PathCreatePayee, s.handleCreate)
	s.adminRoutes(mux)
	return mux
}

func requestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	js, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(js)
}

// answer writes the provider's envelope.
func (s *Server) answer(w http.ResponseWriter, httpStatus, code int, msg string, data any, extra map[string]any) {
	env := map[string]any{"code": code, "message": msg, "data": data, "requestId": requestID()}
	for k, v := range extra {
		env[k] = v
	}
	writeJSON(w, httpStatus, env)
}

// refuse writes a refusal: HTTP 200 with the code in the body, or a
// matching HTTP status with Options.HTTPErrors.
func (s *Server) refuse(w http.ResponseWriter, code int, field, msg string, data any) {
	status := http.StatusOK
	if s.opts.HTTPErrors {
		status = code
	}
	var extra map[string]any
	if field != "" {
		extra = map[string]any{"field": field}
	}
	s.answer(w, status, code, msg, data, extra)
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests[r.URL.Path]++
	s.mu.Unlock()
	faults := s.faults.Take(r.URL.Path)
	has := func(k simfault.Kind) bool { _, ok := faults[k]; return ok }
	if f, ok := faults[simfault.Latency]; ok {
		simfault.Sleep(r.Context(), f.Latency, s.closing)
	}
	switch {
	case has(simfault.ResetBeforeRead):
		simfault.Reset(w)
		return
	case has(simfault.Status5xx):
		s.answer(w, faults[simfault.Status5xx].Status, payout.CodeInternal, "Internal server error", nil, nil)
		return
	case has(simfault.Status429):
		w.Header().Set("Retry-After", "1")
		s.answer(w, http.StatusTooManyRequests, payout.CodeTooMany, "Too many requests", nil, nil)
		return
	}
	if r.Header.Get("X-Merchant-Id") != s.opts.MerchantID || r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
		s.answer(w, http.StatusUnauthorized, payout.CodeUnauthorized, "Unauthorized: unknown merchant or wrong API key", nil, nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if has(simfault.ResetAfterRead) {
		simfault.Reset(w)
		return
	}
	if err != nil {
		s.refuse(w, payout.CodeInvalidParam, "", "Request body could not be read", nil)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, body)
	if len(s.bodies) > maxKeptBodies {
		s.bodies = s.bodies[len(s.bodies)-maxKeptBodies:]
	}
	s.mu.Unlock()

	// Apply, then answer, unless the connection is to drop after applying.
	reply := s.apply(body)
	if has(simfault.ApplyThenDrop) {
		simfault.Drop(w)
		return
	}
	reply(w)
}

// apply validates and creates a payee, and returns how to answer.
func (s *Server) apply(body []byte) func(http.ResponseWriter) {
	p, field, msg := s.parse(body)
	if field != "" || msg != "" {
		return func(w http.ResponseWriter) { s.refuse(w, payout.CodeInvalidParam, field, msg, nil) }
	}
	created, existing := s.create(p)
	if existing != nil {
		return func(w http.ResponseWriter) {
			s.refuse(w, payout.CodeDuplicate, "mercustomid", "mercustomid already exists", s.payeeData(existing, false))
		}
	}
	// Seal now, not while answering, so the work is done before a drop.
	data := s.payeeData(created, true)
	return func(w http.ResponseWriter) {
		s.answer(w, http.StatusOK, payout.CodeOK, "Request succeeded.", data, map[string]any{"sensitiveFields": sensitiveFields})
	}
}

// create adds p unless its mercustomid exists, which it returns instead.
func (s *Server) create(p *Payee) (created, existing *Payee) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.byMer[p.MerCustomID]; old != nil {
		c := clonePayee(old)
		return nil, &c
	}
	s.nextID++
	p.CustomID = strconv.FormatInt(s.nextID, 10)
	p.CreatedAt = time.Now().UTC().Truncate(time.Second)
	p.DemandPerfection = append([]string(nil), s.opts.DemandPerfection...)
	p.Status = payout.StatusPending
	if len(p.DemandPerfection) > 0 {
		p.Status = payout.StatusIncomplete
	}
	s.payees = append(s.payees, p)
	s.byCustom[p.CustomID] = p
	s.byMer[p.MerCustomID] = p
	c := clonePayee(p)
	return &c, nil
}

// payeeData renders a payee as the provider answers it, the sensitive
// fields sealed with the merchant's public key (full), or only its ids and
// status (for a duplicate).
func (s *Server) payeeData(p *Payee, full bool) map[string]any {
	d := map[string]any{
		"customid": p.CustomID, "mercustomid": p.MerCustomID,
		"status": p.Status.Code(), "statusdesc": string(p.Status),
	}
	if !full {
		return d
	}
	d["demand_perfection"] = p.DemandPerfection
	if d["demand_perfection"] == nil {
		d["demand_perfection"] = []string{}
	}
	d["created_at"] = p.CreatedAt.Unix()
	for k, v := range map[string]string{
		"name_e": p.NameE, "name_a": p.NameA, "bankcode": p.BankCode, "ibanaccount": p.IBANAccount,
		"address": p.Address, "swiftcode": p.SwiftCode, "otpappname": p.OTPAppName,
	} {
		if v != "" {
			d[k] = v
		}
	}
	if p.AutoApproval != nil {
		d["autoapproval"] = *p.AutoApproval
	}
	for k, v := range map[string]string{"identity": p.Identity, "cardno": p.CardNo, "stcaccount": p.STCAccount} {
		if v == "" {
			continue
		}
		sealed, err := s.sealer.Seal(v)
		if err != nil {
			s.log.Error("payout simulator cannot seal an answer field", "field", k, "err", err)
			continue
		}
		d[k] = sealed
	}
	return d
}

var (
	simSTC    = regexp.MustCompile(`^(5\d{8}|9665\d{8}|\+9665\d{8}|05\d{8})$`)
	simCard   = regexp.MustCompile(`^\d{13,19}$`)
	simIBAN   = regexp.MustCompile(`^[A-Za-z0-9]{1,34}$`)
	simFields = map[string]bool{
		"name_e": true, "name_a": true, "mercustomid": true, "identity": true, "bankcode": true,
		"cardno": true, "ibanaccount": true, "stcaccount": true, "address": true, "swiftcode": true,
		"autoapproval": true, "otpappname": true,
	}
)

// parse checks a create request as the provider would, opening the
// sealed fields. On a refusal it returns the provider field name (if one
// is at fault) and the message.
func (s *Server) parse(body []byte) (p *Payee, field, msg string) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, "", "Request body must be a JSON object"
	}
	for k := range raw {
		if !simFields[k] {
			return nil, k, fmt.Sprintf("%s is not a known parameter", k)
		}
	}
	str := func(k string) (string, bool) {
		v, ok := raw[k]
		if !ok || string(v) == "null" {
			return "", true
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", false
		}
		return s, true
	}
	vals := map[string]string{}
	for k := range simFields {
		if k == "autoapproval" {
			continue
		}
		v, ok := str(k)
		if !ok {
			return nil, k, k + " must be a string"
		}
		vals[k] = v
	}
	p = &Payee{
		NameE: vals["name_e"], NameA: vals["name_a"], MerCustomID: vals["mercustomid"], BankCode: vals["bankcode"],
		IBANAccount: vals["ibanaccount"], Address: vals["address"], SwiftCode: vals["swiftcode"], OTPAppName: vals["otpappname"],
	}
	if v, ok := raw["autoapproval"]; ok && string(v) != "null" {
		var n json.Number
		if err := json.Unmarshal(bytes.Trim(v, `"`), &n); err != nil || (n != "0" && n != "1") {
			return nil, "autoapproval", "autoapproval must be 0 or 1"
		}
		a, _ := strconv.Atoi(string(n))
		p.AutoApproval = &a
	}
	// Names: English, or Arabic (which falls back to English).
	if p.NameE == "" && p.NameA == "" {
		return nil, "name_e", "name_e is required"
	}
	for _, f := range []struct{ k, v string }{{"name_e", p.NameE}, {"name_a", p.NameA}} {
		if utf8.RuneCountInString(f.v) > 64 {
			return nil, f.k, f.k + " may be at most 64 characters"
		}
	}
	if p.NameA == "" {
		p.NameA = p.NameE
	}
	switch id := p.MerCustomID; {
	case id == "":
		return nil, "mercustomid", "mercustomid is required"
	case len(id) > 128:
		return nil, "mercustomid", "mercustomid may be at most 128 characters"
	case strings.IndexFunc(id, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0:
		return nil, "mercustomid", "mercustomid must be printable ASCII"
	}
	// The sealed fields: each must open with the provider's key.
	open := func(k string) (string, string) {
		if vals[k] == "" {
			return "", ""
		}
		plain, err := s.opener.Open(vals[k])
		if err != nil {
			return "", k + " could not be decrypted with the provider's key (" + openReason(err) + ")"
		}
		return plain, ""
	}
	if vals["identity"] == "" {
		return nil, "identity", "identity is required"
	}
	var bad string
	if p.Identity, bad = open("identity"); bad != "" {
		return nil, "identity", bad
	}
	if strings.TrimSpace(p.Identity) == "" {
		return nil, "identity", "identity is required"
	}
	if len(p.BankCode) > 32 {
		return nil, "bankcode", "bankcode may be at most 32 characters"
	}
	if p.CardNo, bad = open("cardno"); bad != "" {
		return nil, "cardno", bad
	}
	if p.CardNo != "" && !simCard.MatchString(p.CardNo) {
		return nil, "cardno", "cardno must be 13 to 19 digits"
	}
	if p.IBANAccount != "" && !simIBAN.MatchString(p.IBANAccount) {
		return nil, "ibanaccount", "ibanaccount must be at most 34 letters and digits"
	}
	if p.STCAccount, bad = open("stcaccount"); bad != "" {
		return nil, "stcaccount", bad
	}
	if p.STCAccount != "" && !simSTC.MatchString(p.STCAccount) {
		return nil, "stcaccount", "stcaccount format is invalid"
	}
	if utf8.RuneCountInString(p.Address) > 255 {
		return nil, "address", "address may be at most 255 characters"
	}
	if len(p.SwiftCode) > 32 {
		return nil, "swiftcode", "swiftcode may be at most 32 characters"
	}
	if utf8.RuneCountInString(p.OTPAppName) > 32 {
		return nil, "otpappname", "otpappname may be at most 32 characters"
	}
	bank := 0
	for _, v := range []string{p.BankCode, p.CardNo, p.IBANAccount} {
		if v != "" {
			bank++
		}
	}
	switch {
	case bank > 0 && p.STCAccount != "":
		return nil, "stcaccount", "Give a bank account or an STC Pay account (stcaccount), not both"
	case bank > 0 && bank < 3:
		missing := "bankcode"
		switch {
		case p.BankCode == "":
		case p.CardNo == "":
			missing = "cardno"
		default:
			missing = "ibanaccount"
		}
		return nil, missing, "A bank account needs bankcode, cardno and ibanaccount: " + missing + " is missing"
	case bank == 0 && p.STCAccount == "":
		return nil, "stcaccount", "An account is required: bankcode, cardno and ibanaccount, or stcaccount"
	}
	return p, "", ""
}

// openReason says why a field did not open, in the crypto package's terms.
func openReason(err error) string {
	switch {
	case errors.Is(err, crypto.ErrSealedNotBase64):
		return "not base64"
	case errors.Is(err, crypto.ErrSealedLength):
		return "wrong length for the key"
	}
	return "decryption failed"
}
