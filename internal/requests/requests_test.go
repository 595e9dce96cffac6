package requests_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/requests"
	"github.com/posbridge/posbridge/internal/simfault"
)

func result[T any](t testing.TB, r pos.Request) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("result of %s: %v (%s)", r.ID, err, r.Result)
	}
	return v
}

// TestDeliverEachKind: one request of each kind, with Arabic names, goes
// to its simulator once and its answer comes back to the till.
func TestDeliverEachKind(t *testing.T) {
	for _, gw := range []string{"hesabe", "hitpay"} {
		t.Run(gw, func(t *testing.T) {
			h := newHarness(t, harnessOptions{customers: gw})
			body := map[string]any{"name": "أحمد المنصوري", "email": "ahmed@example.com", "mobile_number": "12345678"}
			if gw == "hitpay" {
				body["country_code"] = "965"
			}
			cust := h.wait(h.submit(pos.KindCustomer, "c1", body).ID)
			if cust.State != pos.RequestSucceeded || cust.Gateway != gw || cust.Attempts != 1 {
				t.Fatalf("customer %+v", cust)
			}
			res := result[requests.CustomerResult](t, cust)
			if res.ID == "" || res.Name != "أحمد المنصوري" || res.Gateway != gw {
				t.Fatalf("customer result %+v", res)
			}
			switch gw {
			case "hesabe":
				if n := len(h.hesabe.Customers()); n != 1 {
					t.Fatalf("hesabe has %d customers", n)
				}
				if res.CustomerID == "" {
					t.Fatal("no Hesabe customer code")
				}
			case "hitpay":
				if n := h.hitpay.CustomerCount(); n != 1 {
					t.Fatalf("hitpay has %d customers", n)
				}
			}
			if gw == "hitpay" {
				return
			}
			inst := h.wait(h.submit(pos.KindInstallments, "i1", installmentBody("INV-1", "INV-2")).ID)
			if inst.State != pos.RequestSucceeded || inst.TillRef != "R-1" {
				t.Fatalf("installments %+v", inst)
			}
			ir := result[requests.InstallmentsResult](t, inst)
			if len(ir.Invoices) != 2 || ir.Invoices[0].ReferenceNumber != "INV-1" || ir.Invoices[0].URL == "" ||
				ir.Invoices[0].Token == "" || ir.Invoices[1].Amount.String() != "150.000" {
				t.Fatalf("installment results %+v", ir)
			}
			if h.hesabe.EMIBatchCount() != 1 || h.hesabe.EMIInvoiceCount() != 2 {
				t.Fatalf("hesabe has %d batches, %d invoices", h.hesabe.EMIBatchCount(), h.hesabe.EMIInvoiceCount())
			}
			payee := h.wait(h.submit(pos.KindPayee, "p1", payeeBody("C-1")).ID)
			if payee.State != pos.RequestSucceeded {
				t.Fatalf("payee %+v", payee)
			}
			pr := result[requests.PayeeResult](t, payee)
			if pr.CustomID == "" || pr.Status == "" || pr.Identity != "****5678" || pr.STCAccount != "****5678" ||
				pr.NameAr != "محمد العتيبي" || pr.Adopted {
				t.Fatalf("payee result %+v", pr)
			}
			if h.payout.PayeeCount() != 1 {
				t.Fatalf("payout has %d payees", h.payout.PayeeCount())
			}
		})
	}
}

// TestIdempotency: the same key and body return the stored request; the
// same key with another body is a conflict; keys are per kind.
func TestIdempotency(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := context.Background()
	body := mustJSON(t, customerBody("Ahmed", "12345678"))
	first, _, err := h.eng.SubmitRequest(ctx, pos.KindCustomer, "k", body)
	if err != nil {
		t.Fatal(err)
	}
	// Same request, other spacing: the same one.
	again, existing, err := h.eng.SubmitRequest(ctx, pos.KindCustomer, "k", []byte(" "+string(body)+"\n"))
	if err != nil || !existing || again.ID != first.ID {
		t.Fatalf("retry = %s, %v, %v", again.ID, existing, err)
	}
	_, _, err = h.eng.SubmitRequest(ctx, pos.KindCustomer, "k", mustJSON(t, customerBody("Other", "12345678")))
	if pos.ErrorCode(err) != pos.EConflict {
		t.Fatalf("other body, same key: %v", err)
	}
	if _, existing, err := h.eng.SubmitRequest(ctx, pos.KindPayee, "k", mustJSON(t, payeeBody("C-9"))); err != nil || existing {
		t.Fatalf("payee with a customer's key: existing %v, %v", existing, err)
	}
	h.wait(first.ID)
	if n := len(h.hesabe.Customers()); n != 1 {
		t.Fatalf("hesabe has %d customers for one request sent twice", n)
	}
	// Payees: the hash hides the identity but still tells requests apart.
	p1 := mustJSON(t, payeeBody("C-10"))
	r1, _, err := h.eng.SubmitRequest(ctx, pos.KindPayee, "pk", p1)
	if err != nil {
		t.Fatal(err)
	}
	if r2, existing, err := h.eng.SubmitRequest(ctx, pos.KindPayee, "pk", p1); err != nil || !existing || r2.ID != r1.ID {
		t.Fatalf("payee retry = %v, %v", existing, err)
	}
	other := payeeBody("C-10")
	other["identity"] = "1099999999"
	if _, _, err := h.eng.SubmitRequest(ctx, pos.KindPayee, "pk", mustJSON(t, other)); pos.ErrorCode(err) != pos.EConflict {
		t.Fatalf("payee with another identity, same key: %v", err)
	}
}

// TestOutage: every gateway is down; customers, installment batches and
// payees are accepted and wait; when the gateways return, each request is
// delivered exactly once, in order.
func TestOutage(t *testing.T) {
	for _, gw := range []string{"hesabe", "hitpay"} {
		t.Run(gw, func(t *testing.T) {
			h := newHarness(t, harnessOptions{customers: gw})
			down := simfault.Fault{Kind: simfault.ResetBeforeRead}
			h.hesabe.Inject(down)
			h.hitpay.Inject(down)
			h.payout.Inject(down)

			var ids []string
			for i := range 4 {
				body := customerBody(fmt.Sprintf("عميل %d", i), fmt.Sprint("1234567", i))
				if gw == "hitpay" {
					body["country_code"] = "965"
				}
				ids = append(ids, h.submit(pos.KindCustomer, fmt.Sprint("c", i), body).ID)
			}
			for i := range 3 {
				ids = append(ids, h.submit(pos.KindInstallments, fmt.Sprint("i", i),
					installmentBody(fmt.Sprint("INV-", i, "-a"), fmt.Sprint("INV-", i, "-b"))).ID)
			}
			for i := range 3 {
				ids = append(ids, h.submit(pos.KindPayee, fmt.Sprint("p", i), payeeBody(fmt.Sprint("C-", i))).ID)
			}
			// Let the bridge try for a while: nothing may reach a gateway.
			deadline := time.Now().Add(600 * time.Millisecond)
			for time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				for _, id := range ids {
					r, err := h.eng.GetRequest(context.Background(), "", id)
					if err != nil || r.State.Final() {
						t.Fatalf("during the outage %s is %s (%v): %+v", id, r.State, err, r.Error)
					}
				}
			}
			st, err := h.eng.RequestStatus(context.Background())
			if err != nil || st.Pending != len(ids) {
				t.Fatalf("status during the outage: %+v, %v", st, err)
			}
			if !st.Gateways["payout"].Down {
				t.Fatalf("the payout gateway is not reported down: %+v", st.Gateways)
			}
			if len(h.hesabe.Customers()) != 0 || h.hesabe.EMIBatchCount() != 0 || h.hitpay.CustomerCount() != 0 ||
				h.payout.PayeeCount() != 0 {
				t.Fatal("a request reached a simulator during the outage")
			}

			h.hesabe.ClearFaults()
			h.hitpay.ClearFaults()
			h.payout.ClearFaults()
			for _, id := range ids {
				if r := h.wait(id); r.State != pos.RequestSucceeded {
					t.Fatalf("after the outage %s is %s: %+v", id, r.State, r.Error)
				}
			}
			// Exactly one per request, in acceptance order.
			var names []string
			switch gw {
			case "hesabe":
				for _, c := range h.hesabe.Customers() {
					names = append(names, c.Name)
				}
			case "hitpay":
				for _, c := range h.hitpay.Customers() {
					names = append(names, c.Name)
				}
			}
			if strings.Join(names, ",") != "عميل 0,عميل 1,عميل 2,عميل 3" {
				t.Fatalf("customers at the gateway: %q", names)
			}
			if h.hesabe.EMIBatchCount() != 3 || h.hesabe.EMIInvoiceCount() != 6 {
				t.Fatalf("hesabe has %d batches, %d invoices; want 3, 6", h.hesabe.EMIBatchCount(), h.hesabe.EMIInvoiceCount())
			}
			if h.payout.PayeeCount() != 3 {
				t.Fatalf("payout has %d payees, want 3", h.payout.PayeeCount())
			}
			if st, _ := h.eng.RequestStatus(context.Background()); st.Pending != 0 || st.Gateways["payout"].Down {
				t.Fatalf("status after the outage: %+v", st)
			}
		})
	}
}

// TestAmbiguous: the connection breaks after the gateway applied the
// request. An installment batch is not sent again (uncertain); a payee is,
// and the provider's duplicate answer means it was created.
func TestAmbiguous(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.hesabe.Inject(hesabesim.Fault{Kind: hesabesim.FaultApplyThenDrop, Count: 1, Path: "invoice/emi"})
	inst := h.wait(h.submit(pos.KindInstallments, "i", installmentBody("INV-A")).ID)
	if inst.State != pos.RequestUncertain || inst.Error == nil || inst.Error.Code != "ambiguous" || inst.Attempts != 1 {
		t.Fatalf("installments after a dropped answer: %+v", inst)
	}
	time.Sleep(300 * time.Millisecond) // would any resend happen?
	if h.hesabe.EMIBatchCount() != 1 {
		t.Fatalf("hesabe has %d batches; an uncertain batch was sent again", h.hesabe.EMIBatchCount())
	}

	h.payout.Inject(simfault.Fault{Kind: simfault.ApplyThenDrop, Count: 1})
	payee := h.wait(h.submit(pos.KindPayee, "p", payeeBody("C-77")).ID)
	if payee.State != pos.RequestSucceeded || payee.Attempts != 2 || !engine.MayHaveBeenApplied(payee) {
		t.Fatalf("payee after a dropped answer: %+v", payee)
	}
	if pr := result[requests.PayeeResult](t, payee); !pr.Adopted || pr.MerchantCustomerID != "C-77" || pr.CustomID == "" {
		t.Fatalf("payee result %+v", pr)
	}
	if h.payout.PayeeCount() != 1 {
		t.Fatalf("payout has %d payees", h.payout.PayeeCount())
	}
}

// TestRefused: a gateway's refusal fails the request with its reason; a
// payee whose merchant_customer_id another request already used is
// refused, not adopted.
func TestRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	first := h.wait(h.submit(pos.KindPayee, "a", payeeBody("C-5")).ID)
	if first.State != pos.RequestSucceeded {
		t.Fatalf("first payee %+v", first)
	}
	second := h.wait(h.submit(pos.KindPayee, "b", payeeBody("C-5")).ID)
	if second.State != pos.RequestFailed || second.Error == nil || second.Error.Message == "" {
		t.Fatalf("second payee with the same merchant_customer_id: %+v", second)
	}
	if h.payout.PayeeCount() != 1 {
		t.Fatalf("payout has %d payees", h.payout.PayeeCount())
	}
}

// TestCancelAndExpire: a queued request is canceled at once; one that was
// not delivered before it expires is never sent.
func TestCancelAndExpire(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.payout.Inject(simfault.Fault{Kind: simfault.ResetBeforeRead})
	p := h.submit(pos.KindPayee, "p", payeeBody("C-1"))
	// The bridge may be trying it right now (submitting cannot be
	// canceled); between tries it is queued and the cancel applies.
	var c pos.Request
	var err error
	for range 200 {
		c, err = h.eng.CancelRequest(context.Background(), pos.KindPayee, p.ID)
		if pos.ErrorCode(err) != pos.EConflict {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil || c.State != pos.RequestCanceled {
		t.Fatalf("cancel = %+v, %v", c, err)
	}
	if _, err := h.eng.CancelRequest(context.Background(), pos.KindPayee, p.ID); pos.ErrorCode(err) != pos.EConflict {
		t.Fatalf("cancel twice: %v", err)
	}
	if _, err := h.eng.CancelRequest(context.Background(), pos.KindCustomer, p.ID); pos.ErrorCode(err) != pos.ENotFound {
		t.Fatalf("cancel a payee as a customer: %v", err)
	}
	h.payout.ClearFaults()
	time.Sleep(200 * time.Millisecond)
	if h.payout.PayeeCount() != 0 {
		t.Fatal("a canceled payee was sent")
	}
}

// TestExpireWhileDown: an installment batch whose expiry day starts while
// Hesabe is down expires and is never sent.
func TestExpireWhileDown(t *testing.T) {
	clock := &offsetClock{}
	h := newHarnessClock(t, clock)
	h.hesabe.Inject(hesabesim.Fault{Kind: hesabesim.FaultResetBeforeRead})
	r := h.submit(pos.KindInstallments, "i", installmentBody("INV-X"))
	if r.NotAfter.IsZero() {
		t.Fatal("no not_after on an installment batch")
	}
	clock.add(72 * time.Hour)
	got := h.wait(r.ID)
	if got.State != pos.RequestExpired || got.Error == nil || got.Error.Code != "expired" {
		t.Fatalf("after its expiry day: %+v", got)
	}
	h.hesabe.ClearFaults()
	time.Sleep(200 * time.Millisecond)
	if h.hesabe.EMIBatchCount() != 0 {
		t.Fatal("an expired batch was sent")
	}
}

// TestCrashReconcile: requests a crash left in submitting are resent where
// the gateway folds duplicates (payees) and marked uncertain where it does
// not (installment batches).
func TestCrashReconcile(t *testing.T) {
	h := newHarnessClosed(t)
	ctx := context.Background()
	mk := func(kind pos.RequestKind, body any) pos.Request {
		hd := h.handlers[kind]
		p, err := hd.Prepare(mustJSON(t, body), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r, _, err := h.store.CreateRequest(ctx, pos.Request{Kind: kind, Gateway: hd.Gateway(), Payload: p.Payload,
			RequestHash: p.Hash, NotAfter: p.NotAfter}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.store.TransitionRequest(ctx, r.ID, pos.RequestSubmitting, "sending", nil); err != nil {
			t.Fatal(err)
		}
		return r
	}
	inst := mk(pos.KindInstallments, installmentBody("INV-C"))
	payee := mk(pos.KindPayee, payeeBody("C-3"))
	h.open()
	if r := h.wait(inst.ID); r.State != pos.RequestUncertain {
		t.Fatalf("installments found in submitting: %+v", r)
	}
	if r := h.wait(payee.ID); r.State != pos.RequestSucceeded || !engine.MayHaveBeenApplied(r) {
		t.Fatalf("payee found in submitting: %+v", r)
	}
	if h.hesabe.EMIBatchCount() != 0 || h.payout.PayeeCount() != 1 {
		t.Fatalf("after reconcile: %d batches, %d payees", h.hesabe.EMIBatchCount(), h.payout.PayeeCount())
	}
	if err := h.store.CheckRequests(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestSealedNeverPlain: identity, card and STC numbers never appear in
// plaintext in the bbolt file or the debug log, before or after delivery,
// and the till sees them masked.
func TestSealedNeverPlain(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	secrets := []string{"1012345678", "4111111111111111", "0598765432", "2087654321"}
	bank := map[string]any{"merchant_customer_id": "B-1", "name_en": "Sara", "identity": secrets[0],
		"bank_code": "RJHI", "card_number": secrets[1], "iban": "SA0380000000608010167519"}
	stc := map[string]any{"merchant_customer_id": "S-1", "name_ar": "سارة", "identity": secrets[3], "stc_account": secrets[2]}
	// One is delivered, one waits (its gateway is down) when the file is read.
	b := h.wait(h.submit(pos.KindPayee, "b", bank).ID)
	if b.State != pos.RequestSucceeded {
		t.Fatalf("bank payee %+v", b)
	}
	if pr := result[requests.PayeeResult](t, b); pr.CardNo != "****1111" || pr.Identity != "****5678" {
		t.Fatalf("bank payee as the till sees it: %+v", pr)
	}
	h.payout.Inject(simfault.Fault{Kind: simfault.ResetBeforeRead})
	s := h.submit(pos.KindPayee, "s", stc)
	time.Sleep(200 * time.Millisecond)
	if r, _ := h.eng.GetRequest(context.Background(), "", s.ID); r.State.Final() {
		t.Fatalf("stc payee %+v", r)
	}
	// A refused one too: its error must not echo the values.
	bad := map[string]any{"merchant_customer_id": "X-1", "name_en": "X", "identity": secrets[0], "stc_account": "12"}
	if _, _, err := h.eng.SubmitRequest(context.Background(), pos.KindPayee, "x", mustJSON(t, bad)); err == nil {
		t.Fatal("an invalid STC account was accepted")
	} else if strings.Contains(err.Error(), secrets[0]) {
		t.Fatalf("a validation error shows the identity: %v", err)
	}
	h.close()
	raw, err := os.ReadFile(h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := h.logs.String()
	for _, v := range secrets {
		if strings.Contains(string(raw), v) {
			t.Errorf("the bbolt file holds %q in plaintext", v)
		}
		if strings.Contains(logs, v) {
			t.Errorf("the log holds %q", v)
		}
	}
	if !strings.Contains(logs, "request accepted") {
		t.Fatal("the debug log is empty: the test would prove nothing")
	}
}

// TestTillErrors: each kind's checks name the till's field.
func TestTillErrors(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	hp := newHarness(t, harnessOptions{customers: "hitpay"})
	inv := func(mut func(m map[string]any)) map[string]any {
		b := installmentBody("INV-1")
		mut(b["invoices"].([]map[string]any)[0])
		return b
	}
	cases := []struct {
		name  string
		h     *harness
		kind  pos.RequestKind
		body  any
		field string
	}{
		{"hesabe customer without name", h, pos.KindCustomer, map[string]any{"email": "a@b.co", "mobile_number": "12345678"}, "name"},
		{"hesabe customer short mobile", h, pos.KindCustomer, customerBody("أحمد", "1234567"), "mobile_number"},
		{"hesabe customer birth date", h, pos.KindCustomer, map[string]any{"name": "A", "email": "a@b.co", "mobile_number": "12345678", "birth_date": "1990-01-01"}, "birth_date"},
		{"unknown field", h, pos.KindCustomer, map[string]any{"name": "A", "nickname": "x"}, "nickname"},
		{"not JSON", h, pos.KindCustomer, "{", "body"},
		{"long till_ref", h, pos.KindCustomer, map[string]any{"name": "A", "email": "a@b.co", "mobile_number": "12345678", "till_ref": strings.Repeat("x", 65)}, "till_ref"},
		{"hitpay country code", hp, pos.KindCustomer, map[string]any{"name": "أحمد", "mobile_number": "91234567"}, "country_code"},
		{"hitpay gender", hp, pos.KindCustomer, map[string]any{"name": "A", "gender": "x"}, "gender"},
		{"amount decimals", h, pos.KindInstallments, inv(func(m map[string]any) { m["amount"] = "1.2345" }), "invoices[0].amount"},
		{"amount number", h, pos.KindInstallments, inv(func(m map[string]any) { m["amount"] = 150 }), "invoices[0].amount"},
		{"item rate", h, pos.KindInstallments, inv(func(m map[string]any) {
			m["items"] = []map[string]any{{"title": "x", "rate": "-1", "quantity": 1, "amount": "1.000"}}
		}), "invoices[0].items[0].rate"},
		{"items below amount", h, pos.KindInstallments, inv(func(m map[string]any) {
			m["items"] = []map[string]any{{"title": "x", "rate": "1.000", "quantity": 1, "amount": "1.000"}}
		}), "invoices[0].items"},
		{"payment type", h, pos.KindInstallments, inv(func(m map[string]any) { m["payment_types"] = []int{3} }), "invoices[0].payment_types"},
		{"expired", h, pos.KindInstallments, inv(func(m map[string]any) { m["expires_at"] = "2020-01-01" }), "invoices[0].expires_at"},
		{"language", h, pos.KindInstallments, inv(func(m map[string]any) { m["language"] = "fr" }), "invoices[0].language"},
		{"empty batch", h, pos.KindInstallments, map[string]any{"invoices": []any{}}, "invoices"},
		{"payee without identity", h, pos.KindPayee, map[string]any{"merchant_customer_id": "C", "name_en": "A", "stc_account": "0512345678"}, "identity"},
		{"payee stc", h, pos.KindPayee, map[string]any{"merchant_customer_id": "C", "name_en": "A", "identity": "1", "stc_account": "0612345678"}, "stc_account"},
		{"payee card", h, pos.KindPayee, map[string]any{"merchant_customer_id": "C", "name_en": "A", "identity": "1", "bank_code": "X", "card_number": "123", "iban": "SA03"}, "card_number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := c.h.eng.SubmitRequest(context.Background(), c.kind, "k-"+c.name, mustJSON(t, c.body))
			var pe *pos.Error
			if !errors.As(err, &pe) || pe.Code != pos.EInvalid || pe.Field != c.field {
				t.Fatalf("error %v, want invalid %s", err, c.field)
			}
			if pe.Message == "" {
				t.Fatal("no message")
			}
		})
	}
	// Nothing refused was stored.
	for _, hh := range []*harness{h, hp} {
		if list, _, _ := hh.eng.RecentRequests(context.Background(), "", 100, ""); len(list) != 0 {
			t.Fatalf("refused requests were stored: %d", len(list))
		}
	}
}

// TestUnconfiguredKind: a request stored for a gateway the configuration
// no longer uses fails with a clear reason instead of waiting unseen.
func TestUnconfiguredKind(t *testing.T) {
	h := newHarnessClosed(t)
	r, _, err := h.store.CreateRequest(context.Background(), pos.Request{Kind: pos.KindCustomer, Gateway: "retired",
		Payload: json.RawMessage(`{"name":"x"}`)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if gws, err := h.store.QueuedRequestGateways(context.Background()); err != nil || strings.Join(gws, ",") != "retired" {
		t.Fatalf("queued gateways %v, %v", gws, err)
	}
	h.open()
	got := h.wait(r.ID)
	if got.State != pos.RequestFailed || got.Error == nil || got.Error.Code != "not_configured" {
		t.Fatalf("%+v", got)
	}
}
