package resource_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/ledger"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/storagetest"
)

// liveAuthd is a real authd (oauth provider, keys, accounts, ledger API) on
// a loopback server and a private database, wired like cmd/authd. The key
// manager runs on a settable clock so tests can rotate keys at once.
type liveAuthd struct {
	t       *testing.T
	db      *storagetest.DB
	srv     *httptest.Server
	issuer  string
	clock   *testkit.Clock
	secret  []byte
	keys    *keys.Manager
	prov    *oauth.Provider
	store   *fositestore.Store
	accts   *accounts.Service
	ledger  *ledger.Ledger
	jwksHit atomic.Int64
}

func startAuthd(t *testing.T) *liveAuthd {
	t.Helper()
	a := &liveAuthd{t: t, db: storagetest.NewDB(t), clock: &testkit.Clock{}, secret: make([]byte, 32)}
	_, _ = rand.Read(a.secret)
	a.start(a.db)
	return a
}

// sibling is a second authd replica on the same database under another
// issuer URL: same keys, different iss.
func (a *liveAuthd) sibling() *liveAuthd {
	s := &liveAuthd{t: a.t, db: a.db, clock: a.clock, secret: a.secret}
	s.start(a.db)
	return s
}

func (a *liveAuthd) start(db *storagetest.DB) {
	t := a.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a.srv = httptest.NewUnstartedServer(nil)
	a.issuer = "http://" + a.srv.Listener.Addr().String()
	log := zap.NewNop()
	hasher, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.store = fositestore.New(db.Pool, fositestore.Options{})
	a.accts = accounts.New(db.Pool, hasher, log, accounts.Config{Revoker: a.store})
	a.keys, err = keys.NewManager(db.Pool, a.secret, keys.Config{Now: a.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.keys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ui, err := loginui.New(a.secret, false, log)
	if err != nil {
		t.Fatal(err)
	}
	a.prov, err = oauth.New(oauth.Config{Issuer: a.issuer, SecretsKey: a.secret, RefreshReuseWindow: 10 * time.Second},
		db.Pool, a.store, a.keys, a.accts, ui, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	lh, err := ledger.NewHandler(db.Pool, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.ledger = lh.Ledger()
	r := mux.NewRouter()
	a.prov.Mount(r)
	g := &authn.Guard{Verifier: a.prov, Audience: a.issuer, Clients: a.prov}
	tbl := authn.NewTable()
	lh.Mount(authn.NewRouter(r.PathPrefix("/api/v1").Subrouter(), g, tbl),
		authn.NewRouter(r.PathPrefix("/admin/v1").Subrouter(), g, tbl))
	a.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/.well-known/jwks.json" {
			a.jwksHit.Add(1)
		}
		r.ServeHTTP(w, req)
	})
	a.srv.Start()
	t.Cleanup(a.srv.Close)
}

// mustUser creates a verified user with roles and returns its id.
func (a *liveAuthd) mustUser(email, password string, roles ...string) string {
	a.t.Helper()
	u, err := a.accts.CreateUser(context.Background(), accounts.NewUser{Email: email, Password: password,
		Name: email, Roles: roles, Verified: true}, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	return u.ID
}

// mustClient registers c, with resource servers' own scopes such as
// notes:read, and returns its new secret.
func (a *liveAuthd) mustClient(c fositestore.Client) (id, secret string) {
	a.t.Helper()
	reg := clients.NewRegistry(a.store)
	spec := clients.Spec{Name: "kit test", GrantTypes: c.GrantTypes, FirstParty: c.FirstParty, Audience: c.Audience, Scopes: c.Scopes}
	created, secret, err := reg.CreateClient(context.Background(), spec)
	if err != nil {
		a.t.Fatal(err)
	}
	return created.ID, secret
}

// token posts form to the token endpoint as client id and returns the
// access and refresh tokens.
func (a *liveAuthd) token(id, secret string, form url.Values) (access, refresh string) {
	a.t.Helper()
	st, out := a.post("/oauth2/token", id, secret, form)
	if st != http.StatusOK {
		a.t.Fatalf("token %v: %d %v", form.Get("grant_type"), st, out)
	}
	access, _ = out["access_token"].(string)
	refresh, _ = out["refresh_token"].(string)
	return access, refresh
}

// passwordToken is a user token from the first-party password grant.
func (a *liveAuthd) passwordToken(id, secret, email, password, scope, audience string) (access, refresh string) {
	form := url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}, "scope": {scope}}
	if audience != "" {
		form.Set("audience", audience)
	}
	return a.token(id, secret, form)
}

func (a *liveAuthd) post(path, id, secret string, form url.Values) (int, map[string]any) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(body, &out)
	return resp.StatusCode, out
}

// rotate rotates the signing keys now: the clock first passes the time a
// pre-published key must be visible (so Rotate does not defer).
func (a *liveAuthd) rotate() {
	a.t.Helper()
	a.clock.Advance(keys.DefaultPollInterval + keys.DefaultJWKSMaxAge + time.Second)
	if err := a.keys.Rotate(context.Background()); err != nil {
		a.t.Fatal(err)
	}
}
