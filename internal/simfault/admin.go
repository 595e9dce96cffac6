package simfault

import (
	"encoding/json"
	"io"
	"net/http"
)

// Control is the fault control a simulator's admin API drives. A *Set is
// one.
type Control interface {
	Inject(Fault)
	Clear()
	Faults() []Fault
}

var _ Control = (*Set)(nil)

// HandleAdmin registers a simulator's fault admin API on mux (plain JSON,
// no auth: simulators are test tools listening on loopback):
//
//	GET    /_sim/faults   the armed faults, counts left
//	POST   /_sim/faults   {"spec":"5xx:3@/v1/customers"} or a Fault object
//	DELETE /_sim/faults   clear every fault
//
// POST and DELETE answer the armed faults after the change. known is the
// kinds a spec may name (nil: Kinds).
func HandleAdmin(mux *http.ServeMux, c Control, known []Kind) {
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Faults())
	})
	mux.HandleFunc("POST /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Spec string `json:"spec"`
			Fault
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be {\"spec\":\"KIND[:COUNT][@PATH]\"}"})
			return
		}
		f := in.Fault
		if in.Spec != "" {
			var err error
			if f, err = Parse(in.Spec, known); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
		}
		c.Inject(f)
		writeJSON(w, http.StatusOK, c.Faults())
	})
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		c.Clear()
		writeJSON(w, http.StatusOK, []Fault{})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	js, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(js)
}
