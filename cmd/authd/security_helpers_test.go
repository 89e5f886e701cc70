package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zapcore"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/internal/httpx"
	"github.com/authd/authd/internal/logging"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/storagetest"
)

// The security tests (security_*_test.go, hostile_test.go, *_fuzz_test.go)
// share secEnv: the real application from buildApp, served on loopback HTTP
// by the production http.Server settings and also callable in-process (so a
// test can choose the client IP the per-IP limiters see), with every log
// line the server writes captured.

const (
	secRedirect = "http://127.0.0.1:9/cb"
	secUserPass = "correct-horse-battery-staple-9"
	secTestKey  = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

// secLogBuffer is a zapcore.WriteSyncer the tests read back.
type secLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *secLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *secLogBuffer) Sync() error { return nil }

func (l *secLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var _ zapcore.WriteSyncer = (*secLogBuffer)(nil)

type secEnv struct {
	tb      testing.TB
	URL     string
	app     *app
	db      *storagetest.DB
	logs    *secLogBuffer
	clients *clients.Registry
	accts   *accounts.Service
	reg     *prometheus.Registry
	ip      atomic.Uint32 // source of distinct in-process client IPs
}

// newSecEnv starts the application on a fresh database. env adds
// AUTHD_* settings (e.g. AUTHD_ENV=production); the issuer is always the
// loopback server's address, named localhost.
func newSecEnv(tb testing.TB, env ...string) *secEnv {
	tb.Helper()
	return newSecEnvAt(tb, "localhost", env...)
}

// newSecEnvAt is newSecEnv with the issuer's host name (a second server
// named "localhost" keeps its cookies apart from one at 127.0.0.1: browsers
// key cookies by host, not port).
func newSecEnvAt(tb testing.TB, host string, env ...string) *secEnv {
	tb.Helper()
	db := storagetest.NewDB(tb)
	cfg, err := config.FromEnv(append([]string{"AUTHD_SECRETS_KEY=" + secTestKey, "AUTHD_BCRYPT_COST=4"}, env...))
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	// The issuer is a host name by default (localhost): WebAuthn refuses an
	// IP address as relying party, and passkeys follow the issuer.
	cfg.Issuer = "http://" + host + ":" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cfg.DatabaseURL = db.URL
	logs := &secLogBuffer{}
	log, err := logging.New(logging.Options{Format: "json", Level: "debug", Output: logs})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	rt := &runtime{cfg: cfg, log: log, pool: db.Pool, reg: reg, ready: make(chan struct{}), listener: ln}
	a, err := buildApp(ctx, rt)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	srv := httpx.NewServer(a.handler, log)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-served
		cancel()
		a.wait()
		a.close()
	})
	return &secEnv{tb: tb, URL: cfg.Issuer, app: a, db: db, logs: logs, clients: a.provider.Clients(), accts: a.accounts, reg: reg}
}

// nextIP returns a client address no other request of this env used, so the
// per-IP limiters never decide an in-process test's outcome.
func (e *secEnv) nextIP() string {
	n := e.ip.Add(1)
	return fmt.Sprintf("10.%d.%d.%d:40000", byte(n>>16), byte(n>>8), byte(n))
}

// serve runs req through the application in-process from a fresh client IP.
func (e *secEnv) serve(req *http.Request) *httptest.ResponseRecorder {
	req.RemoteAddr = e.nextIP()
	if req.Body == nil {
		req.Body = http.NoBody // as the server would pass it
	}
	rec := httptest.NewRecorder()
	e.app.handler.ServeHTTP(rec, req)
	return rec
}

func (e *secEnv) mustUser(email string, roles ...string) *accounts.User {
	e.tb.Helper()
	u, err := e.accts.CreateUser(context.Background(), accounts.NewUser{Email: email, Password: secUserPass, Roles: roles, Verified: true}, nil)
	if err != nil {
		e.tb.Fatal(err)
	}
	return u
}

func (e *secEnv) mustClient(spec clients.Spec) (id, secret string) {
	e.tb.Helper()
	if spec.Name == "" {
		spec.Name = "Security test app"
	}
	c, secret, err := e.clients.CreateClient(context.Background(), spec)
	if err != nil {
		e.tb.Fatal(err)
	}
	return c.ID, secret
}

// webClient is a confidential third-party code-flow client.
func (e *secEnv) webClient() (id, secret string) {
	return e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/bye"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		Scopes:                 []string{"openid", "profile", "email", "roles", "offline_access", "credits:read", "credits:spend"}})
}

// count returns a single integer from the database.
func (e *secEnv) count(query string, args ...any) int {
	e.tb.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// postForm posts form to path over loopback HTTP with client_secret_basic
// when id is set, and returns the status, headers and decoded JSON body.
func (e *secEnv) postForm(path, id, secret string, form url.Values) (int, http.Header, map[string]any) {
	e.tb.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

// secBrowser keeps cookies and follows redirects within the server only; a
// redirect elsewhere (to a client) is returned to the test.
type secBrowser struct {
	tb testing.TB
	c  *http.Client
}

func (e *secEnv) browser() *secBrowser {
	jar, _ := cookiejar.New(nil)
	base, _ := url.Parse(e.URL)
	return &secBrowser{tb: e.tb, c: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != base.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

func (b *secBrowser) do(req *http.Request) (*http.Response, string) {
	b.tb.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *secBrowser) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *secBrowser) post(u string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *secBrowser) cookie(base, name string) string {
	u, _ := url.Parse(base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var secHiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// hidden returns a page's hidden form fields.
func secHidden(page string) url.Values {
	v := url.Values{}
	for _, m := range secHiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// login fills in the login form on page.
func (b *secBrowser) login(base, page, email string) (*http.Response, string) {
	b.tb.Helper()
	f := secHidden(page)
	if f.Get("csrf_token") == "" {
		b.tb.Fatalf("no login form on page:\n%s", page)
	}
	f.Set("email", email)
	f.Set("password", secUserPass)
	return b.post(base+"/login", f)
}

// secAuthURL is an authorization request for clientID with PKCE S256;
// extra overrides or adds parameters.
func secAuthURL(base, clientID, challenge string, extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {secRedirect},
		"scope": {"openid profile offline_access"}, "state": {"state-" + secRand()}, "nonce": {"nonce-" + secRand()},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return base + "/oauth2/auth?" + q.Encode()
}

// authorize walks authURL through login and consent as email and returns
// the redirect to the client.
func (e *secEnv) authorize(b *secBrowser, authURL, email string) *url.URL {
	e.tb.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/login"`) {
		resp, page = b.login(e.URL, page, email)
	}
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/consent"`) {
		f := secHidden(page)
		f.Set("decision", "allow")
		resp, page = b.post(e.URL+"/consent", f)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), secRedirect) {
		e.tb.Fatalf("expected a redirect to the client, got %d Location=%q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	return loc
}

// codeFor runs the code flow for clientID and returns the code and verifier.
func (e *secEnv) codeFor(b *secBrowser, clientID, email string, extra url.Values) (code, verifier string) {
	e.tb.Helper()
	verifier, challenge := secPKCE()
	loc := e.authorize(b, secAuthURL(e.URL, clientID, challenge, extra), email)
	code = loc.Query().Get("code")
	if code == "" {
		e.tb.Fatalf("no code in %s", loc)
	}
	return code, verifier
}

// exchange redeems code at the token endpoint.
func (e *secEnv) exchange(id, secret, code, verifier string) (int, map[string]any) {
	e.tb.Helper()
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {secRedirect}, "code_verifier": {verifier}})
	return st, out
}

// tokens runs the whole code flow and returns the token response.
func (e *secEnv) tokens(b *secBrowser, id, secret, email string) map[string]any {
	e.tb.Helper()
	code, verifier := e.codeFor(b, id, email, nil)
	st, out := e.exchange(id, secret, code, verifier)
	if st != http.StatusOK {
		e.tb.Fatalf("code exchange: %d %v", st, out)
	}
	return out
}

// active reports whether introspection (as clientID) says token is active.
func (e *secEnv) active(id, secret, token string) bool {
	e.tb.Helper()
	st, _, out := e.postForm("/oauth2/introspect", id, secret, url.Values{"token": {token}})
	if st != http.StatusOK {
		e.tb.Fatalf("introspect: %d %v", st, out)
	}
	return out["active"] == true
}

func secPKCE() (verifier, challenge string) {
	verifier = secRand() + secRand()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func secRand() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errSecNoBody marks a response whose error format could not be recognised.
var errSecNoBody = errors.New("no recognisable error body")

// secDescribeError checks that an error response explains itself in the format
// of its kind of endpoint: problem+json (JSON APIs), an OAuth error object
// (OAuth endpoints), an HTML page (hosted pages), or, for bearer-protected
// endpoints, a WWW-Authenticate challenge.
func secDescribeError(status int, h http.Header, body []byte) error {
	ct := h.Get("Content-Type")
	var m map[string]any
	switch {
	case strings.HasPrefix(ct, "application/problem+json"):
		if json.Unmarshal(body, &m) != nil || m["type"] == nil || m["title"] == nil || int(secFloat(m["status"])) != status {
			return fmt.Errorf("%w: bad problem document %q", errSecNoBody, body)
		}
	case strings.HasPrefix(ct, "application/json"):
		if json.Unmarshal(body, &m) != nil || (m["error"] == nil && m["active"] != false) {
			return fmt.Errorf("%w: JSON without an OAuth error %q", errSecNoBody, body)
		}
	case strings.HasPrefix(ct, "text/html"):
		if !bytes.Contains(body, []byte("<html")) && !bytes.Contains(body, []byte("<!DOCTYPE")) && !bytes.Contains(body, []byte("<!doctype")) {
			return fmt.Errorf("%w: HTML without a page %q", errSecNoBody, body)
		}
	default:
		if h.Get("WWW-Authenticate") == "" {
			return fmt.Errorf("%w: content type %q, body %q", errSecNoBody, ct, body)
		}
	}
	return nil
}

func secFloat(v any) float64 {
	f, _ := v.(float64)
	return f
}

// secLeakRE matches what must never reach a client: Go stack traces, panics,
// driver errors and SQL. Its words cannot occur by chance in random
// base64url (CSRF tokens, ids): a bare "pgx" once did.
var secLeakRE = regexp.MustCompile(`goroutine \d+ \[|panic\(|runtime/debug|\.go:\d+|pgx[:/ ]|pgconn|pgxpool|SQLSTATE|pq: |syntax error at or near|duplicate key value|/root/go/|github\.com/authd/authd/`)

// secRoute is one method and path template of the router.
type secRoute struct{ Method, Path string }

// routes lists every (method, path template) the application serves, by
// walking buildApp's own router, so new routes are covered automatically.
func (e *secEnv) routes() []secRoute {
	e.tb.Helper()
	var out []secRoute
	err := e.app.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			return nil // a path prefix (subrouter or /static/)
		}
		for _, m := range methods {
			out = append(out, secRoute{Method: m, Path: tpl})
		}
		return nil
	})
	if err != nil {
		e.tb.Fatal(err)
	}
	if len(out) < 40 {
		e.tb.Fatalf("router walk found only %d routes", len(out))
	}
	return out
}

// snapshot digests the state a refused request must not change. Left out on
// purpose: browser_sessions.last_seen_at (every authenticated read bumps it),
// login_failures (a failed login is counted, by design) and audit events
// with outcome failure (a refusal is audited, by design); those are checked
// where they matter.
func (e *secEnv) snapshot() string {
	e.tb.Helper()
	var s string
	err := e.db.Pool.QueryRow(context.Background(), `SELECT concat_ws(' | ',
		(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) FROM users t),
		(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM user_roles t),
		(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM roles t),
		(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM oauth2_clients t),
		(SELECT count(*) || '/' || count(*) FILTER (WHERE active) FROM oauth2_access),
		(SELECT count(*) || '/' || count(*) FILTER (WHERE active) FROM oauth2_refresh),
		(SELECT count(*) || '/' || count(*) FILTER (WHERE active) FROM oauth2_code),
		(SELECT count(*) FROM oauth2_pkce), (SELECT count(*) FROM oauth2_oidc),
		(SELECT count(*) FROM oauth2_consents), (SELECT count(*) FROM oauth2_jti),
		(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM ledger_accounts t),
		(SELECT count(*) FROM ledger_transactions), (SELECT count(*) FROM ledger_entries),
		(SELECT count(*) || '/' || count(*) FILTER (WHERE revoked_at IS NULL) FROM browser_sessions),
		(SELECT count(*) FROM email_tokens), (SELECT count(*) FROM outbox), (SELECT count(*) FROM signing_keys),
		(SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) FROM webauthn_credentials t),
		(SELECT count(*) FROM webauthn_ceremonies),
		(SELECT count(*) FROM audit_events WHERE outcome = 'success'))`).Scan(&s)
	if err != nil {
		e.tb.Fatalf("snapshot: %v", err)
	}
	return s
}

// firstParty is a first-party client with the password and refresh grants
// and every scope, for tests that need a bearer token quickly.
func (e *secEnv) firstParty() (id, secret string) {
	return e.mustClient(clients.Spec{Name: "console", FirstParty: true, GrantTypes: []string{"password", "refresh_token"},
		Scopes: []string{"openid", "profile", "email", "roles", "offline_access", "admin", "account", "credits:read", "credits:spend"}})
}

// passwordToken logs email in through a first-party client.
func (e *secEnv) passwordToken(id, secret, email, scope string) map[string]any {
	e.tb.Helper()
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"password"},
		"username": {email}, "password": {secUserPass}, "scope": {scope}})
	if st != http.StatusOK {
		e.tb.Fatalf("password grant for %s: %d %v", email, st, out)
	}
	return out
}

// nextIPHost is nextIP without the port.
func (e *secEnv) nextIPHost() string {
	h, _, _ := net.SplitHostPort(e.nextIP())
	return h
}
