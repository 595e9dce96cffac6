package crypto_test

import (
	"bytes"
	gocrypto "crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
)

// Key generation takes a noticeable fraction of a second per 2048-bit key:
// each key is made once per test binary.
var (
	testKey  = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	otherKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	shortKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 1024) })
)

func mustKey(tb testing.TB, gen func() (*rsa.PrivateKey, error)) *rsa.PrivateKey {
	tb.Helper()
	k, err := gen()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustSealer(tb testing.TB, k *rsa.PrivateKey, p crypto.RSAPadding) *crypto.Sealer {
	tb.Helper()
	s, err := crypto.NewSealer(&k.PublicKey, p)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustOpener(tb testing.TB, k *rsa.PrivateKey, p crypto.RSAPadding) *crypto.Opener {
	tb.Helper()
	o, err := crypto.NewOpener(k, p)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

var allPaddings = []crypto.RSAPadding{"", crypto.PKCS1v15, crypto.OAEPSHA256, crypto.OAEPSHA1, crypto.OAEPSHA256MGF1SHA1}

func TestParseRSAPadding(t *testing.T) {
	for in, want := range map[string]crypto.RSAPadding{
		"": crypto.PKCS1v15, "pkcs1v15": crypto.PKCS1v15, "PKCS1": crypto.PKCS1v15, "pkcs1-v1_5": crypto.PKCS1v15,
		"oaep": crypto.OAEPSHA256, "OAEP-SHA256": crypto.OAEPSHA256, " oaep-sha1 ": crypto.OAEPSHA1,
		"oaep-sha256-mgf1-sha1": crypto.OAEPSHA256MGF1SHA1,
	} {
		got, err := crypto.ParseRSAPadding(in)
		if err != nil || got != want {
			t.Errorf("ParseRSAPadding(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"oaep-md5", "none", "pkcs7"} {
		if _, err := crypto.ParseRSAPadding(in); !errors.Is(err, crypto.ErrUnknownPadding) {
			t.Errorf("ParseRSAPadding(%q) err = %v, want ErrUnknownPadding", in, err)
		}
	}
	if got, want := crypto.RSAPadding("").String(), "pkcs1v15"; got != want {
		t.Errorf("zero padding String = %q, want %q", got, want)
	}
}

func TestMaxPlaintext(t *testing.T) {
	for p, want := range map[crypto.RSAPadding]int{
		"": 245, crypto.PKCS1v15: 245, crypto.OAEPSHA256: 190, crypto.OAEPSHA1: 214, crypto.OAEPSHA256MGF1SHA1: 190,
	} {
		if got := p.MaxPlaintext(256); got != want {
			t.Errorf("%s.MaxPlaintext(256) = %d, want %d", p, got, want)
		}
	}
}

func TestSealOpen(t *testing.T) {
	k := mustKey(t, testKey)
	for _, p := range allPaddings {
		s, o := mustSealer(t, k, p), mustOpener(t, k, p)
		for _, plain := range []string{
			"1012345678", "محمد العتيبي", "4111111111111111", "+966512345678", "", "x",
			strings.Repeat("ب", s.MaxPlaintext()/2), strings.Repeat("9", s.MaxPlaintext()),
		} {
			t.Run(fmt.Sprintf("%s/%d", p, len(plain)), func(t *testing.T) {
				sealed, err := s.Seal(plain)
				if err != nil {
					t.Fatalf("Seal: %v", err)
				}
				if got, want := len(sealed), 344; got != want {
					t.Errorf("len(sealed) = %d, want %d", got, want)
				}
				if got, want := s.SealedLen(), 344; got != want {
					t.Errorf("SealedLen = %d, want %d", got, want)
				}
				if _, err := base64.StdEncoding.Strict().DecodeString(sealed); err != nil {
					t.Errorf("sealed is not standard base64: %v", err)
				}
				if len(plain) >= 4 && strings.Contains(sealed, plain) {
					t.Errorf("sealed value contains the plaintext")
				}
				again, err := s.Seal(plain)
				if err != nil {
					t.Fatal(err)
				}
				if again == sealed {
					t.Errorf("two seals of the same plaintext are equal: padding is not randomized")
				}
				got, err := o.Open(sealed)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if got != plain {
					t.Errorf("Open = %q, want %q", got, plain)
				}
			})
		}
	}
}

// TestSealInterop decrypts Seal's output with crypto/rsa directly, proving
// each padding is the scheme its name says (what the provider will run).
func TestSealInterop(t *testing.T) {
	k := mustKey(t, testKey)
	const plain = "1012345678"
	decode := func(t *testing.T, s *crypto.Sealer) []byte {
		sealed, err := s.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := base64.StdEncoding.DecodeString(sealed)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	for _, tc := range []struct {
		padding   crypto.RSAPadding
		hash, mgf gocrypto.Hash
	}{
		{crypto.OAEPSHA256, gocrypto.SHA256, gocrypto.SHA256},
		{crypto.OAEPSHA1, gocrypto.SHA1, gocrypto.SHA1},
		{crypto.OAEPSHA256MGF1SHA1, gocrypto.SHA256, gocrypto.SHA1},
	} {
		t.Run(string(tc.padding), func(t *testing.T) {
			ct := decode(t, mustSealer(t, k, tc.padding))
			got, err := k.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: tc.hash, MGFHash: tc.mgf})
			if err != nil || string(got) != plain {
				t.Fatalf("OAEP(%v, MGF1 %v) decrypt = %q, %v", tc.hash, tc.mgf, got, err)
			}
		})
	}
	t.Run("pkcs1v15", func(t *testing.T) {
		ct := decode(t, mustSealer(t, k, crypto.PKCS1v15))
		got, err := k.Decrypt(nil, ct, &rsa.PKCS1v15DecryptOptions{})
		if err != nil || string(got) != plain {
			t.Fatalf("PKCS#1 v1.5 decrypt = %q, %v", got, err)
		}
	})
	t.Run("oaep-sha256 from crypto/rsa", func(t *testing.T) {
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte(plain), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := mustOpener(t, k, crypto.OAEPSHA256).Open(base64.StdEncoding.EncodeToString(ct))
		if err != nil || got != plain {
			t.Fatalf("Open = %q, %v", got, err)
		}
	})
}

func TestSealTooLong(t *testing.T) {
	k := mustKey(t, testKey)
	for _, p := range allPaddings {
		s := mustSealer(t, k, p)
		plain := strings.Repeat("7", s.MaxPlaintext()+1)
		_, err := s.Seal(plain)
		if !errors.Is(err, crypto.ErrPlaintextTooLong) {
			t.Fatalf("%s: Seal(%d bytes) err = %v, want ErrPlaintextTooLong", p, len(plain), err)
		}
		if strings.Contains(err.Error(), "7777") {
			t.Errorf("%s: error shows the plaintext: %v", p, err)
		}
		// Arabic counts in bytes, not runes.
		if _, err := s.Seal(strings.Repeat("ع", s.MaxPlaintext()/2+1)); !errors.Is(err, crypto.ErrPlaintextTooLong) {
			t.Errorf("%s: Arabic over the byte limit: err = %v", p, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	k, other := mustKey(t, testKey), mustKey(t, otherKey)
	o := mustOpener(t, k, crypto.PKCS1v15)
	sealedOther, err := mustSealer(t, other, crypto.PKCS1v15).Seal("1012345678")
	if err != nil {
		t.Fatal(err)
	}
	sealedOAEP, err := mustSealer(t, k, crypto.OAEPSHA256).Seal("1012345678")
	if err != nil {
		t.Fatal(err)
	}
	good, err := mustSealer(t, k, crypto.PKCS1v15).Seal("1012345678")
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(good)
	if flipped[100] == 'A' { // another base64 character, same length
		flipped[100] = 'B'
	} else {
		flipped[100] = 'A'
	}
	random := make([]byte, 256)
	_, _ = rand.Read(random)
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"Empty", "", crypto.ErrSealedNotBase64},
		{"Spaces", "  \n ", crypto.ErrSealedNotBase64},
		{"NotBase64", "secret-identity-1012345678!", crypto.ErrSealedNotBase64},
		{"BadChar", strings.Repeat("A", 100) + "*" + strings.Repeat("A", 243), crypto.ErrSealedNotBase64},
		{"TooMuchPadding", strings.Repeat("A", 341) + "===", crypto.ErrSealedNotBase64},
		{"Short", base64.StdEncoding.EncodeToString(random[:255]), crypto.ErrSealedLength},
		{"Long", base64.StdEncoding.EncodeToString(append(random, 1)), crypto.ErrSealedLength},
		{"Plaintext", base64.StdEncoding.EncodeToString([]byte("1012345678")), crypto.ErrSealedLength},
		{"Random", base64.StdEncoding.EncodeToString(random), crypto.ErrOpenFailed},
		{"OtherKey", sealedOther, crypto.ErrOpenFailed},
		{"OtherPadding", sealedOAEP, crypto.ErrOpenFailed},
		{"Damaged", string(flipped), crypto.ErrOpenFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := o.Open(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open err = %v (plaintext %q), want %v", err, got, tc.want)
			}
			if got != "" {
				t.Errorf("Open returned %q with an error", got)
			}
			if len(tc.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)[:8]) {
				t.Errorf("error echoes the input: %v", err)
			}
			if strings.Contains(err.Error(), "1012345678") {
				t.Errorf("error shows a plaintext: %v", err)
			}
		})
	}
	// The wrong-padding and wrong-key failures read exactly the same: no
	// oracle detail.
	_, e1 := o.Open(sealedOther)
	_, e2 := o.Open(base64.StdEncoding.EncodeToString(random))
	if e1.Error() != e2.Error() {
		t.Errorf("decryption failures differ: %q vs %q", e1, e2)
	}
}

func TestOpenLenientBase64(t *testing.T) {
	k := mustKey(t, testKey)
	o := mustOpener(t, k, "")
	sealed, err := mustSealer(t, k, "").Seal("0512345678")
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(sealed)
	var wrapped strings.Builder // Java's MIME encoder: 76 columns, CRLF
	for i := 0; i < len(sealed); i += 76 {
		wrapped.WriteString(sealed[i:min(i+76, len(sealed))])
		wrapped.WriteString("\r\n")
	}
	for name, in := range map[string]string{
		"Std":        sealed,
		"Wrapped":    wrapped.String(),
		"Unpadded":   strings.TrimRight(sealed, "="),
		"URL":        base64.URLEncoding.EncodeToString(ct),
		"RawURL":     base64.RawURLEncoding.EncodeToString(ct),
		"Surrounded": " " + sealed + "\n",
	} {
		if got, err := o.Open(in); err != nil || got != "0512345678" {
			t.Errorf("%s: Open = %q, %v", name, got, err)
		}
	}
}

func TestNewSealerOpenerErrors(t *testing.T) {
	k, short := mustKey(t, testKey), mustKey(t, shortKey)
	if _, err := crypto.NewSealer(nil, ""); err == nil {
		t.Error("NewSealer(nil) accepted")
	}
	if _, err := crypto.NewOpener(nil, ""); err == nil {
		t.Error("NewOpener(nil) accepted")
	}
	if _, err := crypto.NewSealer(&short.PublicKey, ""); !errors.Is(err, crypto.ErrKeyTooShort) {
		t.Errorf("NewSealer(1024 bits) err = %v, want ErrKeyTooShort", err)
	}
	if _, err := crypto.NewOpener(short, ""); !errors.Is(err, crypto.ErrKeyTooShort) {
		t.Errorf("NewOpener(1024 bits) err = %v, want ErrKeyTooShort", err)
	}
	if _, err := crypto.NewSealer(&k.PublicKey, "oaep-md5"); !errors.Is(err, crypto.ErrUnknownPadding) {
		t.Errorf("NewSealer(bad padding) err = %v", err)
	}
	if _, err := crypto.NewOpener(k, "rot13"); !errors.Is(err, crypto.ErrUnknownPadding) {
		t.Errorf("NewOpener(bad padding) err = %v", err)
	}
}

// keyTexts are the decimal and hex digits of a key's secret and public
// numbers, as any dump of the key would show them.
func keyTexts(k *rsa.PrivateKey) []string {
	var out []string
	for _, n := range []*big.Int{k.N, k.D, k.Primes[0], k.Primes[1]} {
		out = append(out, n.String()[:24], n.Text(16)[:24], fmt.Sprintf("%x", n.Bytes()[:12]))
	}
	return out
}

func TestNoKeyInFormatting(t *testing.T) {
	k := mustKey(t, testKey)
	s, o := mustSealer(t, k, crypto.OAEPSHA256), mustOpener(t, k, crypto.OAEPSHA256)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("keys", "sealer", s, "opener", o)
	var dumps []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
		dumps = append(dumps, fmt.Sprintf(verb, s), fmt.Sprintf(verb, o),
			fmt.Sprintf(verb, struct{ S *crypto.Sealer }{s}), fmt.Sprintf(verb, []*crypto.Opener{o}))
	}
	dumps = append(dumps, logs.String())
	for _, d := range dumps {
		for _, secret := range keyTexts(k) {
			if strings.Contains(strings.ToLower(d), strings.ToLower(secret)) {
				t.Fatalf("formatted output shows key material: %s", d)
			}
		}
	}
	if got := fmt.Sprintf("%v", o); !strings.Contains(got, "rsa-2048") || !strings.Contains(got, "oaep-sha256") {
		t.Errorf("Opener prints %q, want its size and padding", got)
	}
}

func TestConcurrentSealOpen(t *testing.T) {
	k := mustKey(t, testKey)
	s, o := mustSealer(t, k, ""), mustOpener(t, k, "")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			for j := range 5 {
				want := fmt.Sprintf("9665%08d", i*100+j)
				sealed, err := s.Seal(want)
				if err != nil {
					errs <- err
					return
				}
				got, err := o.Open(sealed)
				if err != nil || got != want {
					errs <- fmt.Errorf("Open = %q, %v; want %q", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// pemOf encodes der as a PEM block of type typ.
func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func selfSignedCert(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "payout provider"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadRSAPublicKey(t *testing.T) {
	k, short := mustKey(t, testKey), mustKey(t, shortKey)
	pkix, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(&k.PublicKey)
	shortPKIX, _ := x509.MarshalPKIXPublicKey(&short.PublicKey)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPKIX, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	marshalled, err := crypto.MarshalRSAPublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	wrap := func(s string) string { // 64 columns, as in a PEM body
		var b strings.Builder
		for i := 0; i < len(s); i += 64 {
			b.WriteString(s[i:min(i+64, len(s))] + "\n")
		}
		return b.String()
	}
	t.Run("OK", func(t *testing.T) {
		for name, text := range map[string][]byte{
			"PKIX":          pemOf("PUBLIC KEY", pkix),
			"PKCS1":         pemOf("RSA PUBLIC KEY", pkcs1),
			"Marshalled":    marshalled,
			"CRLF":          bytes.ReplaceAll(pemOf("PUBLIC KEY", pkix), []byte("\n"), []byte("\r\n")),
			"WithPreamble":  append([]byte("Provider key for merchant 1234:\n"), pemOf("PUBLIC KEY", pkix)...),
			"Certificate":   pemOf("CERTIFICATE", selfSignedCert(t, k)),
			"BarePKIX":      []byte(b64(pkix)),
			"BarePKIXLines": []byte(wrap(b64(pkix))),
			"BarePKCS1":     []byte(b64(pkcs1) + "\n"),
			"BareUnpadded":  []byte(strings.TrimRight(b64(pkix), "=")),
		} {
			pub, err := crypto.LoadRSAPublicKey(text)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !pub.Equal(&k.PublicKey) {
				t.Errorf("%s: loaded a different key", name)
			}
		}
	})
	for _, tc := range []struct {
		name string
		text []byte
		want error
	}{
		{"Empty", nil, crypto.ErrNotPEM},
		{"Text", []byte("this is not a key!"), crypto.ErrNotPEM},
		{"BrokenPEM", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n"), crypto.ErrNotPEM},
		{"PrivateKey", pemOf("PRIVATE KEY", pkcs8), crypto.ErrKeyBlockType},
		{"PKCS1Private", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)), crypto.ErrKeyBlockType},
		{"OtherBlock", pemOf("X509 CRL", []byte{1, 2, 3}), crypto.ErrKeyBlockType},
		{"EC", pemOf("PUBLIC KEY", ecPKIX), crypto.ErrNotRSA},
		{"BareEC", []byte(b64(ecPKIX)), crypto.ErrNotRSA},
		{"Short", pemOf("PUBLIC KEY", shortPKIX), crypto.ErrKeyTooShort},
		{"BareShort", []byte(b64(shortPKIX)), crypto.ErrKeyTooShort},
		{"GarbageDER", pemOf("PUBLIC KEY", []byte("not der at all")), crypto.ErrKeyMalformed},
		{"GarbagePKCS1", pemOf("RSA PUBLIC KEY", pkix), crypto.ErrKeyMalformed},
		{"BareGarbage", []byte(b64([]byte("not der at all"))), crypto.ErrKeyMalformed},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			_, err := crypto.LoadRSAPublicKey(tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLoadRSAPrivateKey(t *testing.T) {
	k, short := mustKey(t, testKey), mustKey(t, shortKey)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(k)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec8, _ := x509.MarshalPKCS8PrivateKey(ec)
	short8, _ := x509.MarshalPKCS8PrivateKey(short)
	pkix, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	marshalled, err := crypto.MarshalRSAPrivateKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	t.Run("OK", func(t *testing.T) {
		for name, text := range map[string][]byte{
			"PKCS8":      pemOf("PRIVATE KEY", pkcs8),
			"PKCS1":      pemOf("RSA PRIVATE KEY", pkcs1),
			"Marshalled": marshalled,
			"BarePKCS8":  []byte(b64(pkcs8)),
			"BarePKCS1":  []byte(b64(pkcs1)),
		} {
			priv, err := crypto.LoadRSAPrivateKey(text)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if !priv.Equal(k) {
				t.Errorf("%s: loaded a different key", name)
			}
		}
	})
	legacy := &pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{
		"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF",
	}, Bytes: pkcs1[:200]}
	for _, tc := range []struct {
		name string
		text []byte
		want error
	}{
		{"Empty", []byte("\n"), crypto.ErrNotPEM},
		{"Text", []byte("hunter2 is my password!"), crypto.ErrNotPEM},
		{"EncryptedPKCS8", pemOf("ENCRYPTED PRIVATE KEY", pkcs8[:300]), crypto.ErrKeyEncrypted},
		{"EncryptedLegacy", pem.EncodeToMemory(legacy), crypto.ErrKeyEncrypted},
		{"PublicKey", pemOf("PUBLIC KEY", pkix), crypto.ErrKeyBlockType},
		{"ECBlock", pemOf("EC PRIVATE KEY", []byte{1}), crypto.ErrKeyBlockType},
		{"EC", pemOf("PRIVATE KEY", ec8), crypto.ErrNotRSA},
		{"BareEC", []byte(b64(ec8)), crypto.ErrNotRSA},
		{"Short", pemOf("PRIVATE KEY", short8), crypto.ErrKeyTooShort},
		{"ShortPKCS1", pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(short)), crypto.ErrKeyTooShort},
		{"Truncated", pemOf("RSA PRIVATE KEY", pkcs1[:len(pkcs1)-40]), crypto.ErrKeyMalformed},
		{"WrongFormat", pemOf("RSA PRIVATE KEY", pkcs8), crypto.ErrKeyMalformed},
		{"BareTruncated", []byte(b64(pkcs8[:len(pkcs8)-40])), crypto.ErrKeyMalformed},
	} {
		t.Run("Err"+tc.name, func(t *testing.T) {
			_, err := crypto.LoadRSAPrivateKey(tc.text)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			for _, secret := range keyTexts(k) {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error shows key material: %v", err)
				}
			}
		})
	}
}

func TestLoadRSAKeyFiles(t *testing.T) {
	k := mustKey(t, testKey)
	dir := t.TempDir()
	pubPEM, _ := crypto.MarshalRSAPublicKeyPEM(&k.PublicKey)
	privPEM, _ := crypto.MarshalRSAPrivateKeyPEM(k)
	pubPath, privPath := filepath.Join(dir, "provider.pub.pem"), filepath.Join(dir, "merchant.key.pem")
	if err := os.WriteFile(pubPath, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(privPath, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := crypto.LoadRSAPublicKeyFile(pubPath)
	if err != nil || !pub.Equal(&k.PublicKey) {
		t.Fatalf("LoadRSAPublicKeyFile = %v, %v", pub != nil, err)
	}
	priv, err := crypto.LoadRSAPrivateKeyFile(privPath)
	if err != nil || !priv.Equal(k) {
		t.Fatalf("LoadRSAPrivateKeyFile = %v, %v", priv != nil, err)
	}
	// The private key given where the public one belongs: the error names
	// the file and the mistake.
	_, err = crypto.LoadRSAPublicKeyFile(privPath)
	if !errors.Is(err, crypto.ErrKeyBlockType) || !strings.Contains(err.Error(), "merchant.key.pem") {
		t.Errorf("public loader on a private key file: %v", err)
	}
	if _, err := crypto.LoadRSAPublicKeyFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing public key file: %v", err)
	}
	if _, err := crypto.LoadRSAPrivateKeyFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing private key file: %v", err)
	}
}

// openErrorForms are every error text Open may return, digits replaced by
// '#': anything else would mean the input leaked into the message.
var openErrorForms = regexp.MustCompile(`^rsa open: (` +
	`sealed value is not base64 \((empty|bad padding|invalid input at byte #)\)|` +
	`sealed value is not base64|` +
	`sealed value has the wrong length for the key \(# bytes, want # for a #-bit key\)|` +
	`decryption failed \(wrong key or padding, or damaged ciphertext\))$`)

func FuzzRSAOpen(f *testing.F) {
	k := mustKey(f, testKey)
	s, o := mustSealer(f, k, ""), mustOpener(f, k, "")
	valid, err := s.Seal("محمد 1012345678")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(strings.TrimRight(valid, "="))
	f.Add(valid[:200] + "\r\n" + valid[200:])
	// More seeds in testdata/fuzz/FuzzRSAOpen.
	digits := regexp.MustCompile(`\b[0-9]+\b`)
	f.Fuzz(func(t *testing.T, in string) {
		plain, err := o.Open(in)
		if err != nil {
			if plain != "" {
				t.Fatalf("Open returned %q with error %v", plain, err)
			}
			if !errors.Is(err, crypto.ErrSealedNotBase64) && !errors.Is(err, crypto.ErrSealedLength) && !errors.Is(err, crypto.ErrOpenFailed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if msg := digits.ReplaceAllString(err.Error(), "#"); !openErrorForms.MatchString(msg) {
				t.Fatalf("error text of an unexpected form (input leak?): %q", err)
			}
			return
		}
		// Whatever opened must seal and open again to the same text.
		again, err := s.Seal(plain)
		if err != nil {
			t.Fatalf("re-Seal of an opened value: %v", err)
		}
		if back, err := o.Open(again); err != nil || back != plain {
			t.Fatalf("round trip of an opened value = %q, %v", back, err)
		}
	})
}

func BenchmarkRSASeal(b *testing.B) {
	k := mustKey(b, testKey)
	for _, p := range []crypto.RSAPadding{crypto.PKCS1v15, crypto.OAEPSHA256} {
		s := mustSealer(b, k, p)
		b.Run(string(p), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Seal("4111111111111111"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRSAOpen(b *testing.B) {
	k := mustKey(b, testKey)
	for _, p := range []crypto.RSAPadding{crypto.PKCS1v15, crypto.OAEPSHA256} {
		s, o := mustSealer(b, k, p), mustOpener(b, k, p)
		sealed, err := s.Seal("4111111111111111")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(p), func(b *testing.B) {
			for b.Loop() {
				if _, err := o.Open(sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
