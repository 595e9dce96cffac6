package hesabesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/simfault"
)

// The admin API (plain JSON, no auth: the simulator is a test tool and
// listens on loopback) lets a terminal simulator, a script or a technician
// drive a standalone simulator:
//
//	GET    /_sim/invoices                       every POS invoice
//	POST   /_sim/invoices/{id}/status           {"status":"paid"}
//	POST   /_sim/transactions/{tx}/status       {"status":"failed"}
//	GET    /_sim/faults                         armed faults
//	POST   /_sim/faults                         {"spec":"5xx:3@smartpos"} or a Fault object
//	DELETE /_sim/faults                         clear faults
//	POST   /_sim/expire-tokens                  expire every access token
//	GET    /_sim/stats                          counters
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/invoices", func(w http.ResponseWriter, r *http.Request) {
		writePlain(w, http.StatusOK, s.Invoices())
	})
	setStatus := func(set func(string, hesabe.InvoiceStatus) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var in struct {
				Status string `json:"status"`
			}
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
				writePlain(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"status\":\"paid|failed|canceled|expired|pending\"}"})
				return
			}
			st, err := hesabe.ParseInvoiceStatus(in.Status)
			if err != nil {
				writePlain(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
			if err := set(r.PathValue("key"), st); err != nil {
				writePlain(w, http.StatusNotFound, map[string]string{"error": err.Error()})
				return
			}
			writePlain(w, http.StatusOK, map[string]string{"status": st.String()})
		}
	}
	mux.HandleFunc("POST /_sim/invoices/{key}/status", setStatus(func(k string, st hesabe.InvoiceStatus) error {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return ErrNoInvoice
		}
		return s.SetInvoiceStatus(id, st)
	}))
	mux.HandleFunc("POST /_sim/transactions/{key}/status", setStatus(s.SetInvoiceStatusByTransaction))
	simfault.HandleAdmin(mux, faultControl{s}, FaultKinds)
	mux.HandleFunc("POST /_sim/expire-tokens", func(w http.ResponseWriter, r *http.Request) {
		s.ExpireTokens()
		writePlain(w, http.StatusOK, map[string]bool{"expired": true})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writePlain(w, http.StatusOK, s.Stats())
	})
}

// faultControl lets simfault's admin API drive the simulator's faults.
type faultControl struct{ s *Server }

func (c faultControl) Inject(f Fault)  { c.s.Inject(f) }
func (c faultControl) Clear()          { c.s.ClearFaults() }
func (c faultControl) Faults() []Fault { return c.s.Faults() }

// Admin drives a simulator through its admin API, e.g. a terminal
// simulator marking an invoice paid at a standalone `posbridge sim hesabe`.
type Admin struct {
	// URL is the simulator's root (Server.URL()).
	URL  string
	HTTP *http.Client
}

// SetTransactionStatus sets the status of the invoice with transaction id tx.
func (a Admin) SetTransactionStatus(ctx context.Context, tx string, st hesabe.InvoiceStatus) error {
	return a.post(ctx, "/_sim/transactions/"+url.PathEscape(tx)+"/status", map[string]string{"status": st.String()})
}

// Inject arms a fault given as KIND[:COUNT][@PATH].
func (a Admin) Inject(ctx context.Context, spec string) error {
	return a.post(ctx, "/_sim/faults", map[string]string{"spec": spec})
}

func (a Admin) post(ctx context.Context, path string, body any) error {
	js, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.URL, "/")+path, bytes.NewReader(js))
	if err != nil {
		return fmt.Errorf("hesabesim admin: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("hesabesim admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("hesabesim admin %s: HTTP %d: %s", path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
