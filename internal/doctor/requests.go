package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"runtime"

	"github.com/posbridge/posbridge/internal/crypto"
)

// checkRequestGateways checks the gateways of customers and payees when
// the configuration turns them on: HitPay reachable, the payout
// provider reachable, and its two RSA key files usable.
func (r *run) checkRequestGateways(ctx context.Context) {
	rc := r.cfg.Requests
	if rc.Customers == "hitpay" {
		r.checkReachable(ctx, "hitpay", "hitpay.url", r.cfg.HitPay.URL)
	}
	if !rc.Payees {
		return
	}
	r.checkReachable(ctx, "payout", "payout.url", r.cfg.Payout.URL)
	p := r.cfg.Payout
	pub, err := crypto.LoadRSAPublicKeyFile(p.ProviderPublicKeyFile)
	if err != nil {
		r.add("payout.provider_key", Fail, fmt.Sprintf("payout.provider_public_key_file %q: %v", p.ProviderPublicKeyFile, unwrapPath(err)),
			keyFix(err, "the provider's RSA public key (PEM, 2048 bits or more) as the provider sent it"))
	} else {
		r.add("payout.provider_key", OK, fmt.Sprintf("%d-bit RSA public key: identity, card and STC numbers are sealed with it", pub.N.BitLen()), "")
	}
	priv, err := crypto.LoadRSAPrivateKeyFile(p.MerchantPrivateKeyFile)
	switch {
	case err != nil:
		r.add("payout.merchant_key", Fail, fmt.Sprintf("payout.merchant_private_key_file %q: %v", p.MerchantPrivateKeyFile, unwrapPath(err)),
			keyFix(err, "the merchant's RSA private key (unencrypted PKCS#1 or PKCS#8 PEM) whose public half is registered with the provider"))
	case pub != nil && priv.PublicKey.Equal(pub):
		r.add("payout.merchant_key", Fail, "the merchant's private key is the provider's key pair",
			"the two files are swapped or the same: provider_public_key_file is the provider's key, merchant_private_key_file the merchant's own")
	default:
		detail := fmt.Sprintf("%d-bit RSA private key opens the provider's answers", priv.N.BitLen())
		if runtime.GOOS != "windows" {
			if fi, err := os.Stat(p.MerchantPrivateKeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
				r.add("payout.merchant_key", Fail, fmt.Sprintf("%s has mode %04o: other users can read the merchant's private key",
					p.MerchantPrivateKeyFile, fi.Mode().Perm()), "chmod 600 "+p.MerchantPrivateKeyFile+" (owned by the posbridge user)")
				return
			}
		}
		r.add("payout.merchant_key", OK, detail, "")
	}
}

func keyFix(err error, what string) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "put " + what + " at that path, or correct the path"
	case errors.Is(err, fs.ErrPermission):
		return "let the posbridge user read it (chown posbridge; chmod 600)"
	case errors.Is(err, crypto.ErrKeyEncrypted):
		return "posbridge needs the key unencrypted: openssl pkey -in KEY -out KEY.plain (keep it 0600)"
	}
	return "the file must hold " + what
}

// checkReachable dials a request gateway's host: DNS and TCP in one line.
func (r *run) checkReachable(ctx context.Context, name, key, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		r.add(name, Fail, fmt.Sprintf("%s %q is not a URL", key, raw), "set "+key)
		return
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	dctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		r.add(name, Fail, fmt.Sprintf("cannot connect to %s: %v", addr, cleanNetErr(err)),
			"check the internet link and firewall, and "+key+"; requests wait in the outbox meanwhile")
		return
	}
	conn.Close()
	r.add(name, OK, "connected to "+addr, "")
}
