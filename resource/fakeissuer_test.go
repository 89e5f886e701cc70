package resource_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/resource"
)

const audience = "urn:test:notes"

// fakeIssuer is a local authorization server for unit tests: discovery and
// a JWKS built from keys the test controls, counting JWKS fetches.
type fakeIssuer struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string

	mu         sync.Mutex
	published  []jose.JSONWebKey
	introspect http.HandlerFunc

	jwksFetches atomic.Int64
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": f.issuer, "jwks_uri": f.issuer + "/jwks", "token_endpoint": f.issuer + "/token",
			"introspection_endpoint": f.issuer + "/introspect",
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		f.jwksFetches.Add(1)
		f.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), f.published...)}
		f.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		h := f.introspect
		f.mu.Unlock()
		if h == nil {
			http.Error(w, "no introspection", http.StatusNotFound)
			return
		}
		h(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.issuer = f.srv.URL
	return f
}

// signingKey is a private key with its kid and alg.
type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newECKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.ES256, priv: k}
}

func newRSAKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: jose.RS256, priv: k}
}

// publish adds k's public half to the JWKS.
func (f *fakeIssuer) publish(k signingKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.published = append(f.published, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
}

func (f *fakeIssuer) setIntrospection(h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.introspect = h
}

// claims returns valid access-token claims for now.
func (f *fakeIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": f.issuer, "sub": "user-1", "aud": []string{audience}, "client_id": "app-1",
		"scope": "openid notes:read", "roles": []string{"user", "editor"}, "jti": "jti-1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	}
}

// sign makes a compact JWS of claims with k and header typ (empty: none).
func sign(t *testing.T, k signingKey, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), k.kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// mustVerifier builds a Verifier for f with clock c; mod adjusts the config.
func mustVerifier(t *testing.T, f *fakeIssuer, c *testkit.Clock, mod func(*resource.Config)) *resource.Verifier {
	t.Helper()
	cfg := resource.Config{Issuer: f.issuer, Audience: audience, Now: c.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := resource.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
