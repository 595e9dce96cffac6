package engine_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// swapGateway is the engine's gateway, replaced while it runs: the
// client with the corrected Hesabe settings takes over from the one with
// the wrong ones, without losing the engine's health.
type swapGateway struct {
	mu sync.Mutex
	c  *hesabe.Client
}

func (g *swapGateway) get() *hesabe.Client  { g.mu.Lock(); defer g.mu.Unlock(); return g.c }
func (g *swapGateway) set(c *hesabe.Client) { g.mu.Lock(); g.c = c; g.mu.Unlock() }
func (g *swapGateway) CreatePOSInvoice(ctx context.Context, r hesabe.POSInvoiceRequest) (*hesabe.POSInvoice, error) {
	return g.get().CreatePOSInvoice(ctx, r)
}
func (g *swapGateway) FindPOSInvoice(ctx context.Context, n string) (*hesabe.POSInvoice, error) {
	return g.get().FindPOSInvoice(ctx, n)
}
func (g *swapGateway) GetPOSInvoice(ctx context.Context, id int64) (*hesabe.POSInvoice, error) {
	return g.get().GetPOSInvoice(ctx, id)
}

// credentialsHarness is an open engine against the simulator over
// loopback whose client has the simulator's merchant settings changed by
// bad.
func credentialsHarness(t *testing.T, bad func(*hesabe.Config)) (*engine.Engine, *swapGateway, *hesabesim.Server) {
	t.Helper()
	sim, err := hesabesim.Start("127.0.0.1:0", hesabesim.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	cfg := sim.ClientConfig(0)
	bad(&cfg)
	c, err := hesabe.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := queue.Open(filepath.Join(t.TempDir(), "queue.db"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	opts := fastOptions()
	opts.IdleProbe = 50 * time.Millisecond
	gw := &swapGateway{c: c}
	eng := engine.New(store, gw, opts)
	if err := eng.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := eng.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return eng, gw, sim
}

// TestGatewayRefusesCredentialsNamesWhatToCheck: a wrong password, access
// code or key makes the gateway refuse every call. That is an answer (the
// engine stays online: nothing is stored for later), but Status says the
// gateway refuses posbridge's settings and which ones to check, where it
// used to show only an answer "0s ago".
func TestGatewayRefusesCredentialsNamesWhatToCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(*hesabe.Config)
		want string
	}{
		{"password", func(c *hesabe.Config) { c.Password = "wrong" }, "hesabe.username/password"},
		{"access code", func(c *hesabe.Config) { c.AccessCode = "00000000-0000-0000-0000-000000000000" }, "hesabe.access_code"},
		{"secret key", func(c *hesabe.Config) { c.SecretKey = strings.Repeat("k", 32) }, "hesabe.secret_key"},
		{"iv key", func(c *hesabe.Config) { c.IVKey = strings.Repeat("v", 16) }, "hesabe.iv_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng, _, _ := credentialsHarness(t, tc.bad)
			eventually(t, "gateway refusal in the status", func() bool { return eng.Status().GatewayRefused != "" })
			st := eng.Status()
			if !strings.Contains(st.GatewayRefused, tc.want) {
				t.Errorf("GatewayRefused = %q, want it to name %s", st.GatewayRefused, tc.want)
			}
			if !st.Online || !st.OfflineSince.IsZero() {
				t.Errorf("a refusal put the engine offline: %+v", st)
			}
			if st.LastGatewayError == "" || st.LastGatewayErrorAt.IsZero() {
				t.Errorf("last error %q at %v, want the refusal and its time", st.LastGatewayError, st.LastGatewayErrorAt)
			}
		})
	}
}

// TestGatewayRefusalClearsOnSuccess: with a wrong password a checkout
// fails at once and the status names hesabe.username/password; once the
// password is right the next call succeeds, the refusal is gone, and the
// last error stays as a past one (its time before the last success).
func TestGatewayRefusalClearsOnSuccess(t *testing.T) {
	eng, gw, sim := credentialsHarness(t, func(c *hesabe.Config) { c.Password = "wrong" })
	c, _, err := eng.Create(context.Background(), checkoutReq(termA, "refused", 1_000))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "checkout failed", func() bool {
		got, err := eng.Get(context.Background(), c.ID)
		return err == nil && got.State == pos.StateFailed
	})
	st := eng.Status()
	if !strings.Contains(st.GatewayRefused, "hesabe.username/password") || !st.Online {
		t.Fatalf("after the refused create: refused %q online %v", st.GatewayRefused, st.Online)
	}

	good, err := hesabe.New(sim.ClientConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	gw.set(good)
	eventually(t, "refusal cleared by a successful call", func() bool { return eng.Status().GatewayRefused == "" })
	st = eng.Status()
	if !strings.Contains(st.LastGatewayError, "login") || st.LastGatewayErrorAt.IsZero() {
		t.Errorf("last error %q at %v, want the old refusal kept with its time", st.LastGatewayError, st.LastGatewayErrorAt)
	}
	if !st.LastGatewaySuccess.After(st.LastGatewayErrorAt) {
		t.Errorf("last success %v not after the last error %v", st.LastGatewaySuccess, st.LastGatewayErrorAt)
	}
}

// TestGateway503IsNoRefusal: a 503 makes the engine offline, not "check
// your settings"; a 401 on every call (after the client's new login) is a
// refusal naming the access code, cleared by the next call that succeeds.
func TestGateway503IsNoRefusal(t *testing.T) {
	eng, _, sim := credentialsHarness(t, func(*hesabe.Config) {})
	eventually(t, "first success", func() bool { return !eng.Status().LastGatewaySuccess.IsZero() })
	sim.Inject(hesabesim.Fault{Kind: hesabesim.Fault5xx, Status: 503})
	eventually(t, "offline", func() bool { return !eng.Online() })
	if st := eng.Status(); st.GatewayRefused != "" {
		t.Fatalf("a 503 counted as a refusal: %q", st.GatewayRefused)
	}
	sim.ClearFaults()
	eventually(t, "online", eng.Online)
	sim.Inject(hesabesim.Fault{Kind: hesabesim.FaultUnauthorized})
	eventually(t, "refusal", func() bool { return strings.Contains(eng.Status().GatewayRefused, "hesabe.access_code") })
	if !eng.Online() {
		t.Fatal("a 401 put the engine offline")
	}
	sim.ClearFaults()
	eventually(t, "refusal cleared", func() bool { return eng.Status().GatewayRefused == "" })
}
