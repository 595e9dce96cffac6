package payoutsim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/simfault"
)

// The admin API (plain JSON, no auth: the simulator is a test tool and
// listens on loopback):
//
//	GET    /_sim/payees                     every payee (secrets masked)
//	POST   /_sim/payees/{customid}/status   {"status":"normal"}
//	GET    /_sim/faults                     armed faults
//	POST   /_sim/faults                     {"spec":"5xx:3@/payee"} or a Fault object
//	DELETE /_sim/faults                     clear faults
//	GET    /_sim/stats                      counters
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/payees", func(w http.ResponseWriter, r *http.Request) {
		payees := s.Payees()
		out := make([]adminPayee, 0, len(payees))
		for _, p := range payees {
			out = append(out, adminView(p))
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /_sim/payees/{customid}/status", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Status string `json:"status"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be {"status":"incomplete|pending|normal|rejected|banned"}`})
			return
		}
		st, err := payout.ParsePayeeStatus(in.Status)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if err := s.SetStatus(r.PathValue("customid"), st); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, ErrNoPayee) {
				status = http.StatusNotFound
			}
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": string(st)})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	simfault.HandleAdmin(mux, &s.faults, nil)
}

// adminPayee is a payee as the admin API shows it: secrets masked, like
// everywhere outside a test's own assertions.
type adminPayee struct {
	CustomID         string             `json:"customid"`
	MerCustomID      string             `json:"mercustomid"`
	Status           payout.PayeeStatus `json:"status"`
	DemandPerfection []string           `json:"demand_perfection,omitempty"`
	CreatedAt        time.Time          `json:"created_at"`
	NameE            string             `json:"name_e,omitempty"`
	NameA            string             `json:"name_a,omitempty"`
	BankCode         string             `json:"bankcode,omitempty"`
	IBANAccount      string             `json:"ibanaccount,omitempty"`
	Identity         string             `json:"identity,omitempty"`
	CardNo           string             `json:"cardno,omitempty"`
	STCAccount       string             `json:"stcaccount,omitempty"`
}

func adminView(p Payee) adminPayee {
	return adminPayee{
		CustomID: p.CustomID, MerCustomID: p.MerCustomID, Status: p.Status, DemandPerfection: p.DemandPerfection,
		CreatedAt: p.CreatedAt, NameE: p.NameE, NameA: p.NameA, BankCode: p.BankCode,
		IBANAccount: payout.Mask(p.IBANAccount), Identity: payout.Mask(p.Identity),
		CardNo: payout.Mask(p.CardNo), STCAccount: payout.Mask(p.STCAccount),
	}
}
