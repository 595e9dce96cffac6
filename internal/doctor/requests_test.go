package doctor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/payout/payoutsim"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestRequestGateways: HitPay and the payout provider are checked when the
// configuration uses them: reachable, and the payout key files usable.
func TestRequestGateways(t *testing.T) {
	keys, err := payoutsim.ProcessKeys()
	if err != nil {
		t.Fatal(err)
	}
	sim, err := payoutsim.Start("127.0.0.1:0", payoutsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) })
	const hitpayKey, payoutKey = "hitpay-key-0123456789", "payout-key-0123456789"

	run := func(t *testing.T, pub, priv string, hitpayURL string) []doctor.Result {
		t.Helper()
		s := newSetup(t)
		s.extra = fmt.Sprintf("requests:\n  customers: hitpay\n  payees: true\nhitpay:\n  url: %s\n  api_key: %s\n"+
			"payout:\n  url: %s\n  api_key: %s\n  provider_public_key_file: %s\n  merchant_private_key_file: %s\n",
			hitpayURL, hitpayKey, sim.URL(), payoutKey, pub, priv)
		s.write(t)
		rs := s.run(t, doctor.Options{})
		var b bytes.Buffer
		doctor.WriteText(&b, rs)
		for _, k := range []string{hitpayKey, payoutKey} {
			if strings.Contains(b.String(), k) {
				t.Fatalf("doctor prints an API key:\n%s", b.String())
			}
		}
		return rs
	}
	files := func(t *testing.T) (pub, priv string) {
		t.Helper()
		pub, priv, err := payoutsim.WriteKeyFiles(t.TempDir(), &keys.Provider.PublicKey, keys.Merchant)
		if err != nil {
			t.Fatal(err)
		}
		return pub, priv
	}

	t.Run("good", func(t *testing.T) {
		pub, priv := files(t)
		rs := run(t, pub, priv, sim.URL())
		expect(t, rs, "hitpay", doctor.OK, "connected to", "")
		expect(t, rs, "payout", doctor.OK, "connected to", "")
		expect(t, rs, "payout.provider_key", doctor.OK, "2048-bit", "")
		expect(t, rs, "payout.merchant_key", doctor.OK, "2048-bit", "")
	})
	t.Run("hitpay unreachable", func(t *testing.T) {
		pub, priv := files(t)
		rs := run(t, pub, priv, "http://"+testutil.FreeAddr(t))
		expect(t, rs, "hitpay", doctor.Fail, "cannot connect", "hitpay.url")
	})
	t.Run("missing provider key", func(t *testing.T) {
		_, priv := files(t)
		rs := run(t, filepath.Join(t.TempDir(), "nope.pem"), priv, sim.URL())
		expect(t, rs, "payout.provider_key", doctor.Fail, "nope.pem", "put the provider's RSA public key")
	})
	t.Run("private key readable by others", func(t *testing.T) {
		pub, priv := files(t)
		if err := os.Chmod(priv, 0o644); err != nil {
			t.Fatal(err)
		}
		rs := run(t, pub, priv, sim.URL())
		expect(t, rs, "payout.merchant_key", doctor.Fail, "other users can read", "chmod 600")
	})
	t.Run("not a key", func(t *testing.T) {
		pub, _ := files(t)
		bad := filepath.Join(t.TempDir(), "merchant.key")
		if err := os.WriteFile(bad, []byte("hello"), 0o600); err != nil {
			t.Fatal(err)
		}
		rs := run(t, pub, bad, sim.URL())
		expect(t, rs, "payout.merchant_key", doctor.Fail, "merchant.key", "unencrypted PKCS#1 or PKCS#8")
	})
	t.Run("swapped", func(t *testing.T) {
		// The merchant's own public key given as the provider's.
		pub, priv, err := payoutsim.WriteKeyFiles(t.TempDir(), &keys.Merchant.PublicKey, keys.Merchant)
		if err != nil {
			t.Fatal(err)
		}
		rs := run(t, pub, priv, sim.URL())
		expect(t, rs, "payout.merchant_key", doctor.Fail, "provider's key pair", "swapped")
	})
}
