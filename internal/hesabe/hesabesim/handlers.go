package hesabesim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
)

// Hesabe's error answers, as documented.
const (
	msgInternal    = "Internal server error occurred"
	msgNotFound    = "Request not found, Please verify the request data"
	msgInvalidData = "Invalid Request Data"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api"+hesabe.PathLogin, s.handleLogin)
	mux.HandleFunc("POST /api"+hesabe.PathTokenRefresh, s.handleRefresh)
	mux.HandleFunc("POST /api"+hesabe.PathPOSTransaction, s.encrypted(true, s.handlePOSTransaction))
	mux.HandleFunc("GET /api"+hesabe.PathPOSTerminals, s.encrypted(true, s.handleTerminals))
	mux.HandleFunc("GET /api"+hesabe.PathPOSInvoices, s.encrypted(true, s.handleInvoiceList))
	mux.HandleFunc("GET /api"+hesabe.PathPOSInvoices+"/{id}", s.encrypted(true, s.handleInvoiceGet))
	mux.HandleFunc("POST /api"+hesabe.PathEMI, s.encrypted(true, s.handleEMI))
	mux.HandleFunc("POST /api"+hesabe.PathCustomer, s.encrypted(false, s.handleCustomer))
	s.adminRoutes(mux)
	return mux
}

// answer is what an endpoint handler returns: an envelope to encrypt (or
// send plain), with its HTTP status.
type answer struct {
	status   int
	envelope map[string]any
	plain    bool
}

func ok(msg string, key string, body any) answer {
	return answer{status: http.StatusOK, envelope: map[string]any{"status": true, "message": msg, key: body}}
}

func fail(httpStatus, code int, msg any) answer {
	env := map[string]any{"status": false, "message": msg, "response": nil}
	if code >= 0 {
		env["code"] = code
	}
	return answer{status: httpStatus, envelope: env}
}

// request is a decrypted call handed to an endpoint handler.
type request struct {
	r       *http.Request
	m       *merchantState
	payload map[string]any
	raw     []byte
}

type handler func(req *request) answer

// encrypted wraps an endpoint: faults, accessCode, bearer token, decrypt,
// apply, encrypt the answer.
func (s *Server) encrypted(bearer bool, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		faults := s.count(r)
		if f, ok := faults[FaultLatency]; ok {
			s.sleep(r.Context(), f.Latency)
		}
		if _, ok := faults[FaultExpireToken]; ok {
			s.ExpireTokens()
		}
		if _, ok := faults[FaultResetBeforeRead]; ok {
			reset(w)
			return
		}
		if f, ok := faults[Fault5xx]; ok {
			writePlain(w, f.Status, map[string]any{"message": msgInternal})
			return
		}
		if _, ok := faults[Fault429]; ok {
			w.Header().Set("Retry-After", "1")
			writePlain(w, http.StatusTooManyRequests, map[string]any{"message": "Too Many Attempts."})
			return
		}
		if _, ok := faults[FaultPlainError]; ok {
			writePlain(w, http.StatusBadRequest, map[string]any{"status": false, "code": hesabe.CodeInvalidRequestData, "message": msgInvalidData, "response": nil})
			return
		}
		if _, ok := faults[FaultUnauthorized]; ok {
			writePlain(w, http.StatusUnauthorized, map[string]any{"status": false, "message": "Unauthorized", "response": nil})
			return
		}
		s.mu.Lock()
		m := s.merchants[r.Header.Get("accessCode")]
		s.mu.Unlock()
		if m == nil {
			writePlain(w, http.StatusUnauthorized, map[string]any{"status": false, "message": "Unauthorized", "response": nil})
			return
		}
		if bearer && !s.validToken(r, m) {
			writePlain(w, http.StatusUnauthorized, map[string]any{"status": false, "code": hesabe.CodeInvalidToken, "message": "Invalid token", "response": nil})
			return
		}
		data, err := readData(r)
		if _, reset2 := faults[FaultResetAfterRead]; reset2 {
			reset(w)
			return
		}
		if err != nil {
			s.send(w, m, fail(http.StatusBadRequest, hesabe.CodeInvalidRequestData, msgInvalidData))
			return
		}
		req := &request{r: r, m: m}
		if data != "" {
			plain, err := m.codec.Decrypt(data)
			if err != nil {
				s.send(w, m, fail(http.StatusBadRequest, hesabe.CodeInvalidRequestData, msgInvalidData))
				return
			}
			dec := json.NewDecoder(bytes.NewReader(plain))
			dec.UseNumber()
			if err := dec.Decode(&req.payload); err != nil {
				s.send(w, m, fail(http.StatusBadRequest, hesabe.CodeInvalidRequestData, msgInvalidData))
				return
			}
			req.raw = plain
		}
		if code, _ := req.payload["merchantCode"].(string); data != "" && code != m.Code {
			s.send(w, m, fail(http.StatusBadRequest, hesabe.CodeInvalidMerchant, "Invalid Merchant"))
			return
		}
		ans := h(req)
		switch {
		case has(faults, FaultApplyThenDrop):
			reset(w)
		case has(faults, FaultMalformedHex):
			writePlain(w, http.StatusOK, map[string]any{"response": "zz" + strings.Repeat("0", 62)})
		case has(faults, FaultBadPadding):
			// A well-formed ciphertext whose last block does not end in
			// valid padding.
			b := make([]byte, 32)
			b[31] = 0x40
			bad := m.codec.EncryptPad(b, 16)
			writePlain(w, http.StatusOK, map[string]any{"response": bad[:64]})
		default:
			s.send(w, m, ans)
		}
	}
}

func has(m map[FaultKind]Fault, k FaultKind) bool { _, ok := m[k]; return ok }

// count records the request and returns the faults that hit it.
func (s *Server) count(r *http.Request) map[FaultKind]Fault {
	s.mu.Lock()
	s.stats.Requests[r.URL.Path]++
	s.mu.Unlock()
	return s.takeFaults(r.URL.Path)
}

func readData(r *http.Request) (string, error) {
	if r.Method == http.MethodGet {
		return r.URL.Query().Get("data"), nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return "", err
	}
	var in struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Data == "" {
		return "", fmt.Errorf("body is not {\"data\":hex}")
	}
	return in.Data, nil
}

// send encrypts an answer like Hesabe's server: 32-byte-block padding.
func (s *Server) send(w http.ResponseWriter, m *merchantState, a answer) {
	js, _ := json.Marshal(a.envelope)
	if a.plain {
		writeRaw(w, a.status, js)
		return
	}
	out, _ := json.Marshal(map[string]string{"response": m.codec.EncryptPad(js, 32)})
	writeRaw(w, a.status, out)
}

func writePlain(w http.ResponseWriter, status int, v any) {
	js, _ := json.Marshal(v)
	writeRaw(w, status, js)
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) validToken(r *http.Request, m *merchantState) bool {
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ti, ok := s.tokens[tok]
	return ok && ti.m == m && time.Now().Before(ti.expires)
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// maxRefreshTokens bounds the refresh tokens kept: a client that logs in
// again instead of refreshing leaves its old one unused, and a simulator
// may run for days. The oldest are forgotten first.
const maxRefreshTokens = 1024

// issue makes a new token pair for m, forgetting the access tokens that
// have expired and the oldest refresh tokens beyond maxRefreshTokens.
// Callers hold s.mu.
func (s *Server) issue(m *merchantState) map[string]any {
	now := time.Now()
	for tok, ti := range s.tokens {
		if now.After(ti.expires) {
			delete(s.tokens, tok)
		}
	}
	access, refresh := randomToken(), randomToken()
	s.tokens[access] = tokenInfo{m: m, expires: now.Add(s.opts.TokenLifetime)}
	s.refreshes[refresh] = m
	s.refreshOrder = append(s.refreshOrder, refresh)
	for len(s.refreshOrder) > maxRefreshTokens {
		delete(s.refreshes, s.refreshOrder[0]) // a no-op for one used already
		s.refreshOrder = s.refreshOrder[1:]
	}
	return map[string]any{"token": map[string]any{
		"token_type": "Bearer", "expires_in": int(s.opts.TokenLifetime / time.Second),
		"access_token": access, "refresh_token": refresh,
	}}
}

func (s *Server) plainFaults(w http.ResponseWriter, r *http.Request) bool {
	faults := s.count(r)
	if f, ok := faults[FaultLatency]; ok {
		s.sleep(r.Context(), f.Latency)
	}
	switch {
	case has(faults, FaultResetBeforeRead), has(faults, FaultResetAfterRead), has(faults, FaultApplyThenDrop):
		reset(w)
	case has(faults, Fault5xx):
		writePlain(w, faults[Fault5xx].Status, map[string]any{"message": msgInternal})
	case has(faults, Fault429):
		w.Header().Set("Retry-After", "1")
		writePlain(w, http.StatusTooManyRequests, map[string]any{"message": "Too Many Attempts."})
	default:
		return false
	}
	return true
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if s.plainFaults(w, r) {
		return
	}
	var in struct{ Username, Password string }
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
		writePlain(w, http.StatusBadRequest, map[string]any{"status": false, "code": hesabe.CodeInvalidRequestData, "message": msgInvalidData, "response": nil})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Logins++
	m := s.byUser[in.Username]
	if m == nil || m.Password != in.Password {
		writePlain(w, http.StatusUnauthorized, map[string]any{"status": false, "code": hesabe.CodeInvalidLogin, "message": "Invalid merchant login credentials", "response": nil})
		return
	}
	writePlain(w, http.StatusOK, map[string]any{"status": true, "message": "Success", "response": s.issue(m)})
}

func (s *Server) handleRefresh(w http.ResponseWriter, r *http.Request) {
	if s.plainFaults(w, r) {
		return
	}
	var in struct {
		RefreshToken string `json:"refreshToken"`
	}
	_ = json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Refreshes++
	m := s.refreshes[in.RefreshToken]
	if m == nil {
		writePlain(w, http.StatusUnauthorized, map[string]any{"status": false, "code": hesabe.CodeInvalidToken, "message": "Invalid refresh token", "response": nil})
		return
	}
	delete(s.refreshes, in.RefreshToken) // refresh tokens are single use
	writePlain(w, http.StatusOK, map[string]any{"status": true, "message": "Success", "response": s.issue(m)})
}

func (s *Server) handleTerminals(req *request) answer {
	list := make([]map[string]any, 0, len(req.m.Terminals))
	for _, t := range req.m.Terminals {
		list = append(list, map[string]any{
			"id": t.ID, "Terminal_ID": t.ID - 94, "TerminalID": t.TerminalID, "TerminalName": t.TerminalName,
			"TerminalType": t.TerminalType, "PosType": t.PosType, "MerchantId": t.MerchantID, "MerchantCode": t.MerchantCode,
		})
	}
	return ok("Terminal List", "response", list)
}

// invoiceJSON renders an invoice as Hesabe does (amount as a string).
func invoiceJSON(inv *hesabe.POSInvoice, m *merchantState) map[string]any {
	return map[string]any{
		"id": inv.ID, "transaction_id": inv.TransactionID, "invoice_number": inv.InvoiceNumber,
		"amount": inv.Amount.NumberString(), "terminal_id": inv.TerminalID, "merchant_id": m.ID,
		"merchant_name": m.Name, "terminal_name": inv.TerminalName, "customer_name": inv.CustomerName,
		"customer_email": inv.CustomerEmail, "customer_phone": inv.CustomerPhone, "description": inv.Description,
		"status": int(inv.Status), "created_by": m.ID, "created_by_name": m.Username,
		"created_at": inv.CreatedAt, "updated_at": inv.UpdatedAt,
	}
}

func (s *Server) handleInvoiceList(req *request) answer {
	number, _ := req.payload["invoice_number"].(string)
	page := 1
	if p, ok := req.payload["page"].(json.Number); ok {
		if n, err := strconv.Atoi(string(p)); err == nil && n > 0 {
			page = n
		}
	}
	const perPage = 50
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []map[string]any
	for _, inv := range req.m.invoices {
		if number == "" || inv.InvoiceNumber == number {
			match = append(match, invoiceJSON(inv, req.m))
		}
	}
	total := len(match)
	lo, hi := min((page-1)*perPage, total), min(page*perPage, total)
	return ok("Invoice List", "response", map[string]any{
		"current_page": page, "data": append([]map[string]any{}, match[lo:hi]...),
		"last_page": max(1, (total+perPage-1)/perPage), "per_page": perPage, "total": total,
	})
}

func (s *Server) handleInvoiceGet(req *request) answer {
	id, err := strconv.ParseInt(req.r.PathValue("id"), 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := req.m.byID[id]
	if err != nil || inv == nil {
		return fail(http.StatusNotFound, -1, msgNotFound)
	}
	return ok("Invoice Details", "response", invoiceJSON(inv, req.m))
}
