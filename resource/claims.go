package resource

import (
	"context"
	"slices"
	"time"
)

// Claims are the verified claims of an access token.
type Claims struct {
	Issuer   string
	Subject  string // a user id, or the client id for a client_credentials token
	Audience []string
	ClientID string
	Scopes   []string
	// Roles are the user's roles: from the token offline, read live from
	// authd in online mode. Empty for client-only tokens.
	Roles     []string
	TokenID   string // jti
	IssuedAt  time.Time
	NotBefore time.Time // zero when absent
	ExpiresAt time.Time
	// Raw holds every claim of the token as decoded JSON, for claims this
	// type does not name.
	Raw map[string]any
}

// HasScope reports whether the token was granted scope s.
func (c *Claims) HasScope(s string) bool { return c != nil && slices.Contains(c.Scopes, s) }

// HasRole reports whether the token's user holds role r.
func (c *Claims) HasRole(r string) bool { return c != nil && slices.Contains(c.Roles, r) }

// IsUser reports whether the token acts for a user; client_credentials
// tokens have the client as subject.
func (c *Claims) IsUser() bool { return c != nil && c.Subject != "" && c.Subject != c.ClientID }

type claimsKey struct{}

// WithClaims returns ctx carrying c (the middleware does this; tests of
// handlers may too).
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFrom returns the claims Verifier.Require stored for the request, or
// nil outside it.
func ClaimsFrom(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	return c
}
