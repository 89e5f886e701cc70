package resource_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/ledger"
	"github.com/authd/authd/resource"
	"github.com/authd/authd/storage/fositestore"
)

const (
	liveAudience = "urn:test:api"
	alicePass    = "correct horse battery staple"
)

// protectedAPI is a service protected by the kit: GET /read needs scope
// credits:read, GET /edit role editor.
func protectedAPI(v *resource.Verifier) http.Handler {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := resource.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "hello %s via %s roles=%s", c.Subject, c.ClientID, strings.Join(c.Roles, ","))
	})
	mux := http.NewServeMux()
	mux.Handle("GET /read", v.Require(v.RequireScope("credits:read")(ok)))
	mux.Handle("GET /edit", v.Require(v.RequireRole("editor")(ok)))
	return mux
}

// call sends GET path to srv with token and returns status, WWW-Authenticate and body.
func call(t *testing.T, srv *httptest.Server, path, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

const invalidToken = `Bearer realm="api", error="invalid_token", error_description="the access token is invalid, expired or revoked"`

// TestLive_ProtectedHandler runs the kit against a live authd:
// every case goes through the real token endpoint, JWKS and introspection.
func TestLive_ProtectedHandler(t *testing.T) {
	a := startAuthd(t)
	aliceID := a.mustUser("alice@example.com", alicePass, "user")
	app, appSecret := a.mustClient(fositestore.Client{GrantTypes: []string{"password", "refresh_token"}, FirstParty: true,
		Scopes: []string{"openid", "offline_access", "credits:read"}, Audience: []string{liveAudience}})
	good, _ := a.passwordToken(app, appSecret, "alice@example.com", alicePass, "openid offline_access credits:read", liveAudience)

	vclock := &testkit.Clock{}
	v, err := resource.NewVerifier(resource.Config{Issuer: a.issuer, Audience: liveAudience, Realm: "api", Now: vclock.Now})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(protectedAPI(v))
	t.Cleanup(api.Close)

	t.Run("OK", func(t *testing.T) {
		st, _, body := call(t, api, "/read", good)
		if st != 200 || body != "hello "+aliceID+" via "+app+" roles=user" {
			t.Fatalf("%d %s", st, body)
		}
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		if st, www, _ := call(t, api, "/read", ""); st != 401 || www != `Bearer realm="api"` {
			t.Fatalf("%d %s", st, www)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		// The same token, 16 minutes later (the access-token TTL is 15m,
		// leeway 30s), on a verifier whose clock is ahead.
		late := &testkit.Clock{}
		late.Advance(16 * time.Minute)
		v2, _ := resource.NewVerifier(resource.Config{Issuer: a.issuer, Audience: liveAudience, Realm: "api", Now: late.Now})
		s2 := httptest.NewServer(protectedAPI(v2))
		defer s2.Close()
		if st, www, _ := call(t, s2, "/read", good); st != 401 || www != invalidToken {
			t.Fatalf("%d %s", st, www)
		}
	})
	t.Run("ErrWrongAudience", func(t *testing.T) {
		// No audience requested: authd grants its own issuer as aud.
		tok, _ := a.passwordToken(app, appSecret, "alice@example.com", alicePass, "credits:read", "")
		if st, www, _ := call(t, api, "/read", tok); st != 401 || www != invalidToken {
			t.Fatalf("%d %s", st, www)
		}
	})
	t.Run("ErrWrongIssuer", func(t *testing.T) {
		// Another authd on the same database signs with the same keys, so
		// the signature verifies; only iss is wrong.
		other := a.sibling()
		tok, _ := other.passwordToken(app, appSecret, "alice@example.com", alicePass, "credits:read", liveAudience)
		if st, www, _ := call(t, api, "/read", tok); st != 401 || www != invalidToken {
			t.Fatalf("%d %s", st, www)
		}
	})
	t.Run("ErrAlgNone", func(t *testing.T) {
		h, claims := splitToken(t, good)
		tok := unsigned(t, h["kid"].(string), claims)
		if st, www, _ := call(t, api, "/read", tok); st != 401 || www != invalidToken {
			t.Fatalf("%d %s", st, www)
		}
	})
	t.Run("ErrHS256WithPublicKeyAsSecret", func(t *testing.T) {
		h, claims := splitToken(t, good)
		for _, secret := range publicKeySecrets(t, a.issuer, h["kid"].(string)) {
			tok := hmacToken(t, h["kid"].(string), secret, claims)
			if st, www, _ := call(t, api, "/read", tok); st != 401 || www != invalidToken {
				t.Fatalf("%d %s", st, www)
			}
		}
	})
	t.Run("ErrUnknownKidOneRefreshThenReject", func(t *testing.T) {
		_, claims := splitToken(t, good)
		before := a.jwksHit.Load()
		for i := range 20 {
			forged := newECKey(t, fmt.Sprintf("forged-%d", i))
			if st, www, _ := call(t, api, "/read", sign(t, forged, "at+jwt", claims)); st != 401 || www != invalidToken {
				t.Fatalf("forged kid %d: %d %s", i, st, www)
			}
		}
		if n := a.jwksHit.Load() - before; n != 1 {
			t.Fatalf("JWKS fetched %d times for 20 unknown kids, want 1", n)
		}
	})
	t.Run("OK_KeyRotationWithoutRestart", func(t *testing.T) {
		oldKid := headerOf(t, good)["kid"]
		a.rotate() // the pre-published key, already cached, starts signing
		a.rotate() // a key created after the verifier's last fetch signs
		tok, _ := a.passwordToken(app, appSecret, "alice@example.com", alicePass, "credits:read", liveAudience)
		if kid := headerOf(t, tok)["kid"]; kid == oldKid {
			t.Fatalf("still signing with %v after two rotations", kid)
		}
		vclock.Advance(resource.DefaultRefreshMinInterval) // the forged kids above used the refresh budget
		before := a.jwksHit.Load()
		if st, _, body := call(t, api, "/read", tok); st != 200 {
			t.Fatalf("token of the new key: %d %s", st, body)
		}
		if st, _, body := call(t, api, "/read", good); st != 200 {
			t.Fatalf("token of the retired key: %d %s", st, body)
		}
		if n := a.jwksHit.Load() - before; n != 1 {
			t.Errorf("JWKS fetched %d times for the rotation, want 1", n)
		}
	})
	t.Run("ErrMissingScope", func(t *testing.T) {
		tok, _ := a.passwordToken(app, appSecret, "alice@example.com", alicePass, "openid", liveAudience)
		st, www, _ := call(t, api, "/read", tok)
		want := `Bearer realm="api", error="insufficient_scope", error_description="the access token lacks scope \"credits:read\"", scope="credits:read"`
		if st != 403 || www != want {
			t.Fatalf("%d %s", st, www)
		}
	})
	t.Run("ErrMissingRole", func(t *testing.T) {
		st, www, _ := call(t, api, "/edit", good)
		want := `Bearer realm="api", error="insufficient_scope", error_description="the user needs role editor"`
		if st != 403 || www != want {
			t.Fatalf("%d %s", st, www)
		}
	})
	t.Run("ErrRevokedOnlineMode", func(t *testing.T) {
		rs, rsSecret := a.mustClient(fositestore.Client{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"}})
		oclock := &testkit.Clock{}
		online, _ := resource.NewVerifier(resource.Config{Issuer: a.issuer, Audience: liveAudience, Realm: "api", Now: oclock.Now,
			Introspection: &resource.Introspection{ClientID: rs, ClientSecret: rsSecret}})
		s2 := httptest.NewServer(protectedAPI(online))
		defer s2.Close()
		tok, rt := a.passwordToken(app, appSecret, "alice@example.com", alicePass, "offline_access credits:read", liveAudience)
		if st, _, body := call(t, s2, "/read", tok); st != 200 {
			t.Fatalf("before revocation: %d %s", st, body)
		}
		if st, out := a.post("/oauth2/revoke", app, appSecret, url.Values{"token": {rt}}); st != 200 {
			t.Fatalf("revoke: %d %v", st, out)
		}
		oclock.Advance(resource.DefaultIntrospectionTTL) // past the introspection cache
		if st, www, _ := call(t, s2, "/read", tok); st != 401 || www != invalidToken {
			t.Fatalf("revoked token, online: %d %s", st, www)
		}
		// Offline mode cannot know: the token stays valid until exp.
		if st, _, _ := call(t, api, "/read", tok); st != 200 {
			t.Fatalf("revoked token, offline: %d", st)
		}
	})
}

// TestLive_Credits drives the credits client against the real ledger API,
// as the user and as a service.
func TestLive_Credits(t *testing.T) {
	a := startAuthd(t)
	ctx := context.Background()
	aliceID := a.mustUser("alice@example.com", alicePass, "user")
	if _, err := a.ledger.Grant(ctx, ledger.Posting{UserID: aliceID, Amount: 3, Reference: "welcome", Description: "welcome",
		Origin: ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorAdmin, ID: "test"}}}); err != nil {
		t.Fatal(err)
	}
	app, appSecret := a.mustClient(fositestore.Client{GrantTypes: []string{"password"}, FirstParty: true,
		Scopes: []string{"credits:read", "credits:spend"}})
	userTok, _ := a.passwordToken(app, appSecret, "alice@example.com", alicePass, "credits:read credits:spend", "")
	svc, svcSecret := a.mustClient(fositestore.Client{GrantTypes: []string{"client_credentials"}, Scopes: []string{"credits:charge"}})
	credits, err := resource.NewCredits(resource.CreditsConfig{Issuer: a.issuer, ClientID: svc, ClientSecret: svcSecret})
	if err != nil {
		t.Fatal(err)
	}

	tx, err := credits.Spend(ctx, resource.AsUser(userTok), 1, "order-1", "first order")
	if err != nil || tx.BalanceAfter != 2 || tx.Replayed {
		t.Fatalf("spend as user: %+v %v", tx, err)
	}
	again, err := credits.Spend(ctx, resource.AsUser(userTok), 1, "order-1", "first order")
	if err != nil || again.ID != tx.ID || !again.Replayed {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	if _, err := credits.Spend(ctx, resource.AsUser(userTok), 2, "order-1", "first order"); !errors.Is(err, resource.ErrReferenceConflict) {
		t.Fatalf("conflict: %v", err)
	}
	tx, err = credits.Spend(ctx, resource.ForUser(aliceID), 2, "order-2", "as a service")
	if err != nil || tx.BalanceAfter != 0 {
		t.Fatalf("spend as service: %+v %v", tx, err)
	}
	_, err = credits.Spend(ctx, resource.ForUser(aliceID), 1, "order-3", "too much")
	var apiErr *resource.APIError
	if !errors.Is(err, resource.ErrInsufficientCredits) || !errors.As(err, &apiErr) || apiErr.Status != 409 {
		t.Fatalf("insufficient: %v", err)
	}
	for _, who := range []resource.Caller{resource.AsUser(userTok), resource.ForUser(aliceID)} {
		if n, err := credits.Balance(ctx, who); err != nil || n != 0 {
			t.Fatalf("balance: %d %v", n, err)
		}
	}
}

// splitToken decodes a JWT's header and claims without verifying.
func splitToken(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	var h, c map[string]any
	for i, dst := range []*map[string]any{&h, &c} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return h, c
}

func headerOf(t *testing.T, tok string) map[string]any {
	h, _ := splitToken(t, tok)
	return h
}

// publicKeySecrets returns the published key kid in the encodings an
// attacker would try as an HMAC secret: PEM, DER and the JWK JSON.
func publicKeySecrets(t *testing.T, issuer, kid string) [][]byte {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	ks := set.Key(kid)
	if len(ks) == 0 {
		t.Fatalf("kid %s not published", kid)
	}
	der, err := x509.MarshalPKIXPublicKey(ks[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	jwk, _ := json.Marshal(ks[0])
	return [][]byte{pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), der, jwk}
}
