package resource

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Verifier checks authd access tokens. Create it with NewVerifier; it is
// safe for concurrent use and should live as long as the service (it holds
// the key cache).
type Verifier struct {
	cfg   Config
	algs  []jose.SignatureAlgorithm
	keys  *keyCache
	intro *introspector
}

// NewVerifier returns a Verifier for cfg. It does not contact authd: the
// first token (or Prefetch) does. Errors name the invalid Config fields.
func NewVerifier(cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, keys: newKeyCache(cfg)}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if cfg.Introspection != nil {
		v.intro = newIntrospector(cfg, v.keys)
	}
	return v, nil
}

// Prefetch reads discovery and the JWKS now, so a service can fail its
// start-up (or readiness) when authd is unreachable or misconfigured.
// Errors wrap ErrUnavailable.
func (v *Verifier) Prefetch(ctx context.Context) error {
	_, err := v.keys.metadata(ctx)
	return err
}

// wireClaims are the RFC 9068 claims as they travel.
type wireClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope"`
	Roles     []string         `json:"roles"`
}

// Verify checks token and returns its claims. Every failure that is the
// token's fault wraps ErrInvalidToken; failing to reach authd wraps
// ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	payload, err := v.verifySignature(ctx, token)
	if err != nil {
		return nil, err
	}
	c, err := v.checkClaims(payload)
	if err != nil {
		return nil, err
	}
	if v.intro != nil {
		if err := v.intro.check(ctx, token, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// verifySignature parses a compact JWS with one of the configured
// algorithms (so none and HS* never reach a key), checks the RFC 9068
// header and returns the verified payload.
func (v *Verifier) verifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("%w: want one signature", ErrInvalidToken)
	}
	h := jws.Signatures[0].Protected
	// RFC 9068 §4: typ at+jwt keeps ID tokens and other JWTs from this
	// issuer from being accepted as access tokens.
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, fmt.Errorf("%w: typ %q, want at+jwt", ErrInvalidToken, typ)
	}
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid", ErrInvalidToken)
	}
	key, err := v.keys.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key.Algorithm != "" && key.Algorithm != h.Algorithm {
		return nil, fmt.Errorf("%w: alg %s does not match key %q (%s)", ErrInvalidToken, h.Algorithm, h.KeyID, key.Algorithm)
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	return payload, nil
}

// checkClaims validates the registered claims against the configuration
// and the clock, allowing Leeway of skew.
func (v *Verifier) checkClaims(payload []byte) (*Claims, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidToken}, args...)...)
	}
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, invalid("claims: %v", err)
	}
	raw := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, invalid("claims: %v", err)
	}
	now, leeway := v.cfg.Now(), v.cfg.Leeway
	switch {
	case w.Issuer != v.cfg.Issuer:
		return nil, invalid("issuer %q", w.Issuer)
	case !slices.Contains([]string(w.Audience), v.cfg.Audience):
		return nil, invalid("audience %q does not include %q", []string(w.Audience), v.cfg.Audience)
	case w.Expiry == nil:
		return nil, invalid("no exp")
	case !now.Before(w.Expiry.Time().Add(leeway)):
		return nil, invalid("expired at %s", w.Expiry.Time().UTC().Format(time.RFC3339))
	case w.NotBefore != nil && now.Add(leeway).Before(w.NotBefore.Time()):
		return nil, invalid("not valid before %s", w.NotBefore.Time().UTC().Format(time.RFC3339))
	case w.IssuedAt == nil:
		return nil, invalid("no iat")
	case now.Add(leeway).Before(w.IssuedAt.Time()):
		return nil, invalid("issued in the future")
	case w.Subject == "" || w.ClientID == "" || w.ID == "":
		return nil, invalid("sub, client_id and jti are required")
	}
	c := &Claims{
		Issuer: w.Issuer, Subject: w.Subject, Audience: []string(w.Audience), ClientID: w.ClientID,
		Scopes: strings.Fields(w.Scope), Roles: w.Roles, TokenID: w.ID,
		IssuedAt: w.IssuedAt.Time(), ExpiresAt: w.Expiry.Time(), Raw: raw,
	}
	if c.Roles == nil {
		c.Roles = []string{}
	}
	if w.NotBefore != nil {
		c.NotBefore = w.NotBefore.Time()
	}
	return c, nil
}
