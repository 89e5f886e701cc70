package authn_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/authd/authd/internal/authn"
)

type principals map[string]*authn.Principal

func (p principals) VerifyAccessToken(_ context.Context, tok string) (*authn.Principal, error) {
	if pr, ok := p[tok]; ok {
		return pr, nil
	}
	return nil, authn.ErrInvalidToken
}

type firstParty map[string]bool

func (f firstParty) IsFirstParty(_ context.Context, id string) (bool, error) { return f[id], nil }

// An admin user's token is an admin's only from a first-party client; from
// a third-party app it is a plain user token (what its other scopes allow).
// A service's own admin scope needs no flag.
func TestGuard_AdminUserTokenOnlyFromFirstParty(t *testing.T) {
	const aud = "https://authd.example"
	admin := func(client string, scopes ...string) *authn.Principal {
		return &authn.Principal{UserID: "u1", ClientID: client, Roles: []string{"admin"}, Scopes: scopes, Audience: []string{aud}}
	}
	g := &authn.Guard{Audience: aud, Clients: firstParty{"console": true}, Verifier: principals{
		"first":   admin("console", "admin"),
		"third":   admin("app", "admin", "credits:read"),
		"service": {ClientID: "ops", Scopes: []string{"admin"}, Audience: []string{aud}},
	}}
	adminOnly := authn.Policy{Callers: authn.Admin}
	userOrAdmin := authn.Policy{Callers: authn.User | authn.Admin, Scopes: []string{"credits:read"}}
	for _, tc := range []struct {
		tok  string
		pol  authn.Policy
		want bool
	}{
		{"first", adminOnly, true},
		{"third", adminOnly, false},
		{"service", adminOnly, true},
		{"third", userOrAdmin, true}, // as the user, with credits:read
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+tc.tok)
		_, d := g.Authorize(r, tc.pol)
		if got := d == nil; got != tc.want {
			t.Errorf("%s under %v: admitted %v, want %v (%+v)", tc.tok, tc.pol.Callers, got, tc.want, d)
		}
	}
}
