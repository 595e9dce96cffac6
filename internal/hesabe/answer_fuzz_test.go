package hesabe_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// FuzzGatewayAnswer answers the client's POS invoice calls (create, get
// by id, find by number) with any status and body, sent as is or
// encrypted into Hesabe's {"response":"<hex>"} with the merchant's keys;
// logins go to the simulator. Each call either returns an invoice or a
// *hesabe.Error with a class, whose text carries none of the merchant's
// secrets, and a create whose 2xx answer cannot be read is never
// retryable (the invoice may exist: it must be looked up first). It never
// panics. The seeds are the simulator's own answers and Hesabe's error
// shapes (../shared/hesabe-api.md).
func FuzzGatewayAnswer(f *testing.F) {
	sim := startSim(f, hesabesim.DefaultOptions())
	cfg := sim.ClientConfig(0)
	codec := newClient(f, sim, nil).Codec()
	type answer struct {
		status  int
		encrypt bool
		body    []byte
	}
	cur := make(chan answer, 1)
	cur <- answer{status: 200}
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/smartpos-transaction") && !strings.Contains(r.URL.Path, "/smartpos-invoices") {
			sim.Handler().ServeHTTP(w, r) // login, token refresh
			return
		}
		a := <-cur
		cur <- a
		body := a.body
		if a.encrypt {
			body, _ = json.Marshal(map[string]string{"response": codec.Encrypt(a.body)})
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		_, _ = w.Write(body)
	}))
	f.Cleanup(proxy.Close)
	cfg.MerchantURL, cfg.PaymentURL = proxy.URL+"/api", proxy.URL+"/api"
	cfg.Timeout = 5 * time.Second
	c, err := hesabe.New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	secrets := []string{cfg.SecretKey, cfg.IVKey, cfg.AccessCode, cfg.Password}
	// The answers do reach the client: a good one is an invoice.
	<-cur
	cur <- answer{status: 200, encrypt: true, body: []byte(`{"status":true,"response":{"id":77,"transaction_id":"2970845484","invoice_number":"PB1"}}`)}
	if inv, err := c.GetPOSInvoice(context.Background(), 77); err != nil || inv.ID != 77 {
		f.Fatalf("get through the proxy: %+v, %v", inv, err)
	}

	for _, s := range []struct {
		status  uint16
		encrypt bool
		body    string
	}{
		{200, true, `{"status":true,"code":200,"message":"ok","response":{"id":77,"transaction_id":"297084548422172681795314558361","invoice_number":"PB0A1B2C3D0000000001","amount":"1.250","status":"pending"}}`},
		{200, true, `{"status":true,"response":[{"id":77,"invoice_number":"PB0A1B2C3D0000000001","status":"paid"}]}`},
		{200, true, `{"status":true,"response":{"data":[]}}`},
		{200, false, `{"status":false,"code":506,"message":"Invalid Request Data","response":null}`},
		{200, false, `{"status":false,"message":"Request not found, Please verify the request data","response":null}`},
		{500, false, `{"message":"Internal server error occurred"}`},
		{422, false, `{"status":false,"code":422,"message":{"en":"Invalid input","ar":"مدخلات غير صالحة"}}`},
		{429, false, ``},
		{200, false, `{"response":"zz"}`},
		{200, true, `not json`},
	} {
		f.Add(s.status, s.encrypt, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status uint16, encrypt bool, body []byte) {
		code := 200 + int(status)%400
		<-cur // the last run's answer (or the first, below)
		cur <- answer{status: code, encrypt: encrypt, body: body}
		ctx := context.Background()
		req := hesabe.POSInvoiceRequest{CustomerName: "Salman", Amount: 1250, TerminalID: "29708454",
			InvoiceNumber: "PB0A1B2C3D0000000001", Description: "test"}
		check := func(op string, inv *hesabe.POSInvoice, err error) {
			if err == nil {
				if inv == nil {
					t.Fatalf("%s: no invoice and no error", op)
				}
				return
			}
			var herr *hesabe.Error
			if !errors.As(err, &herr) {
				t.Fatalf("%s: %T %v, want *hesabe.Error", op, err, err)
			}
			if pos.ClassOf(err) == pos.ClassUnknown {
				t.Fatalf("%s: no class: %v", op, err)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("%s: error shows a secret: %v", op, err)
				}
			}
		}
		inv, err := c.CreatePOSInvoice(ctx, req)
		check("create", inv, err)
		if err != nil && code >= 200 && code < 300 && pos.ClassOf(err) == pos.ClassRetryable {
			var herr *hesabe.Error
			errors.As(err, &herr)
			if herr.Code != hesabe.CodeInvalidToken {
				t.Fatalf("create answered %d: retryable without a look-up: %v", code, err)
			}
		}
		inv, err = c.GetPOSInvoice(ctx, 77)
		check("get", inv, err)
		inv, err = c.FindPOSInvoice(ctx, req.InvoiceNumber)
		check("find", inv, err)
	})
}
