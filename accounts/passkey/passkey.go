// Package passkey runs the WebAuthn ceremonies of authd's passkeys on
// go-webauthn/webauthn: registration from the account pages, passwordless
// login (a discoverable credential with user verification) and the passkey
// as a second factor after the password.
//
// Every ceremony has two steps. Begin* stores the challenge server-side
// (accounts' webauthn_ceremonies) and returns the browser's options and a
// token for a short-lived cookie; Finish* takes the stored ceremony (once:
// a second response to the same challenge finds nothing) and checks the
// browser's response against it. The relying party ID and origin come from
// the issuer, so there is nothing to configure.
package passkey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/authd/authd/accounts"
)

// Errors of the ceremonies.
var (
	// ErrUnavailable means the issuer cannot be a WebAuthn relying party
	// (an IP address host), so passkeys are off.
	ErrUnavailable = errors.New("passkey: the issuer's host cannot be a WebAuthn relying party ID")
	// ErrRejected means the browser's response did not verify: wrong
	// challenge, origin, signature, user, or an unknown credential.
	ErrRejected = errors.New("passkey: response rejected")
	// ErrNotPasswordless means the passkey is not allowed to log in alone.
	ErrNotPasswordless = errors.New("passkey: passkey not enabled for passwordless login")
	// ErrCloned means the authenticator's signature counter did not move
	// forward: the credential may have been copied. The login is refused
	// and the passkey is flagged.
	ErrCloned = errors.New("passkey: signature counter went backwards")
	// ErrNoPasskeys means the user has no passkey to assert with.
	ErrNoPasskeys = errors.New("passkey: user has no passkeys")
)

// Store is what the ceremonies need of the accounts (*accounts.Service).
type Store interface {
	PasskeyHandle(ctx context.Context, userID string) ([]byte, error)
	UserByPasskeyHandle(ctx context.Context, handle []byte) (*accounts.User, error)
	Passkeys(ctx context.Context, userID, rpID string) ([]accounts.Passkey, error)
	AddPasskey(ctx context.Context, p accounts.Passkey) (*accounts.Passkey, error)
	RecordPasskeyUse(ctx context.Context, id string, use accounts.PasskeyUse) error
	FlagPasskeyClone(ctx context.Context, id string) error
	StartCeremony(ctx context.Context, c accounts.Ceremony) (string, error)
	TakeCeremony(ctx context.Context, kind, token string) (*accounts.Ceremony, error)
}

var _ Store = (*accounts.Service)(nil)

// Config configures the ceremonies.
type Config struct {
	// Issuer is authd's public URL: its host is the RP ID and its origin
	// the only origin allowed.
	Issuer string
	// RPName is shown by some authenticators; default "authd".
	RPName string
	// Timeout is how long the user has to answer the browser's prompt;
	// default 5 minutes.
	Timeout time.Duration
}

// Service runs the ceremonies. Create it with New.
type Service struct {
	wa      *webauthn.WebAuthn
	store   Store
	rpID    string
	timeout time.Duration
}

// RelyingParty derives the WebAuthn RP ID (the issuer's host, without
// port) and origin (scheme://host[:port]) from the issuer. It returns
// ErrUnavailable for an IP address host, which WebAuthn does not allow.
func RelyingParty(issuer string) (rpID, origin string, err error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", "", fmt.Errorf("passkey: issuer %q is not an http(s) URL", issuer)
	}
	host := strings.ToLower(u.Hostname())
	if net.ParseIP(host) != nil {
		return "", "", ErrUnavailable
	}
	return host, u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// New configures the ceremonies for cfg.Issuer. It returns ErrUnavailable
// when the issuer's host is an IP address.
func New(cfg Config, store Store) (*Service, error) {
	rpID, origin, err := RelyingParty(cfg.Issuer)
	if err != nil {
		return nil, err
	}
	if cfg.RPName == "" {
		cfg.RPName = "authd"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	to := webauthn.TimeoutConfig{Enforce: true, Timeout: cfg.Timeout, TimeoutUVD: cfg.Timeout}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: cfg.RPName,
		RPOrigins:     []string{origin},
		// No attestation: authd accepts any authenticator, so asking for a
		// statement would only add a privacy prompt.
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts:              webauthn.TimeoutsConfig{Login: to, Registration: to},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Service{wa: wa, store: store, rpID: rpID, timeout: cfg.Timeout}, nil
}

// RPID is the relying party ID the passkeys are registered for.
func (s *Service) RPID() string { return s.rpID }

// Options is a begun ceremony: JSON for the browser (the argument of
// navigator.credentials.create or .get, {"publicKey": …}) and the token
// naming the server-side state, for a cookie that lives until ExpiresAt.
type Options struct {
	JSON      json.RawMessage
	Token     string
	ExpiresAt time.Time
}

// user adapts an account and its passkeys to webauthn.User.
type user struct {
	u      *accounts.User
	handle []byte
	keys   []accounts.Passkey
}

func (w *user) WebAuthnID() []byte          { return w.handle }
func (w *user) WebAuthnName() string        { return w.u.Email }
func (w *user) WebAuthnDisplayName() string { return displayName(w.u) }
func (w *user) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(w.keys))
	for i := range w.keys {
		out = append(out, credential(&w.keys[i]))
	}
	return out
}

// passkey returns the stored passkey with credential id id.
func (w *user) passkey(id []byte) *accounts.Passkey {
	for i := range w.keys {
		if bytes.Equal(w.keys[i].CredentialID, id) {
			return &w.keys[i]
		}
	}
	return nil
}

func displayName(u *accounts.User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

// credential is the library's record of a stored passkey.
func credential(p *accounts.Passkey) webauthn.Credential {
	c := webauthn.Credential{
		ID:                p.CredentialID,
		PublicKey:         p.PublicKey,
		AttestationType:   p.AttestationType,
		AttestationFormat: p.AttestationFormat,
		Flags:             webauthn.NewCredentialFlags(protocol.AuthenticatorFlags(p.Flags)),
		Authenticator: webauthn.Authenticator{AAGUID: p.AAGUID, SignCount: p.SignCount, CloneWarning: p.CloneWarning,
			Attachment: protocol.AuthenticatorAttachment(p.Attachment)},
	}
	for _, t := range p.Transports {
		c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
	}
	if len(p.Attestation) > 0 {
		_ = json.Unmarshal(p.Attestation, &c.Attestation)
	}
	if len(p.Extensions) > 0 {
		_ = json.Unmarshal(p.Extensions, &c.Extensions)
	}
	return c
}

func (s *Service) load(ctx context.Context, u *accounts.User) (*user, error) {
	h, err := s.store.PasskeyHandle(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	keys, err := s.store.Passkeys(ctx, u.ID, s.rpID)
	if err != nil {
		return nil, err
	}
	return &user{u: u, handle: h, keys: keys}, nil
}

// begin stores a ceremony's session data and returns the browser's options.
func (s *Service) begin(ctx context.Context, c accounts.Ceremony, opts any, sd *webauthn.SessionData) (*Options, error) {
	kind := c.Kind
	data, err := json.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode %s ceremony: %w", kind, err)
	}
	js, err := json.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("passkey: encode %s options: %w", kind, err)
	}
	exp := sd.Expires
	if exp.IsZero() {
		exp = time.Now().Add(s.timeout)
	}
	c.Data, c.ExpiresAt = data, exp
	token, err := s.store.StartCeremony(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Options{JSON: js, Token: token, ExpiresAt: exp}, nil
}

// take removes the ceremony named by token and decodes its session data.
func (s *Service) take(ctx context.Context, kind, token string) (*accounts.Ceremony, webauthn.SessionData, error) {
	var sd webauthn.SessionData
	c, err := s.store.TakeCeremony(ctx, kind, token)
	if err != nil {
		return nil, sd, err
	}
	if err := json.Unmarshal(c.Data, &sd); err != nil {
		return nil, sd, fmt.Errorf("passkey: decode %s ceremony: %w", kind, err)
	}
	return c, sd, nil
}

// rejected wraps a verification failure of the library as ErrRejected,
// keeping its detail for the log.
func rejected(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %s: %s", ErrRejected, pe.Type, pe.Details)
	}
	return fmt.Errorf("%w: %v", ErrRejected, err)
}
