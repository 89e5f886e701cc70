package oauth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"net/url"
	"strings"
	"testing"
	"time"

	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authd/authd/oauth/clients"
)

// TestToken_ThrottledPasswordGrantIsClientError: once the account's login
// backoff refuses password checks, the password grant answers a 4xx OAuth
// error saying so, never a server error.
func TestToken_ThrottledPasswordGrantIsClientError(t *testing.T) {
	e := newEnv(t)
	c, secret := e.mustClient(clients.Spec{FirstParty: true, GrantTypes: []string{"password", "refresh_token"},
		Scopes: []string{"openid", "offline_access"}})
	form := url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {"wrong password"}}
	for i := range 15 {
		st, out := e.tokenRequest(c.ID, secret, form)
		if st >= 500 {
			t.Fatalf("attempt %d: %d %v", i, st, out)
		}
		if desc, _ := out["error_description"].(string); strings.Contains(desc, "Too many failed sign-in attempts") {
			if st != 400 || out["error"] != "invalid_grant" {
				t.Fatalf("throttled: %d %v", st, out)
			}
			return
		}
		if st != 400 || out["error"] != "invalid_grant" {
			t.Fatalf("attempt %d: %d %v", i, st, out)
		}
	}
	t.Fatal("the account was never throttled")
}

// TestToken_ExpiredClientAssertionIsClientError: a private_key_jwt
// assertion that expired is invalid_client (401), not a server error; a
// replayed one is a 400.
func TestToken_ExpiredClientAssertionIsClientError(t *testing.T) {
	e := newEnv(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := e.jwtClient(&key.PublicKey)
	sign := func(exp time.Time) string {
		t.Helper()
		sig, err := josev4.NewSigner(josev4.SigningKey{Algorithm: josev4.RS256, Key: key}, (&josev4.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		claims := assertionClaims(c.ID, e.issuer)
		claims.IssuedAt = josejwt.NewNumericDate(exp.Add(-time.Minute))
		claims.Expiry = josejwt.NewNumericDate(exp)
		s, err := josejwt.Signed(sig).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}}
	st, out := e.tokenRequest("", "", assertionForm(base, sign(time.Now().Add(-time.Hour))))
	if st != 401 || out["error"] != "invalid_client" || !strings.Contains(out["error_description"].(string), "expired") {
		t.Fatalf("expired assertion: %d %v", st, out)
	}
	fresh := sign(time.Now().Add(time.Minute))
	if st, out := e.tokenRequest("", "", assertionForm(base, fresh)); st != 200 {
		t.Fatalf("fresh assertion: %d %v", st, out)
	}
	if st, out := e.tokenRequest("", "", assertionForm(base, fresh)); st != 400 {
		t.Fatalf("replayed assertion: %d %v", st, out)
	}
}
