package crypto_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/posbridge/posbridge/internal/crypto"
)

// TestOpenRefusesBytesThatAreNotText: with PKCS#1 v1.5, about one block
// in 100,000 not sealed with the key and padding (TestOpenErrors's
// OtherPadding, once in a CI run) passes the padding check and gave
// random bytes as a "plaintext". A sealed field is text: bytes that are
// not UTF-8 are refused as ErrOpenFailed, made here deterministic by
// sealing such bytes with the right key.
func TestOpenRefusesBytesThatAreNotText(t *testing.T) {
	priv, err := testKey()
	if err != nil {
		t.Fatal(err)
	}
	o, err := crypto.NewOpener(priv, crypto.PKCS1v15)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, []byte{0x8d, 0xf2, 't', 0xee, 0xd0, 0x14}) //nolint:staticcheck // the provider's padding
	if err != nil {
		t.Fatal(err)
	}
	if got, err := o.Open(base64.StdEncoding.EncodeToString(ct)); !errors.Is(err, crypto.ErrOpenFailed) || got != "" {
		t.Fatalf("Open of sealed bytes that are not text: %q, %v; want ErrOpenFailed", got, err)
	}
	ct, _ = rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, []byte("2851234567890")) //nolint:staticcheck // the provider's padding
	if got, err := o.Open(base64.StdEncoding.EncodeToString(ct)); err != nil || got != "2851234567890" {
		t.Fatalf("Open of a sealed identity: %q, %v", got, err)
	}
}
