package oauth_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/testkit"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

const (
	userEmail    = "alice@example.com"
	userPassword = "correct horse battery staple"
	redirectURI  = "http://127.0.0.1:9/cb"
)

// env is one authd instance on a real loopback HTTP server, wired like
// production: oauth + accounts + loginui on a mux.Router.
type env struct {
	t        *testing.T
	db       *storagetest.DB
	srv      *httptest.Server
	issuer   string
	clock    *testkit.Clock
	store    *fositestore.Store
	keys     *keys.Manager
	prov     *oauth.Provider
	accts    *accounts.Service
	clients  *clients.Registry
	userID   string
	secret   []byte
	mountFns []func(r *mux.Router, e *env)
}

// newEnv starts an instance on a fresh database. extra mounts more routes
// (the demo) before the server starts.
func newEnv(t *testing.T, extra ...func(r *mux.Router, e *env)) *env {
	t.Helper()
	db := storagetest.NewDB(t)
	e := &env{t: t, db: db, clock: &testkit.Clock{}, secret: make([]byte, 32), mountFns: extra}
	_, _ = rand.Read(e.secret)
	e.start(db)
	u, err := e.accts.CreateUser(context.Background(), accounts.NewUser{Email: userEmail, Password: userPassword,
		Name: "Alice", Roles: []string{"admin"}, Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.userID = u.ID
	return e
}

// sibling starts a second instance (another replica) on the same database.
func (e *env) sibling() *env {
	s := &env{t: e.t, db: e.db, clock: e.clock, secret: e.secret, userID: e.userID}
	s.start(e.db)
	return s
}

func (e *env) start(db *storagetest.DB) {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.Listener.Close()
	e.srv.Listener = ln
	e.issuer = "http://" + ln.Addr().String()
	log := zap.NewNop()

	hasher, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.accts = accounts.New(db.Pool, hasher, log, accounts.Config{})
	e.store = fositestore.New(db.Pool, fositestore.Options{Now: e.clock.Now})
	e.keys, err = keys.NewManager(db.Pool, e.secret, keys.Config{Now: e.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ui, err := loginui.New(e.secret, false, log)
	if err != nil {
		t.Fatal(err)
	}
	e.prov, err = oauth.New(oauth.Config{Issuer: e.issuer, SecretsKey: e.secret, RefreshReuseWindow: 10 * time.Second},
		db.Pool, e.store, e.keys, e.accts, ui, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.clients = e.prov.Clients()
	r := mux.NewRouter()
	e.prov.Mount(r)
	(&loginui.Login{UI: ui, Accounts: e.accts, Requirements: e.prov}).Mount(r)
	e.prov.MountUserinfo(authn.NewRouter(r, &authn.Guard{Verifier: e.prov, Audience: e.issuer, Clients: e.prov,
		Deny: e.prov.DenyBearer}, authn.NewTable()))
	r.PathPrefix("/static/").Handler(loginui.Static())
	for _, f := range e.mountFns {
		f(r, e)
	}
	e.srv.Config.Handler = r
	e.srv.Start()
	t.Cleanup(e.srv.Close)
}

// mustClient registers a client and returns it with its secret.
func (e *env) mustClient(spec clients.Spec) (*fositestore.Client, string) {
	e.t.Helper()
	if spec.Name == "" {
		spec.Name = "Test app"
	}
	c, secret, err := e.clients.CreateClient(context.Background(), spec)
	if err != nil {
		e.t.Fatalf("create client: %v", err)
	}
	return c, secret
}

// webClient is a confidential code-flow client with every user scope.
func (e *env) webClient() (*fositestore.Client, string) {
	return e.mustClient(clients.Spec{RedirectURIs: []string{redirectURI},
		GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes:     []string{"openid", "profile", "email", "roles", "offline_access", "credits:read"}})
}

// browser is a cookie-keeping HTTP client that stops at the client's
// redirect URI instead of fetching it.
type browser struct {
	t *testing.T
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), "http://127.0.0.1:9/") {
			return nil
		}
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hidden returns a page's hidden form fields.
func hidden(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// login posts the login form found on page.
func (b *browser) login(base, page, email, password string) (*http.Response, string) {
	b.t.Helper()
	f := hidden(page)
	if f.Get("csrf_token") == "" {
		b.t.Fatalf("no login form on page:\n%s", page)
	}
	f.Set("email", email)
	f.Set("password", password)
	return b.post(base+"/login", f)
}

// consent posts the consent form found on page with decision.
func (b *browser) consent(base, page, decision string) (*http.Response, string) {
	b.t.Helper()
	f := hidden(page)
	if f.Get("return_to") == "" {
		b.t.Fatalf("no consent form on page:\n%s", page)
	}
	f.Set("decision", decision)
	return b.post(base+"/consent", f)
}

// authorize walks authURL through login and consent and returns the query
// of the final redirect to the client.
func (e *env) authorize(b *browser, authURL string) url.Values {
	e.t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/login"`) {
		resp, page = b.login(e.issuer, page, userEmail, userPassword)
	}
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/consent"`) {
		resp, page = b.consent(e.issuer, page, "allow")
	}
	return redirectQuery(e.t, resp, page)
}

func redirectQuery(t *testing.T, resp *http.Response, page string) url.Values {
	t.Helper()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http://127.0.0.1:9/cb") {
		t.Fatalf("expected a redirect to the client, got %d Location=%q\n%s", resp.StatusCode, loc, page)
	}
	u, _ := url.Parse(loc)
	return u.Query()
}

// tokenRequest posts form to the token endpoint (basic auth when id != "")
// and decodes the JSON answer.
func (e *env) tokenRequest(id, secret string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	return e.postJSON("/oauth2/token", id, secret, form)
}

func (e *env) postJSON(path, id, secret string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	body, _ := io.ReadAll(resp.Body)
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			e.t.Fatalf("%s: %d non-JSON body %q", path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, out
}

func (e *env) introspect(id, secret, token string) map[string]any {
	e.t.Helper()
	st, out := e.postJSON("/oauth2/introspect", id, secret, url.Values{"token": {token}})
	if st != http.StatusOK {
		e.t.Fatalf("introspect: %d %v", st, out)
	}
	return out
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	return verifier, s256(verifier)
}

func randString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
