package hesabesim_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want hesabesim.Fault
	}{
		{"5xx", hesabesim.Fault{Kind: hesabesim.Fault5xx}},
		{"5xx=503:2@smartpos", hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 503, Count: 2, Path: "smartpos"}},
		{"latency=1500ms", hesabesim.Fault{Kind: hesabesim.FaultLatency, Latency: 1500 * time.Millisecond}},
		{"apply-then-drop%0.25@smartpos-transaction", hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Probability: 0.25, Path: "smartpos-transaction"}},
	} {
		got, err := hesabesim.ParseFault(tc.in)
		if err != nil {
			t.Fatalf("ParseFault(%q): %v", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("ParseFault(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{"", "boom", "5xx=200", "latency=fast", "429:x", "reset-before-read=1", "5xx%2"} {
		if _, err := hesabesim.ParseFault(in); err == nil {
			t.Errorf("ParseFault(%q) accepted", in)
		}
	}
}

// TestFaultUnauthorized: the request is answered 401 without a Hesabe code
// and not applied; the client logs in again and retries once, so one hit
// is survived and two make the call fail.
func TestFaultUnauthorized(t *testing.T) {
	s, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	c, err := hesabe.New(s.ClientConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req := hesabe.POSInvoiceRequest{CustomerName: "Salman", Amount: 1500, TerminalID: "29708454", InvoiceNumber: "PB-U1"}
	s.Inject(hesabesim.Fault{Kind: hesabesim.FaultUnauthorized, Path: "smartpos-transaction", Count: 2})
	_, err = c.CreatePOSInvoice(ctx, req)
	var herr *hesabe.Error
	if !errors.As(err, &herr) || herr.HTTPStatus != http.StatusUnauthorized || pos.ClassOf(err) != pos.ClassPermanent {
		t.Fatalf("two hits: err %v, want a permanent HTTP 401", err)
	}
	if n := len(s.InvoicesByNumber("PB-U1")); n != 0 {
		t.Fatalf("refused create applied: %d invoices", n)
	}
	if n := s.Stats().FaultsFired[hesabesim.FaultUnauthorized]; n != 2 {
		t.Fatalf("fired %d times", n)
	}
	s.Inject(hesabesim.Fault{Kind: hesabesim.FaultUnauthorized, Path: "smartpos-transaction", Count: 1})
	if _, err := c.CreatePOSInvoice(ctx, req); err != nil {
		t.Fatalf("one hit: %v (want a re-login and a retry)", err)
	}
	if n := len(s.InvoicesByNumber("PB-U1")); n != 1 {
		t.Fatalf("%d invoices after the retry", n)
	}
	if f, err := hesabesim.ParseFault("unauthorized:2@smartpos-invoices"); err != nil || f.Kind != hesabesim.FaultUnauthorized {
		t.Fatalf("ParseFault: %+v %v", f, err)
	}
}
