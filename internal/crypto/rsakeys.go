package crypto

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Errors of the RSA key loaders. Each names what is wrong with the key
// text, never its content.
var (
	// ErrNotPEM: the text is neither a PEM block nor a bare base64 DER key.
	ErrNotPEM = errors.New("rsa key: not PEM (and not a bare base64 DER key)")
	// ErrKeyBlockType: a PEM block of a type that is not the kind of key
	// asked for (e.g. a private key given as the provider's public key).
	ErrKeyBlockType = errors.New("rsa key: wrong PEM block type")
	// ErrNotRSA: a well-formed key of another algorithm (EC, Ed25519).
	ErrNotRSA = errors.New("rsa key: not an RSA key")
	// ErrKeyTooShort: the modulus is shorter than MinRSABits.
	ErrKeyTooShort = errors.New("rsa key: key too short")
	// ErrKeyEncrypted: a password-protected private key; store it
	// decrypted with tight file permissions instead.
	ErrKeyEncrypted = errors.New("rsa key: encrypted (password-protected) private keys are not supported; decrypt it with openssl and protect the file instead")
	// ErrKeyMalformed: the DER inside does not parse as the key it claims.
	ErrKeyMalformed = errors.New("rsa key: malformed key")
)

// Block types the loaders understand.
const (
	pemPublicPKIX   = "PUBLIC KEY"
	pemPublicPKCS1  = "RSA PUBLIC KEY"
	pemPrivatePKCS1 = "RSA PRIVATE KEY"
	pemPrivatePKCS8 = "PRIVATE KEY"
	pemEncrypted    = "ENCRYPTED PRIVATE KEY"
	pemCertificate  = "CERTIFICATE"
)

// LoadRSAPublicKey reads an RSA public key of at least MinRSABits from a
// "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS#1) PEM block, a
// "CERTIFICATE" block (its key), or a bare base64 DER body of either
// kind, which is how providers often hand keys out.
func LoadRSAPublicKey(text []byte) (*rsa.PublicKey, error) {
	der, blockType, err := keyDER(text)
	if err != nil {
		return nil, err
	}
	var pub *rsa.PublicKey
	switch blockType {
	case "": // bare base64: PKIX first, then PKCS#1
		if pub, err = parsePKIXPublic(der); errors.Is(err, ErrKeyMalformed) {
			if k, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
				pub, err = k, nil
			} else {
				err = fmt.Errorf("%w (neither a PKIX nor a PKCS#1 public key)", ErrKeyMalformed)
			}
		}
	case pemPublicPKIX:
		pub, err = parsePKIXPublic(der)
	case pemPublicPKCS1:
		if pub, err = x509.ParsePKCS1PublicKey(der); err != nil {
			err = fmt.Errorf("%w (not a PKCS#1 RSA public key)", ErrKeyMalformed)
		}
	case pemCertificate:
		cert, cerr := x509.ParseCertificate(der)
		if cerr != nil {
			return nil, fmt.Errorf("%w (certificate does not parse: %v)", ErrKeyMalformed, cerr)
		}
		k, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w (certificate key is %T)", ErrNotRSA, cert.PublicKey)
		}
		pub = k
	case pemPrivatePKCS1, pemPrivatePKCS8, pemEncrypted:
		return nil, fmt.Errorf("%w %q: this is a private key; give the public key", ErrKeyBlockType, blockType)
	default:
		return nil, fmt.Errorf("%w %q (want %q or %q)", ErrKeyBlockType, blockType, pemPublicPKIX, pemPublicPKCS1)
	}
	if err != nil {
		return nil, err
	}
	if err := checkBits(pub.N.BitLen()); err != nil {
		return nil, err
	}
	return pub, nil
}

func parsePKIXPublic(der []byte) (*rsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w (not a PKIX public key)", ErrKeyMalformed)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w (got %T)", ErrNotRSA, k)
	}
	return pub, nil
}

// LoadRSAPrivateKey reads an RSA private key of at least MinRSABits from a
// "RSA PRIVATE KEY" (PKCS#1) or "PRIVATE KEY" (PKCS#8) PEM block, or a
// bare base64 DER body of either. Encrypted keys are refused with
// ErrKeyEncrypted. No error ever carries key bytes.
func LoadRSAPrivateKey(text []byte) (*rsa.PrivateKey, error) {
	der, blockType, err := keyDER(text)
	if err != nil {
		return nil, err
	}
	var priv *rsa.PrivateKey
	switch blockType {
	case "": // bare base64: PKCS#8 first, then PKCS#1
		if priv, err = parsePKCS8Private(der); errors.Is(err, ErrKeyMalformed) {
			if k, err2 := x509.ParsePKCS1PrivateKey(der); err2 == nil {
				priv, err = k, nil
			} else {
				err = fmt.Errorf("%w (neither a PKCS#8 nor a PKCS#1 private key)", ErrKeyMalformed)
			}
		}
	case pemPrivatePKCS1:
		// The parser's errors are structural, but a private key's errors
		// are kept to our own words all the same.
		if priv, err = x509.ParsePKCS1PrivateKey(der); err != nil {
			err = fmt.Errorf("%w (not a PKCS#1 RSA private key)", ErrKeyMalformed)
		}
	case pemPrivatePKCS8:
		priv, err = parsePKCS8Private(der)
	case pemEncrypted:
		return nil, ErrKeyEncrypted
	case pemPublicPKIX, pemPublicPKCS1, pemCertificate:
		return nil, fmt.Errorf("%w %q: this is a public key; give the private key", ErrKeyBlockType, blockType)
	default:
		return nil, fmt.Errorf("%w %q (want %q or %q)", ErrKeyBlockType, blockType, pemPrivatePKCS1, pemPrivatePKCS8)
	}
	if err != nil {
		return nil, err
	}
	if err := checkBits(priv.N.BitLen()); err != nil {
		return nil, err
	}
	return priv, nil
}

func parsePKCS8Private(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w (not a PKCS#8 private key)", ErrKeyMalformed)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w (got %T)", ErrNotRSA, k)
	}
	return priv, nil
}

// keyDER returns the DER of the first PEM block in text and its type, or
// for text with no PEM armour, the base64-decoded body and "".
func keyDER(text []byte) ([]byte, string, error) {
	trimmed := bytes.TrimSpace(text)
	if len(trimmed) == 0 {
		return nil, "", fmt.Errorf("%w (empty)", ErrNotPEM)
	}
	if bytes.Contains(trimmed, []byte("-----BEGIN")) {
		block, _ := pem.Decode(trimmed)
		if block == nil {
			return nil, "", fmt.Errorf("%w (a BEGIN line without a well-formed block)", ErrNotPEM)
		}
		if strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, "", ErrKeyEncrypted
		}
		return block.Bytes, block.Type, nil
	}
	body := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, string(trimmed))
	der, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		if der, err = base64.RawStdEncoding.DecodeString(body); err != nil {
			return nil, "", ErrNotPEM
		}
	}
	if len(der) == 0 {
		return nil, "", fmt.Errorf("%w (empty)", ErrNotPEM)
	}
	return der, "", nil
}

// LoadRSAPublicKeyFile is LoadRSAPublicKey on a file's contents.
func LoadRSAPublicKeyFile(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rsa public key: %w", err)
	}
	k, err := LoadRSAPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadRSAPrivateKeyFile is LoadRSAPrivateKey on a file's contents.
func LoadRSAPrivateKeyFile(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rsa private key: %w", err)
	}
	defer clear(b) // the PEM text is not needed once parsed
	k, err := LoadRSAPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// MarshalRSAPublicKeyPEM encodes pub as a "PUBLIC KEY" (PKIX) PEM block,
// the form to hand a provider.
func MarshalRSAPublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("rsa public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicPKIX, Bytes: der}), nil
}

// MarshalRSAPrivateKeyPEM encodes priv as a "PRIVATE KEY" (PKCS#8) PEM
// block. The result is a secret.
func MarshalRSAPrivateKeyPEM(priv *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, errors.New("rsa private key: cannot encode as PKCS#8")
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivatePKCS8, Bytes: der}), nil
}
