package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// fakeOIDC is an upstream whose ID tokens the test shapes: the far side of
// the ID-token checks (issuer, audience, nonce, expiry, signature, keys).
type fakeOIDC struct {
	srv *httptest.Server
	mu  sync.Mutex
	key *ecdsa.PrivateKey
	kid string
	// claims is the next ID token's claims; signer, when set, signs it
	// instead of the published key.
	claims     map[string]any
	signer     *ecdsa.PrivateKey
	jwksServed int
}

func newFakeOIDC(t *testing.T) *fakeOIDC {
	f := &fakeOIDC{}
	f.rotate()
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": f.srv.URL, "authorization_endpoint": f.srv.URL + "/auth",
			"token_endpoint": f.srv.URL + "/token", "jwks_uri": f.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.jwksServed++
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: f.kid, Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		key, kid := f.key, f.kid
		if f.signer != nil {
			key = f.signer
		}
		claims := f.claims
		f.mu.Unlock()
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
		if err != nil {
			t.Error(err)
			return
		}
		raw, err := jwt.Signed(sig).Claims(claims).Serialize()
		if err != nil {
			t.Error(err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "upstream-access-token", "token_type": "Bearer", "id_token": raw})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOIDC) rotate() {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.mu.Lock()
	f.key, f.kid = k, "kid-"+time.Now().Format("150405.000000000")
	f.mu.Unlock()
}

func (f *fakeOIDC) set(claims map[string]any, signer *ecdsa.PrivateKey) {
	f.mu.Lock()
	f.claims, f.signer = claims, signer
	f.mu.Unlock()
}

func TestClient_VerifiesTheIDToken(t *testing.T) {
	up := newFakeOIDC(t)
	p := &Provider{ID: "p1", Slug: "fake", DisplayName: "Fake", Kind: KindOIDC, Issuer: up.srv.URL, ClientID: "authd-client",
		clientSecret: "s", Scopes: []string{"openid", "email"}, EmailClaim: "email", NameClaim: "name", UpdatedAt: time.Now()}
	c := newClient(5 * time.Second)
	st := &flowState{State: "st", Nonce: "the-nonce", Verifier: random()}
	good := func() map[string]any {
		now := time.Now()
		return map[string]any{"iss": up.srv.URL, "aud": "authd-client", "sub": "u-1", "nonce": "the-nonce",
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "email": "A@Example.com", "email_verified": true, "name": "A"}
	}
	exchange := func() (*Identity, error) {
		return c.exchange(context.Background(), p, "http://localhost/cb", "code", st)
	}
	up.set(good(), nil)
	id, err := exchange()
	if err != nil || id.Subject != "u-1" || !id.EmailVerified || id.Email != "A@Example.com" {
		t.Fatalf("OK: %+v %v", id, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		name   string
		mutate func(map[string]any)
		signer *ecdsa.PrivateKey
	}{
		{"ErrIssuer", func(m map[string]any) { m["iss"] = "https://evil.example" }, nil},
		{"ErrAudience", func(m map[string]any) { m["aud"] = "someone-else" }, nil},
		{"ErrNonce", func(m map[string]any) { m["nonce"] = "replayed-nonce" }, nil},
		{"ErrNoNonce", func(m map[string]any) { delete(m, "nonce") }, nil},
		{"ErrExpired", func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() }, nil},
		{"ErrSignature", func(map[string]any) {}, other},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := good()
			c.mutate(m)
			up.set(m, c.signer)
			id, err := exchange()
			var ue *UpstreamError
			if err == nil || !errors.As(err, &ue) {
				t.Fatalf("accepted: %+v %v", id, err)
			}
			if strings.Contains(ue.Reason, "eyJ") {
				t.Fatalf("reason carries a token: %s", ue.Reason)
			}
		})
	}
	t.Run("KeyRotationFollowed", func(t *testing.T) {
		before := up.jwksServed
		up.rotate()
		up.set(good(), nil)
		// go-oidc hands a verification that arrives while its previous JWKS
		// fetch is being retired (done, but its goroutine not yet scheduled
		// to clear it) that fetch's keys; once that goroutine runs, the next
		// verification fetches anew. Under -race on a loaded machine the
		// goroutine can miss more than one retry, so a few are allowed (a
		// user retrying); a client that never follows the rotation fails
		// every one of them.
		var err error
		for range 10 {
			if _, err = exchange(); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("after rotation: %v", err)
		}
		if up.jwksServed == before {
			t.Fatal("the JWKS was not refetched for the new kid")
		}
	})
}

func TestClient_GitHubPrimaryVerifiedEmail(t *testing.T) {
	var auth string
	mux := http.NewServeMux()
	mux.HandleFunc("/login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("code_verifier") == "" || r.FormValue("client_secret") != "gh-secret" {
			http.Error(w, `{"error":"bad_verification_code"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"gho_token","token_type":"bearer","scope":"read:user,user:email"}`))
	})
	mux.HandleFunc("/api/user", func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		_, _ = w.Write([]byte(`{"id":4242,"login":"octo","name":""}`))
	})
	mux.HandleFunc("/api/user/emails", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"email":"old@example.com","primary":false,"verified":true},{"email":"octo@example.com","primary":true,"verified":true}]`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	spec := Spec{Preset: PresetGitHub, ClientID: "gh", ClientSecret: "gh-secret",
		AuthURL: srv.URL + "/login/oauth/authorize", TokenURL: srv.URL + "/login/oauth/access_token", APIURL: srv.URL + "/api"}
	p, err := spec.provider()
	if err != nil {
		t.Fatal(err)
	}
	p.ID = "gh1"
	c := newClient(5 * time.Second)
	st := &flowState{State: "s", Nonce: "n", Verifier: random()}
	u, err := c.authCodeURL(context.Background(), p, "http://localhost/cb", st)
	if err != nil || !strings.Contains(u, "code_challenge_method=S256") || !strings.Contains(u, "state=s") {
		t.Fatalf("auth URL %q %v", u, err)
	}
	id, err := c.exchange(context.Background(), p, "http://localhost/cb", "code", st)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "4242" || id.Email != "octo@example.com" || !id.EmailVerified || id.Name != "octo" || auth != "Bearer gho_token" {
		t.Fatalf("identity %+v (auth %q)", id, auth)
	}
}

func TestAllowedRoles_OnlyTheAllowList(t *testing.T) {
	got := allowedRoles([]any{"editor", "admin", 7, "viewer"}, []string{"editor", "viewer"})
	if strings.Join(got, ",") != "editor,viewer" {
		t.Fatalf("%v", got)
	}
	if got := allowedRoles("editor admin", []string{"editor"}); strings.Join(got, ",") != "editor" {
		t.Fatalf("%v", got)
	}
}
