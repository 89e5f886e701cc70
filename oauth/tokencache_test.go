package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/authn"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/storage/fositestore"
)

// replica is a second authd on a's database with a's issuer and keys: what
// production's replicas are (env.sibling has its own issuer). Its clock is
// a's test clock.
func replica(t *testing.T, a *env) *env {
	t.Helper()
	ui, err := loginui.New(a.secret, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	store := fositestore.New(a.db.Pool, fositestore.Options{ReuseWindow: 10 * time.Second, Now: a.clock.Now})
	prov, err := oauth.New(oauth.Config{Issuer: a.issuer, SecretsKey: a.secret, RefreshReuseWindow: 10 * time.Second,
		Now: a.clock.Now}, a.db.Pool, store, a.keys, a.accts, ui, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	prov.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{t: t, db: a.db, srv: srv, issuer: srv.URL, clock: a.clock, store: store, keys: a.keys, prov: prov,
		accts: a.accts, secret: a.secret, userID: a.userID}
}

// A revoked access token is reported inactive at once by the replica that
// revoked it, and by every other replica within oauth.TokenCacheTTL (1 s),
// by introspection and by bearer verification alike.
func TestTokenCache_RevocationBound(t *testing.T) {
	a := newEnv(t)
	b := replica(t, a)
	ctx := context.Background()
	c, secret := a.mustClient(serviceSpec("client_secret_basic"))
	issue := func() string {
		t.Helper()
		st, tok := a.tokenRequest(c.ID, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:admin"}})
		if st != http.StatusOK {
			t.Fatalf("token: %d %v", st, tok)
		}
		return tok["access_token"].(string)
	}
	active := func(e *env, tok string) bool {
		t.Helper()
		return e.introspect(c.ID, secret, tok)["active"] == true
	}
	verifies := func(e *env, tok string) bool {
		t.Helper()
		_, err := e.prov.VerifyAccessToken(ctx, tok)
		if err != nil && !errors.Is(err, authn.ErrInvalidToken) {
			t.Fatalf("verify: %v", err)
		}
		return err == nil
	}
	revoke := func(e *env, tok string) {
		t.Helper()
		if st, out := e.postJSON("/oauth2/revoke", c.ID, secret, url.Values{"token": {tok}}); st != http.StatusOK {
			t.Fatalf("revoke: %d %v", st, out)
		}
	}

	t.Run("SameReplicaAtOnce", func(t *testing.T) {
		tok := issue()
		if !active(a, tok) || !active(a, tok) || !verifies(a, tok) || !verifies(a, tok) {
			t.Fatal("fresh token not active")
		}
		revoke(a, tok)
		if active(a, tok) {
			t.Error("introspection on the revoking replica still says active")
		}
		if verifies(a, tok) {
			t.Error("bearer verification on the revoking replica still accepts it")
		}
	})
	t.Run("OtherReplicaWithinTTL", func(t *testing.T) {
		tok := issue()
		if !active(b, tok) || !verifies(b, tok) {
			t.Fatal("fresh token not active on B")
		}
		revoke(a, tok)
		// B's answer may be cached, but for no longer than the TTL.
		a.clock.Advance(oauth.TokenCacheTTL)
		if active(b, tok) {
			t.Errorf("introspection on B still says active %v after the revocation", oauth.TokenCacheTTL)
		}
		if verifies(b, tok) {
			t.Errorf("bearer verification on B still accepts the token %v after the revocation", oauth.TokenCacheTTL)
		}
	})
	t.Run("RotationRevokesOldAccessTokenAtOnce", func(t *testing.T) {
		// Revoking through the store (as refresh rotation, user disable and
		// role removal do) is seen by the same replica's caches at once.
		tok := issue()
		if !active(a, tok) || !verifies(a, tok) {
			t.Fatal("fresh token not active")
		}
		if err := a.store.RevokeClientTokens(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if active(a, tok) || verifies(a, tok) {
			t.Error("token still active after RevokeClientTokens on the same replica")
		}
	})
}
