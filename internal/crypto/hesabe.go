// Package crypto implements the ciphers posbridge's gateways require: the
// Hesabe AES-256-CBC hex codec (this file), and the RSA sealing of the
// payout provider's sensitive fields (rsa.go: Sealer with the provider's
// public key, Opener with the merchant's private key; PKCS#1 v1.5 by
// default, OAEP by agreement).
//
// Hesabe encrypts the compact JSON of every payload with AES-256-CBC, using
// the merchant's 32-character secret key and 16-character IV key as raw
// bytes (no key derivation), and sends the ciphertext as lowercase hex.
// Requests are padded PKCS#7 to 16-byte blocks; Hesabe's server pads its
// answers to 32-byte blocks, so Decrypt accepts pad counts 1..32.
//
// Keys are secrets: no error or String method here ever shows them.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors returned by the codec. Each says exactly what is wrong with the
// input; callers can tell them apart with errors.Is.
var (
	ErrKeyLength   = errors.New("hesabe crypto: secret key must be 32 bytes")
	ErrIVLength    = errors.New("hesabe crypto: IV key must be 16 bytes")
	ErrEmpty       = errors.New("hesabe crypto: ciphertext is empty")
	ErrNotHex      = errors.New("hesabe crypto: ciphertext is not hex")
	ErrOddLength   = errors.New("hesabe crypto: ciphertext hex has an odd number of digits")
	ErrBlockLength = errors.New("hesabe crypto: ciphertext is not a multiple of the 16-byte block size")
	ErrBadPadding  = errors.New("hesabe crypto: bad padding (wrong key or IV, or damaged ciphertext)")
)

// MaxPad is the largest pad count Decrypt accepts: Hesabe pads answers to
// 32-byte blocks.
const MaxPad = 32

// Codec encrypts and decrypts Hesabe payloads with one merchant's keys.
// It is safe for concurrent use.
type Codec struct {
	block cipher.Block
	iv    [aes.BlockSize]byte
}

// NewCodec returns a codec for a 32-byte secret key and a 16-byte IV key.
func NewCodec(secretKey, ivKey []byte) (*Codec, error) {
	if len(secretKey) != 32 {
		return nil, fmt.Errorf("%w (got %d)", ErrKeyLength, len(secretKey))
	}
	if len(ivKey) != aes.BlockSize {
		return nil, fmt.Errorf("%w (got %d)", ErrIVLength, len(ivKey))
	}
	block, err := aes.NewCipher(secretKey)
	if err != nil {
		return nil, fmt.Errorf("hesabe crypto: %w", err)
	}
	c := &Codec{block: block}
	copy(c.iv[:], ivKey)
	return c, nil
}

// String never shows the keys.
func (c *Codec) String() string { return "crypto.Codec{keys redacted}" }

// GoString never shows the keys, even under %#v.
func (c *Codec) GoString() string { return c.String() }

// Encrypt pads plaintext PKCS#7 to 16-byte blocks, encrypts it and returns
// lowercase hex. This is the request format, byte for byte.
func (c *Codec) Encrypt(plaintext []byte) string {
	return c.EncryptPad(plaintext, aes.BlockSize)
}

// EncryptPad is Encrypt with a chosen pad block size: 16 for requests, 32
// to produce what Hesabe's server sends (the simulator uses it).
func (c *Codec) EncryptPad(plaintext []byte, padBlock int) string {
	if padBlock != 16 && padBlock != 32 {
		panic("hesabe crypto: pad block must be 16 or 32")
	}
	n := padBlock - len(plaintext)%padBlock
	buf := make([]byte, len(plaintext)+n)
	copy(buf, plaintext)
	for i := len(plaintext); i < len(buf); i++ {
		buf[i] = byte(n)
	}
	cipher.NewCBCEncrypter(c.block, c.iv[:]).CryptBlocks(buf, buf)
	return hex.EncodeToString(buf)
}

// Decrypt decodes hex (either case), decrypts it and strips the padding:
// N bytes where N is the last byte, 1 <= N <= 32, all N equal to N.
// Anything else is an error, never a panic or silent garbage.
func (c *Codec) Decrypt(hexText string) ([]byte, error) {
	if len(hexText) == 0 {
		return nil, ErrEmpty
	}
	if len(hexText)%2 != 0 {
		return nil, fmt.Errorf("%w (%d digits)", ErrOddLength, len(hexText))
	}
	buf := make([]byte, len(hexText)/2)
	if _, err := hex.Decode(buf, []byte(hexText)); err != nil {
		var inv hex.InvalidByteError
		if errors.As(err, &inv) {
			return nil, fmt.Errorf("%w (invalid character %q)", ErrNotHex, rune(inv))
		}
		return nil, fmt.Errorf("%w: %v", ErrNotHex, err)
	}
	if len(buf)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w (%d bytes)", ErrBlockLength, len(buf))
	}
	cipher.NewCBCDecrypter(c.block, c.iv[:]).CryptBlocks(buf, buf)
	n := int(buf[len(buf)-1])
	if n < 1 || n > MaxPad || n > len(buf) {
		return nil, ErrBadPadding
	}
	for _, b := range buf[len(buf)-n:] {
		if int(b) != n {
			return nil, ErrBadPadding
		}
	}
	return buf[:len(buf)-n], nil
}

// PadCount returns the padding byte count of a ciphertext, for diagnostics
// and tests. It returns an error exactly when Decrypt would.
func (c *Codec) PadCount(hexText string) (int, error) {
	plain, err := c.Decrypt(hexText)
	if err != nil {
		return 0, err
	}
	return len(hexText)/2 - len(plain), nil
}
