package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
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
	store := fositestore.New(a.db.Pool, fositestore.Options{Now: a.clock.Now})
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
		st, tok := a.tokenRequest(c.ID, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}})
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

// watchedReplica is a replica of a (its issuer, keys and clock) with its own
// accounts service and pool whose user cache listens for changes, as in
// production.
func watchedReplica(t *testing.T, a *env) *env {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), a.db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	hasher, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	accts := accounts.New(pool, hasher, zap.NewNop(), accounts.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); accts.WatchUsers(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-accts.UserCacheReady():
	case <-time.After(10 * time.Second):
		t.Fatal("user watcher did not start listening")
	}
	ui, err := loginui.New(a.secret, false, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	store := fositestore.New(pool, fositestore.Options{Now: a.clock.Now})
	prov, err := oauth.New(oauth.Config{Issuer: a.issuer, SecretsKey: a.secret, RefreshReuseWindow: 10 * time.Second,
		Now: a.clock.Now}, pool, store, a.keys, accts, ui, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	prov.Mount(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{t: t, db: a.db, srv: srv, issuer: srv.URL, clock: a.clock, store: store, keys: a.keys, prov: prov,
		accts: accts, secret: a.secret, userID: a.userID}
}

// userChangeBound bounds how long a change to a user made on one replica
// may take to reach another's cached answers: a notification's latency, in
// practice milliseconds. It is below the user cache's 2 s TTL and, unlike
// TokenCacheTTL, is not reached by moving a clock: only the notification
// can make these tests pass.
const userChangeBound = time.Second

// With the user cache on both replicas, a user's token is inactive at once
// on the replica that disabled the user and within a notification's latency
// on the other, by introspection and bearer verification alike; enabling
// the user and changing roles travel the same way.
func TestTokenCache_UserChangesReachEveryReplica(t *testing.T) {
	base := newEnv(t)
	a, b := watchedReplica(t, base), watchedReplica(t, base)
	ctx := context.Background()
	web, secret := base.webClient()
	tok := base.codeFlow(web.ID, secret, "openid roles")["access_token"].(string)

	type view struct {
		active bool
		roles  string // concatenated, sorted
	}
	introspected := func(e *env) view {
		t.Helper()
		out := e.introspect(web.ID, secret, tok)
		v := view{active: out["active"] == true}
		if rs, ok := out["roles"].([]any); ok {
			v.roles = fmt.Sprint(rs...) // strings: concatenated, as Join(roles, "")
		}
		return v
	}
	verified := func(e *env) view {
		t.Helper()
		pr, err := e.prov.VerifyAccessToken(ctx, tok)
		if errors.Is(err, authn.ErrInvalidToken) {
			return view{}
		}
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		return view{active: true, roles: strings.Join(pr.Roles, "")}
	}
	// seen waits until every view of e shows want.
	seen := func(e *env, want view) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			i, v := introspected(e), verified(e)
			if i == want && v == want {
				return time.Since(start)
			}
			if time.Since(start) > userChangeBound {
				t.Fatalf("after %v: introspection %+v, verification %+v; want %+v", userChangeBound, i, v, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	origin := audit.Event{ActorType: audit.ActorAdmin, ActorID: "test"}
	steps := []struct {
		name   string
		change func() error
		want   view
	}{
		{"Disable", func() error { _, err := a.accts.SetDisabled(ctx, origin, base.userID, true, false); return err }, view{}},
		{"Enable", func() error { _, err := a.accts.SetDisabled(ctx, origin, base.userID, false, false); return err },
			view{active: true, roles: "adminuser"}},
		{"RoleRemoved", func() error {
			_, err := a.accts.UnassignRole(ctx, origin, base.userID, "admin", false)
			return err
		}, view{active: true, roles: "user"}},
		{"RoleAdded", func() error { _, err := a.accts.AssignRole(ctx, origin, base.userID, "admin"); return err },
			view{active: true, roles: "adminuser"}},
	}
	seen(a, view{active: true, roles: "adminuser"})
	seen(b, view{active: true, roles: "adminuser"})
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			// Both replicas answer from their caches before the change.
			introspected(a)
			verified(a)
			introspected(b)
			verified(b)
			if err := st.change(); err != nil {
				t.Fatal(err)
			}
			if i, v := introspected(a), verified(a); i != st.want || v != st.want {
				t.Fatalf("replica A right after its own change: introspection %+v, verification %+v; want %+v", i, v, st.want)
			}
			t.Logf("seen on B after %v", seen(b, st.want))
		})
	}
}
