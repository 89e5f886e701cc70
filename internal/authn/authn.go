// Package authn is the seam between the token issuer and the APIs that accept
// its bearer tokens: a Principal type, a Verifier interface the oauth package
// implements, and middleware that puts the verified Principal in the request
// context. Errors follow RFC 6750 (WWW-Authenticate: Bearer error=…).
package authn

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Principal is who a verified access token speaks for.
type Principal struct {
	// Subject is the token's sub: a user id, or the client id for
	// client_credentials tokens.
	Subject string
	// UserID is the user the token acts for; empty for client-only tokens.
	UserID   string
	ClientID string
	Scopes   []string
	Roles    []string
	// TokenID is the jti, for audit records.
	TokenID string
	// Audience is the token's aud: authd's own APIs require theirs in it.
	Audience []string
	// AuthTime is when the user last authenticated with a credential (the
	// token's auth_time); zero for client-only tokens or when unknown.
	// Changing the password or email needs a recent one or the password.
	AuthTime time.Time
}

// HasScope reports whether the token was granted scope s.
func (p *Principal) HasScope(s string) bool { return slices.Contains(p.Scopes, s) }

// HasRole reports whether the user holds role r.
func (p *Principal) HasRole(r string) bool { return slices.Contains(p.Roles, r) }

// IsUser reports whether the token acts for a user (not only a client).
func (p *Principal) IsUser() bool { return p.UserID != "" }

// ErrInvalidToken is returned (possibly wrapped) by a Verifier for a token
// that is malformed, expired, revoked or not ours.
var ErrInvalidToken = errors.New("authn: invalid access token")

// Verifier checks a raw bearer access token and returns its Principal.
type Verifier interface {
	VerifyAccessToken(ctx context.Context, token string) (*Principal, error)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's Principal, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// BearerToken extracts the token from an Authorization: Bearer header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// IsAdmin reports whether p may use the admin API: a user token whose roles
// include admin and whose scope includes admin, or a client-credentials token
// (no user) granted scope admin, for automation.
func IsAdmin(p *Principal) bool {
	if p == nil || !p.HasScope("admin") {
		return false
	}
	return !p.IsUser() || p.HasRole("admin")
}
