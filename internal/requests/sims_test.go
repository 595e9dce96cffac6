package requests_test

import (
	"context"
	"testing"

	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/hitpay/hitpaysim"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
)

type hitpaySim struct {
	*hitpaysim.Server
	client *hitpay.Client
}

func startHitPay(t testing.TB) *hitpaySim {
	t.Helper()
	sim, err := hitpaysim.Start("127.0.0.1:0", hitpaysim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	c, err := hitpay.New(sim.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &hitpaySim{Server: sim, client: c}
}

type payoutSim struct {
	*payoutsim.Server
	client *payout.Client
}

func startPayout(t testing.TB) *payoutSim {
	t.Helper()
	sim, err := payoutsim.Start("127.0.0.1:0", payoutsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close(context.Background()) })
	cfg, err := sim.ClientConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := payout.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &payoutSim{Server: sim, client: c}
}
