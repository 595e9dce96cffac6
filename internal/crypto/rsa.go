package crypto

// RSA sealing for the payout provider (hesabe-api.md §7): sensitive fields
// travel encrypted with the provider's RSA public key, base64, and come back
// encrypted with the merchant's public key.
//
// A Sealer encrypts with a public key, an Opener decrypts with a private
// key. Both are immutable after construction and safe for concurrent use.
// Neither error strings nor any formatting of a Sealer or Opener (%v, %#v,
// %+v, slog) ever shows plaintext or key material: errors say what is wrong
// with the input (its length, its encoding) and nothing about its content.

import (
	gocrypto "crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // registers SHA-1 for the OAEP-SHA1 paddings
	_ "crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"
)

// MinRSABits is the smallest RSA modulus the loaders and constructors
// accept.
const MinRSABits = 2048

// RSAPadding is the RSA encryption padding scheme agreed with a provider.
// The zero value means PKCS1v15.
type RSAPadding string

// The supported paddings. Their string values are configuration values.
const (
	// PKCS1v15 is RSAES-PKCS1-v1_5 ("RSA/ECB/PKCS1Padding" in Java), what
	// payment providers' sample code usually does. It is the default: the
	// provider's reference names no padding, and every provider SDK
	// accepts this one. Go deprecates it for new designs because of
	// padding oracles, so Opener never tells why a decryption failed.
	PKCS1v15 RSAPadding = "pkcs1v15"
	// OAEPSHA256 is RSAES-OAEP with SHA-256 for the label hash and MGF1,
	// empty label.
	OAEPSHA256 RSAPadding = "oaep-sha256"
	// OAEPSHA1 is RSAES-OAEP with SHA-1 for both hashes, empty label
	// (Java's "RSA/ECB/OAEPWithSHA-1AndMGF1Padding").
	OAEPSHA1 RSAPadding = "oaep-sha1"
	// OAEPSHA256MGF1SHA1 is RSAES-OAEP with SHA-256 as the label hash but
	// SHA-1 for MGF1: what Java's "RSA/ECB/OAEPWithSHA-256AndMGF1Padding"
	// produces by default, a common interoperability trap.
	OAEPSHA256MGF1SHA1 RSAPadding = "oaep-sha256-mgf1-sha1"
)

// RSAPaddings lists the supported paddings, for help texts.
var RSAPaddings = []RSAPadding{PKCS1v15, OAEPSHA256, OAEPSHA1, OAEPSHA256MGF1SHA1}

// paddingSpec says how a padding encrypts: OAEP hashes (zero for PKCS#1 v1.5).
type paddingSpec struct {
	hash, mgf gocrypto.Hash
}

var paddingSpecs = map[RSAPadding]paddingSpec{
	PKCS1v15:           {},
	OAEPSHA256:         {hash: gocrypto.SHA256, mgf: gocrypto.SHA256},
	OAEPSHA1:           {hash: gocrypto.SHA1, mgf: gocrypto.SHA1},
	OAEPSHA256MGF1SHA1: {hash: gocrypto.SHA256, mgf: gocrypto.SHA1},
}

// ErrUnknownPadding is returned for a padding name we do not support.
var ErrUnknownPadding = errors.New("rsa: unknown padding")

// ParseRSAPadding reads a padding name, case-insensitively. "" means
// PKCS1v15; "pkcs1", "pkcs1-v1_5" and "oaep" (= OAEPSHA256) are accepted
// as aliases.
func ParseRSAPadding(s string) (RSAPadding, error) {
	switch n := strings.ToLower(strings.TrimSpace(s)); n {
	case "", "pkcs1", "pkcs1v15", "pkcs1-v1_5", "pkcs1v1.5":
		return PKCS1v15, nil
	case "oaep":
		return OAEPSHA256, nil
	default:
		if _, ok := paddingSpecs[RSAPadding(n)]; ok {
			return RSAPadding(n), nil
		}
	}
	return "", fmt.Errorf("%w %q (want one of %v)", ErrUnknownPadding, s, RSAPaddings)
}

// normalize maps the zero value to PKCS1v15 and checks the padding is known.
func (p RSAPadding) normalize() (RSAPadding, paddingSpec, error) {
	if p == "" {
		p = PKCS1v15
	}
	spec, ok := paddingSpecs[p]
	if !ok {
		return "", paddingSpec{}, fmt.Errorf("%w %q (want one of %v)", ErrUnknownPadding, string(p), RSAPaddings)
	}
	return p, spec, nil
}

// String returns the configuration name; the zero value prints as pkcs1v15.
func (p RSAPadding) String() string {
	if p == "" {
		return string(PKCS1v15)
	}
	return string(p)
}

// MaxPlaintext is the longest plaintext, in bytes, that padding p can seal
// under a key of keyBytes bytes (256 for RSA-2048): k-11 for PKCS#1 v1.5,
// k-2·hLen-2 for OAEP. It is negative or zero for a key too small.
func (p RSAPadding) MaxPlaintext(keyBytes int) int {
	_, spec, err := p.normalize()
	if err != nil {
		return 0
	}
	if spec.hash == 0 {
		return keyBytes - 11
	}
	return keyBytes - 2*spec.hash.Size() - 2
}

// Errors of sealing and opening. Callers tell them apart with errors.Is.
var (
	// ErrPlaintextTooLong: the plaintext does not fit the key and padding.
	ErrPlaintextTooLong = errors.New("rsa seal: plaintext too long for the key and padding")
	// ErrSealedNotBase64: the sealed text is not base64.
	ErrSealedNotBase64 = errors.New("rsa open: sealed value is not base64")
	// ErrSealedLength: the decoded ciphertext is not exactly the key's size.
	ErrSealedLength = errors.New("rsa open: sealed value has the wrong length for the key")
	// ErrOpenFailed: the ciphertext does not decrypt under this key and
	// padding. Deliberately says no more (no padding-oracle detail).
	ErrOpenFailed = errors.New("rsa open: decryption failed (wrong key or padding, or damaged ciphertext)")
)

// Sealer encrypts short values with a provider's RSA public key. It is safe
// for concurrent use. Create it with NewSealer.
type Sealer struct {
	pub     *rsa.PublicKey
	padding RSAPadding
	spec    paddingSpec
}

// NewSealer returns a sealer for pub (at least MinRSABits) and padding
// ("" means PKCS1v15).
func NewSealer(pub *rsa.PublicKey, padding RSAPadding) (*Sealer, error) {
	if pub == nil {
		return nil, errors.New("rsa sealer: no public key")
	}
	if err := checkBits(pub.N.BitLen()); err != nil {
		return nil, fmt.Errorf("rsa sealer: %w", err)
	}
	p, spec, err := padding.normalize()
	if err != nil {
		return nil, fmt.Errorf("rsa sealer: %w", err)
	}
	return &Sealer{pub: pub, padding: p, spec: spec}, nil
}

// Padding returns the sealer's padding.
func (s *Sealer) Padding() RSAPadding { return s.padding }

// KeyBits is the size of the public key's modulus.
func (s *Sealer) KeyBits() int { return s.pub.N.BitLen() }

// MaxPlaintext is the longest plaintext in bytes Seal accepts.
func (s *Sealer) MaxPlaintext() int { return s.padding.MaxPlaintext(s.pub.Size()) }

// SealedLen is the length of every base64 string Seal returns (344 for a
// 2048-bit key).
func (s *Sealer) SealedLen() int { return base64.StdEncoding.EncodedLen(s.pub.Size()) }

// Seal encrypts plaintext's UTF-8 bytes and returns standard, padded
// base64. The result differs on every call (the padding is randomized).
func (s *Sealer) Seal(plaintext string) (string, error) {
	if n, max := len(plaintext), s.MaxPlaintext(); n > max {
		return "", fmt.Errorf("%w (%d bytes, at most %d with %s and a %d-bit key)", ErrPlaintextTooLong, n, max, s.padding, s.KeyBits())
	}
	var (
		ct  []byte
		err error
	)
	if s.spec.hash == 0 {
		// The provider's scheme; see PKCS1v15.
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, s.pub, []byte(plaintext)) //nolint:staticcheck // SA1019: the provider requires it
	} else {
		ct, err = rsa.EncryptOAEPWithOptions(rand.Reader, s.pub, []byte(plaintext),
			&rsa.OAEPOptions{Hash: s.spec.hash, MGFHash: s.spec.mgf})
	}
	if err != nil {
		if errors.Is(err, rsa.ErrMessageTooLong) {
			return "", fmt.Errorf("%w (%d bytes)", ErrPlaintextTooLong, len(plaintext))
		}
		return "", fmt.Errorf("rsa seal: %w", err)
	}
	return base64.StdEncoding.EncodeToString(ct), nil
}

// String never shows the key.
func (s *Sealer) String() string {
	if s == nil || s.pub == nil {
		return "crypto.Sealer{}"
	}
	return fmt.Sprintf("crypto.Sealer{rsa-%d, %s}", s.KeyBits(), s.padding)
}

// GoString is String, for %#v.
func (s *Sealer) GoString() string { return s.String() }

// Format makes every verb (%v, %+v, %#v, %x, %d...) print String.
func (s *Sealer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue keeps the key out of structured logs.
func (s *Sealer) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Opener decrypts values sealed with the merchant's RSA public key, using
// the merchant's private key. It is safe for concurrent use. Create it with
// NewOpener.
type Opener struct {
	priv    *rsa.PrivateKey
	padding RSAPadding
	spec    paddingSpec
}

// NewOpener returns an opener for priv (at least MinRSABits) and padding
// ("" means PKCS1v15).
func NewOpener(priv *rsa.PrivateKey, padding RSAPadding) (*Opener, error) {
	if priv == nil {
		return nil, errors.New("rsa opener: no private key")
	}
	if err := checkBits(priv.N.BitLen()); err != nil {
		return nil, fmt.Errorf("rsa opener: %w", err)
	}
	p, spec, err := padding.normalize()
	if err != nil {
		return nil, fmt.Errorf("rsa opener: %w", err)
	}
	if err := priv.Validate(); err != nil {
		return nil, errors.New("rsa opener: the private key is inconsistent")
	}
	return &Opener{priv: priv, padding: p, spec: spec}, nil
}

// Padding returns the opener's padding.
func (o *Opener) Padding() RSAPadding { return o.padding }

// KeyBits is the size of the private key's modulus.
func (o *Opener) KeyBits() int { return o.priv.N.BitLen() }

// PublicKey returns the public half of the opener's key (what the merchant
// gives the provider).
func (o *Opener) PublicKey() *rsa.PublicKey { return &o.priv.PublicKey }

// Open decodes base64 and decrypts it. It accepts standard or URL-safe
// base64, padded or not, and ignores line breaks and spaces (Java's MIME
// encoder wraps at 76 characters).
func (o *Opener) Open(sealed string) (string, error) {
	ct, err := decodeSealed(sealed)
	if err != nil {
		return "", err
	}
	if k := o.priv.Size(); len(ct) != k {
		return "", fmt.Errorf("%w (%d bytes, want %d for a %d-bit key)", ErrSealedLength, len(ct), k, o.KeyBits())
	}
	var plain []byte
	if o.spec.hash == 0 {
		plain, err = rsa.DecryptPKCS1v15(nil, o.priv, ct) //nolint:staticcheck // SA1019: the provider requires it
	} else {
		plain, err = o.priv.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: o.spec.hash, MGFHash: o.spec.mgf})
	}
	if err != nil || !utf8.Valid(plain) {
		// Whatever went wrong inside, say only that it failed. A sealed
		// field is text: with PKCS#1 v1.5 padding about one block in
		// 100,000 that was not sealed with this key and padding passes
		// the padding check, and yields bytes that are not UTF-8 (what
		// the text holds is the caller's to check).
		return "", ErrOpenFailed
	}
	return string(plain), nil
}

// decodeSealed reads lenient base64: whitespace dropped, either alphabet,
// padding optional.
func decodeSealed(s string) ([]byte, error) {
	if strings.ContainsAny(s, " \t\r\n") {
		s = strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, s)
	}
	if s == "" {
		return nil, fmt.Errorf("%w (empty)", ErrSealedNotBase64)
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	trimmed := strings.TrimRight(s, "=")
	if pad := len(s) - len(trimmed); pad > 2 || (pad > 0 && len(s)%4 != 0) {
		return nil, fmt.Errorf("%w (bad padding)", ErrSealedNotBase64)
	}
	ct, err := enc.Strict().DecodeString(trimmed)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			// The offset is safe to show; the character might be part of
			// a secret-bearing value, so it is not.
			return nil, fmt.Errorf("%w (invalid input at byte %d)", ErrSealedNotBase64, int64(ce))
		}
		return nil, ErrSealedNotBase64
	}
	return ct, nil
}

// String never shows the key.
func (o *Opener) String() string {
	if o == nil || o.priv == nil {
		return "crypto.Opener{}"
	}
	return fmt.Sprintf("crypto.Opener{rsa-%d, %s, private key redacted}", o.KeyBits(), o.padding)
}

// GoString is String, for %#v.
func (o *Opener) GoString() string { return o.String() }

// Format makes every verb (%v, %+v, %#v, %x, %d...) print String.
func (o *Opener) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(o.String())) }

// LogValue keeps the key out of structured logs.
func (o *Opener) LogValue() slog.Value { return slog.StringValue(o.String()) }

func checkBits(bits int) error {
	if bits < MinRSABits {
		return fmt.Errorf("%w (%d bits, need at least %d)", ErrKeyTooShort, bits, MinRSABits)
	}
	return nil
}
