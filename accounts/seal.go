package accounts

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// LinkSealer encrypts the action links (which carry live verification and
// reset tokens) of queued mail, so the outbox never holds a usable token in
// clear: tokens are stored hashed everywhere else, and mail may sit queued
// for hours while SMTP is down. authd derives its key from AUTHD_SECRETS_KEY.
// The same sealer, under keys derived for their own purpose, seals the
// upstream identity providers' client secrets and the upstream login
// cookies (federation); the associated data binds each value to its place.
type LinkSealer struct{ aead cipher.AEAD }

// NewLinkSealer returns a sealer for a 32-byte key.
func NewLinkSealer(key []byte) (*LinkSealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("accounts: link key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &LinkSealer{aead: aead}, nil
}

// sealAD binds a sealed link to its recipient, so it cannot be moved to
// another row's mail.
func sealAD(to string) []byte { return []byte("authd outbox link\x00" + to) }

// Seal encrypts link for recipient to.
func (s *LinkSealer) Seal(link, to string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(link), sealAD(to)))
}

// Open decrypts what Seal produced.
func (s *LinkSealer) Open(sealed, to string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("accounts: sealed link malformed")
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], sealAD(to))
	if err != nil {
		return "", errors.New("accounts: sealed link does not decrypt (AUTHD_SECRETS_KEY changed?)")
	}
	return string(pt), nil
}

// secretAD binds a sealed stored secret to its purpose and owner, so it
// cannot be moved to another user's row or read as a link.
func secretAD(purpose, owner string) []byte {
	return []byte("authd stored secret\x00" + purpose + "\x00" + owner)
}

// SealSecret encrypts a secret stored in the database (a TOTP seed) for
// purpose and owner (a user id). The outbox links and these secrets share
// one sealer: the one home of AUTHD_SECRETS_KEY encryption in accounts.
func (s *LinkSealer) SealSecret(purpose, secret, owner string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(secret), secretAD(purpose, owner)))
}

// OpenSecret decrypts what SealSecret produced.
func (s *LinkSealer) OpenSecret(purpose, sealed, owner string) (string, error) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errors.New("accounts: sealed secret malformed")
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, b[:n], b[n:], secretAD(purpose, owner))
	if err != nil {
		return "", errors.New("accounts: sealed secret does not decrypt (AUTHD_SECRETS_KEY changed?)")
	}
	return string(pt), nil
}
