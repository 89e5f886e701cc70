package resource_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/resource"
)

func TestVerifier_Verify(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	rsaKey := newRSAKey(t, "r1")
	f.publish(rsaKey)
	now := time.Now()
	with := func(mod func(m map[string]any)) map[string]any {
		c := f.claims(now)
		mod(c)
		return c
	}
	tests := []struct {
		name  string
		token string
		err   error
	}{
		{"OK", sign(t, key, "at+jwt", f.claims(now)), nil},
		{"OK_RS256", sign(t, rsaKey, "at+jwt", f.claims(now)), nil},
		{"OK_MediaTypeTyp", sign(t, key, "application/at+jwt", f.claims(now)), nil},
		{"OK_AudienceString", sign(t, key, "at+jwt", with(func(m map[string]any) { m["aud"] = audience })), nil},
		{"OK_ExpiredWithinLeeway", sign(t, key, "at+jwt", with(func(m map[string]any) { m["exp"] = now.Add(-10 * time.Second).Unix() })), nil},
		{"ErrExpired", sign(t, key, "at+jwt", with(func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() })), resource.ErrInvalidToken},
		{"ErrNoExp", sign(t, key, "at+jwt", with(func(m map[string]any) { delete(m, "exp") })), resource.ErrInvalidToken},
		{"ErrNotYetValid", sign(t, key, "at+jwt", with(func(m map[string]any) { m["nbf"] = now.Add(time.Minute).Unix() })), resource.ErrInvalidToken},
		{"ErrIssuedInFuture", sign(t, key, "at+jwt", with(func(m map[string]any) { m["iat"] = now.Add(time.Hour).Unix() })), resource.ErrInvalidToken},
		{"ErrWrongAudience", sign(t, key, "at+jwt", with(func(m map[string]any) { m["aud"] = []string{f.issuer} })), resource.ErrInvalidToken},
		{"ErrWrongIssuer", sign(t, key, "at+jwt", with(func(m map[string]any) { m["iss"] = "https://evil.example" })), resource.ErrInvalidToken},
		{"ErrNoClientID", sign(t, key, "at+jwt", with(func(m map[string]any) { delete(m, "client_id") })), resource.ErrInvalidToken},
		{"ErrNoJTI", sign(t, key, "at+jwt", with(func(m map[string]any) { delete(m, "jti") })), resource.ErrInvalidToken},
		{"ErrTypJWT", sign(t, key, "JWT", f.claims(now)), resource.ErrInvalidToken},
		{"ErrNoTyp", sign(t, key, "", f.claims(now)), resource.ErrInvalidToken},
		{"ErrAlgNone", unsigned(t, "k1", f.claims(now)), resource.ErrInvalidToken},
		{"ErrHS256WithPublicKey", hmacWithPublicKey(t, key, f.claims(now)), resource.ErrInvalidToken},
		{"ErrBadSignature", tamper(sign(t, key, "at+jwt", f.claims(now))), resource.ErrInvalidToken},
		{"ErrKidOfOtherKey", sign(t, signingKey{kid: "k1", alg: rsaKey.alg, priv: rsaKey.priv}, "at+jwt", f.claims(now)), resource.ErrInvalidToken},
		{"ErrGarbage", "not-a-jwt", resource.ErrInvalidToken},
	}
	v := mustVerifier(t, f, testkit.NewClock(now), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.token)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Verify: err = %v, want %v", err, tt.err)
			}
			if tt.err == nil && (c.Subject != "user-1" || c.ClientID != "app-1" || !c.HasScope("notes:read") ||
				!c.HasRole("editor") || !c.IsUser() || c.TokenID != "jti-1") {
				t.Errorf("claims %+v", c)
			}
		})
	}
}

// unsigned is an alg:none token (RFC 7519 §6) naming a real kid.
func unsigned(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "at+jwt", "kid": kid})
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(p) + "."
}

// hmacWithPublicKey is the key-confusion attack: HS256 keyed with the
// published public key (PEM), naming its kid.
func hmacWithPublicKey(t *testing.T, k signingKey, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return hmacToken(t, k.kid, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), claims)
}

// hmacToken signs claims with HS256 keyed by secret, typ at+jwt.
func hmacToken(t *testing.T, kid string, secret []byte, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("at+jwt")
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tamper changes the payload but keeps the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = []byte(strings.Replace(string(p), `"user-1"`, `"admin-0"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

func TestVerifier_UnknownKidRefreshesOnceThenRejects(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	c := testkit.NewClock(time.Now())
	v := mustVerifier(t, f, c, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, key, "at+jwt", f.claims(c.Now()))); err != nil {
		t.Fatal(err)
	}
	if n := f.jwksFetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}
	forged := newECKey(t, "forged")
	for i := range 50 {
		forged.kid = "forged-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := v.Verify(ctx, sign(t, forged, "at+jwt", f.claims(c.Now()))); !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("forged kid %s: %v", forged.kid, err)
		}
	}
	if n := f.jwksFetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times after 50 unknown kids, want 2 (one refresh)", n)
	}
	// The known key still works without any fetch.
	if _, err := v.Verify(ctx, sign(t, key, "at+jwt", f.claims(c.Now()))); err != nil {
		t.Fatal(err)
	}
	if n := f.jwksFetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

func TestVerifier_KeyRotationWithoutRestart(t *testing.T) {
	f := newFakeIssuer(t)
	old := newECKey(t, "old")
	f.publish(old)
	c := testkit.NewClock(time.Now())
	v := mustVerifier(t, f, c, nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, old, "at+jwt", f.claims(c.Now()))); err != nil {
		t.Fatal(err)
	}
	next := newECKey(t, "next")
	f.publish(next)
	if _, err := v.Verify(ctx, sign(t, next, "at+jwt", f.claims(c.Now()))); err != nil {
		t.Fatalf("token of the rotated-in key: %v", err)
	}
	if n := f.jwksFetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
	// A second rotation right after is rate-limited, then accepted once
	// RefreshMinInterval has passed.
	third := newECKey(t, "third")
	f.publish(third)
	if _, err := v.Verify(ctx, sign(t, third, "at+jwt", f.claims(c.Now()))); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("rate-limited refresh: %v", err)
	}
	c.Advance(resource.DefaultRefreshMinInterval)
	if _, err := v.Verify(ctx, sign(t, third, "at+jwt", f.claims(c.Now()))); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
}

func TestVerifier_KeysRefreshedAfterMaxAge(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	c := testkit.NewClock(time.Now())
	v := mustVerifier(t, f, c, nil)
	ctx := context.Background()
	for range 3 {
		if _, err := v.Verify(ctx, sign(t, key, "at+jwt", f.claims(c.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(resource.DefaultKeysMaxAge)
	if _, err := v.Verify(ctx, sign(t, key, "at+jwt", f.claims(c.Now()))); err != nil {
		t.Fatal(err)
	}
	if n := f.jwksFetches.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
	// Issuer down: the stale key keeps working.
	f.srv.Close()
	c.Advance(resource.DefaultKeysMaxAge)
	if _, err := v.Verify(ctx, sign(t, key, "at+jwt", f.claims(c.Now()))); err != nil {
		t.Fatalf("stale key with the issuer down: %v", err)
	}
}

func TestVerifier_IssuerUnreachable(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	f.srv.Close()
	v := mustVerifier(t, f, testkit.NewClock(time.Now()), nil)
	_, err := v.Verify(context.Background(), sign(t, key, "at+jwt", f.claims(time.Now())))
	if !errors.Is(err, resource.ErrUnavailable) || errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if err := v.Prefetch(context.Background()); !errors.Is(err, resource.ErrUnavailable) {
		t.Fatalf("Prefetch: %v", err)
	}
}

func TestVerifier_DiscoveryIssuerMismatch(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	// The configured issuer differs from the one discovery names (trailing
	// slash): OIDC discovery says reject.
	v, err := resource.NewVerifier(resource.Config{Issuer: f.issuer + "/", Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Prefetch(context.Background()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Prefetch: %v", err)
	}
}

func TestNewVerifier_InvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  resource.Config
		want string
	}{
		{"ErrNoIssuer", resource.Config{Audience: "a"}, "Issuer is required"},
		{"ErrRelativeIssuer", resource.Config{Issuer: "auth.example.com", Audience: "a"}, "not an absolute"},
		{"ErrNoAudience", resource.Config{Issuer: "https://a.example"}, "Audience is required"},
		{"ErrHS256", resource.Config{Issuer: "https://a.example", Audience: "a", Algorithms: []string{"HS256"}}, `"HS256" is not allowed`},
		{"ErrNone", resource.Config{Issuer: "https://a.example", Audience: "a", Algorithms: []string{"none"}}, `"none" is not allowed`},
		{"ErrIntrospectionCreds", resource.Config{Issuer: "https://a.example", Audience: "a", Introspection: &resource.Introspection{}}, "ClientID and ClientSecret"},
		{"ErrNegativeLeeway", resource.Config{Issuer: "https://a.example", Audience: "a", Leeway: -time.Second}, "Leeway must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := resource.NewVerifier(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestClaims_NilSafe(t *testing.T) {
	var c *resource.Claims
	if c.HasScope("a") || c.HasRole("a") || c.IsUser() {
		t.Fatal("nil claims grant nothing")
	}
	client := &resource.Claims{Subject: "svc", ClientID: "svc", Roles: []string{}}
	if client.IsUser() || !slices.Equal(client.Roles, []string{}) {
		t.Fatal("a client_credentials token is not a user")
	}
}
