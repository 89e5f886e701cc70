package keys

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// SecretsKeySize is the length of AUTHD_SECRETS_KEY in bytes (AES-256).
const SecretsKeySize = 32

// rsaBits is the RSA modulus size: the minimum RFC 7518 allows for RS256 and
// fast enough to generate during start-up.
const rsaBits = 2048

// sealFormat prefixes every sealed key, so a later change of cipher or of
// AUTHD_SECRETS_KEY handling can tell old rows from new ones.
const sealFormat byte = 0x01

// ErrDecrypt means a stored private key could not be decrypted or parsed:
// AUTHD_SECRETS_KEY differs from the one that encrypted it, or the row was
// altered.
var ErrDecrypt = errors.New("keys: cannot decrypt signing key with AUTHD_SECRETS_KEY (wrong key, or the row was altered)")

// generate creates a private key for alg.
func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	default:
		return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
}

// checkAlg verifies that key is the kind of key alg signs with, so a row
// whose alg column was edited cannot make us sign with the wrong algorithm.
func checkAlg(alg string, key crypto.Signer) error {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg == ES256 && k.Curve == elliptic.P256() {
			return nil
		}
	case *rsa.PrivateKey:
		if alg == RS256 && k.N.BitLen() >= rsaBits {
			return nil
		}
	}
	return fmt.Errorf("keys: stored key of type %T does not match algorithm %q", key, alg)
}

// thumbprint returns the RFC 7638 JWK thumbprint of pub, base64url-encoded:
// the kid, so a kid names exactly one public key.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// sealer encrypts private keys at rest with AES-256-GCM under
// AUTHD_SECRETS_KEY. The kid is the additional data, so a ciphertext copied
// onto another row does not decrypt.
type sealer struct{ aead cipher.AEAD }

func newSealer(secretsKey []byte) (*sealer, error) {
	if len(secretsKey) != SecretsKeySize {
		return nil, fmt.Errorf("keys: AUTHD_SECRETS_KEY must be %d bytes, got %d", SecretsKeySize, len(secretsKey))
	}
	block, err := aes.NewCipher(secretsKey)
	if err != nil {
		return nil, fmt.Errorf("keys: AUTHD_SECRETS_KEY: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: AUTHD_SECRETS_KEY: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal returns sealFormat || nonce || AES-GCM(PKCS#8 DER of key).
func (s *sealer) seal(kid string, key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("keys: encode private key: %w", err)
	}
	defer clear(der)
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(der)+s.aead.Overhead())
	out[0] = sealFormat
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], der, []byte(kid)), nil
}

// open reverses seal. Every failure wraps ErrDecrypt: to an operator they all
// mean the same thing.
func (s *sealer) open(kid string, sealed []byte) (crypto.Signer, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealFormat {
		return nil, fmt.Errorf("%w: kid %s: unknown format", ErrDecrypt, kid)
	}
	der, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("%w: kid %s", ErrDecrypt, kid)
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: kid %s: parse private key: %v", ErrDecrypt, kid, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: kid %s: %T is not a signing key", ErrDecrypt, kid, parsed)
	}
	// The kid is the thumbprint; checking it catches a row whose kid was
	// rewritten together with a re-encrypted key.
	got, err := thumbprint(key.Public())
	if err != nil {
		return nil, err
	}
	if got != kid {
		return nil, fmt.Errorf("%w: kid %s: key thumbprint is %s", ErrDecrypt, kid, got)
	}
	return key, nil
}
