package engine_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
)

// TestOutage: gateway down → checkouts accepted within the offline limits
// and the next one refused with the limit's error; gateway back → every
// stored checkout delivered in order, none after its deadline, the ones
// whose deadline passed during the outage marked expired and never sent.
func TestOutage(t *testing.T) {
	opts := fastOptions()
	opts.Offline = engine.OfflineLimits{MaxCount: 6, MaxAmount: 100_000, MaxSingle: 50_000}
	opts.DrainRate = 50
	h := newHarness(t, opts, false)
	h.payAll(hesabe.InvoicePaid, 0)
	h.sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 503}) // every path
	h.open()
	eventually(t, "engine offline", func() bool { return !h.eng.Online() })
	ctx := context.Background()

	wantLimit := func(err error, field, msg string) {
		t.Helper()
		pe, ok := err.(*pos.Error)
		if !ok || pe.Code != pos.ELimit || pe.Field != field || pe.Message != msg {
			t.Fatalf("err %v, want %s on %q: %q", err, pos.ELimit, field, msg)
		}
	}
	_, _, err := h.eng.Create(ctx, checkoutReq(termA, "big", 60_000))
	wantLimit(err, "amount", "offline: amount 60.000 exceeds the offline single-payment limit 50.000")

	// Four with the default deadline, two with a short one, alternating
	// terminals: 6 stored (the count limit), 90.000 KWD.
	var long, short []pos.Checkout
	for i := range 4 {
		long = append(long, h.create(checkoutReq([]string{termA, termB}[i%2], "long"+string(rune('0'+i)), 20_000)))
	}
	for i := range 2 {
		r := checkoutReq([]string{termA, termB}[i%2], "short"+string(rune('0'+i)), 5_000)
		r.Deadline = time.Second
		short = append(short, h.create(r))
	}
	_, _, err = h.eng.Create(ctx, checkoutReq(termA, "seventh", 1_000))
	wantLimit(err, "", "offline: 6 checkouts already stored (limit 6)")
	// A retry of an accepted request is not refused by the limits.
	if c, existing, err := h.eng.Create(ctx, checkoutReq(termA, "long0", 20_000)); err != nil || !existing || c.ID != long[0].ID {
		t.Fatalf("retry while at the limit: %v existing=%v", err, existing)
	}
	if st := h.eng.Status(); st.Online || st.Queued != 6 || st.QueuedAmount != 90_000 || st.OldestQueued.IsZero() || st.OfflineSince.IsZero() {
		t.Fatalf("status while offline: %+v", st)
	}

	// The short ones expire while offline, never sent.
	for _, c := range short {
		c = h.waitFor(c.ID, pos.StateExpired)
		if c.Attempts != 0 {
			t.Fatalf("%s attempted while offline", c.ID)
		}
	}
	// Now 4 stored, 80.000 KWD: the total limit bites before the count.
	_, _, err = h.eng.Create(ctx, checkoutReq(termB, "too-much", 25_000))
	wantLimit(err, "", "offline: stored total would be 105.000 KWD (limit 100.000)")
	long = append(long, h.create(checkoutReq(termB, "fits", 20_000)))

	// The link returns.
	h.sim.ClearFaults()
	eventually(t, "engine online", h.eng.Online)
	for i, c := range long {
		long[i] = h.waitFor(c.ID, pos.StatePaid)
	}
	for _, c := range short {
		if n := h.invoices(c); n != 0 {
			t.Fatalf("expired %s was sent late (%d invoices)", c.ID, n)
		}
	}
	// In order per terminal, each exactly once, none after its deadline.
	byTerm := map[string][]pos.Checkout{}
	for _, c := range long {
		inv := h.wantOneInvoice(c)
		c.InvoiceID = inv.ID
		byTerm[c.TerminalID] = append(byTerm[c.TerminalID], c)
		for _, tr := range c.History {
			if tr.To == pos.StateSubmitting && !tr.At.Before(c.Deadline) {
				t.Fatalf("%s submitted at %v, deadline %v", c.ID, tr.At, c.Deadline)
			}
		}
	}
	for term, cs := range byTerm {
		if !sort.SliceIsSorted(cs, func(i, j int) bool { return cs[i].CreatedAt.Before(cs[j].CreatedAt) }) {
			t.Fatalf("terminal %s: list not in acceptance order", term)
		}
		for i := 1; i < len(cs); i++ {
			if cs[i].InvoiceID <= cs[i-1].InvoiceID {
				t.Fatalf("terminal %s delivered out of order: %s before %s", term, cs[i].ID, cs[i-1].ID)
			}
		}
	}
	if st := h.eng.Status(); !st.Online || st.Queued != 0 || !strings.Contains(st.LastGatewayError, "503") {
		t.Fatalf("status after the outage: %+v", st)
	}
}
