package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/federation"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/oauth/clients"
)

// The federation tests run two real authd applications: "up" is the
// upstream identity provider (at 127.0.0.1), "down" logs people in with it
// (at localhost, so the two keep their cookies apart in one browser).

// hookSink records the webhook events delivered to it.
type hookSink struct {
	mu     sync.Mutex
	events []map[string]any
}

func (h *hookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	ev := map[string]any{}
	_ = json.Unmarshal(b, &ev)
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

func (h *hookSink) count(typ, email string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, ev := range h.events {
		d, _ := ev["data"].(map[string]any)
		if ev["type"] == typ && d["email"] == email {
			n++
		}
	}
	return n
}

type fedEnv struct {
	up, down     *secEnv
	hooks        *hookSink
	clientSecret string
	provider     *federation.Provider
}

func newFedEnv(t *testing.T, downEnv ...string) *fedEnv {
	t.Helper()
	hooks := &hookSink{}
	hs := httptest.NewServer(hooks)
	t.Cleanup(hs.Close)
	up := newSecEnvAt(t, "127.0.0.1")
	down := newSecEnv(t, append([]string{"AUTHD_WEBHOOK_URL=" + hs.URL, "AUTHD_WEBHOOK_SECRET=whsec-federation-test-0123456789"}, downEnv...)...)
	// down is an ordinary first-party client of up.
	id, secret := up.mustClient(clients.Spec{Name: "down", FirstParty: true,
		RedirectURIs: []string{down.URL + federation.CallbackPath("upstream")},
		GrantTypes:   []string{"authorization_code"}, Scopes: []string{"openid", "email", "profile"}})
	p, err := down.app.upstreams.Create(context.Background(), audit.Event{ActorType: audit.ActorSystem}, federation.Spec{
		Slug: "upstream", DisplayName: "Upstream ID", Issuer: up.URL, ClientID: id, ClientSecret: secret, AllowSignup: true})
	if err != nil {
		t.Fatal(err)
	}
	return &fedEnv{up: up, down: down, hooks: hooks, clientSecret: secret, provider: p}
}

// fedBrowser follows every redirect (both servers) and keeps cookies.
func (f *fedEnv) browser() *secBrowser {
	b := f.down.browser()
	b.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), f.up.URL) && !strings.HasPrefix(req.URL.String(), f.down.URL) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// startLogin clicks the provider's button on down's login page and, at up,
// logs in as email; it returns down's answer to the callback.
func (f *fedEnv) login(t *testing.T, b *secBrowser, slug, email string) (*http.Response, string) {
	t.Helper()
	_, page := b.get(f.down.URL + "/login")
	form := buttonForm(t, page, slug)
	resp, page := b.post(f.down.URL+"/login/federated/start", form)
	if resp.Request.URL.Host == mustHost(f.up.URL) && strings.Contains(page, `action="/login"`) {
		resp, page = b.login(f.up.URL, page, email)
	}
	return resp, page
}

func mustHost(u string) string { x, _ := url.Parse(u); return x.Host }

// buttonForm returns the hidden fields of the "continue with" form of slug.
func buttonForm(t *testing.T, page, slug string) url.Values {
	t.Helper()
	for _, chunk := range strings.Split(page, "<form") {
		if strings.Contains(chunk, `action="/login/federated/start"`) && strings.Contains(chunk, `value="`+slug+`"`) {
			return secHidden(chunk)
		}
	}
	t.Fatalf("no button for %s on page:\n%s", slug, page)
	return nil
}

func (f *fedEnv) loggedInAs(t *testing.T, b *secBrowser) string {
	t.Helper()
	resp, page := b.get(f.down.URL + "/account")
	if resp.Request.URL.Path != "/account" {
		return ""
	}
	for _, u := range []string{"alice@example.com", "bob@example.com", "victim@example.com", "carol@example.com"} {
		if strings.Contains(page, u) {
			return u
		}
	}
	return "?"
}

func idTokenClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return out
}

func TestFederation_FirstLoginCreatesUserSecondReusesIt(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")

	b := f.browser()
	resp, page := f.login(t, b, "upstream", "alice@example.com")
	if resp.Request.URL.String() != f.down.URL+"/account" {
		t.Fatalf("first login ended at %s (%d):\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	u, err := f.down.accts.UserByEmail(context.Background(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !u.EmailVerified || len(u.Roles) != 1 || u.Roles[0] != "user" || u.HasPassword() {
		t.Fatalf("created user: verified=%v roles=%v password=%v", u.EmailVerified, u.Roles, u.HasPassword())
	}
	if n := f.down.count(`SELECT count(*) FROM user_identities WHERE user_id = $1`, u.ID); n != 1 {
		t.Fatalf("%d identities", n)
	}
	if n := f.down.count(`SELECT count(*) FROM browser_sessions WHERE user_id = $1 AND 'fed' = ANY(amr)`, u.ID); n != 1 {
		t.Fatalf("%d upstream sessions", n)
	}
	// The same outbox as a password registration delivers user.registered;
	// no verification mail for an address the upstream verified.
	testkit.Eventually(t, 10*time.Second, "user.registered webhook", func() bool { return f.hooks.count("user.registered", "alice@example.com") == 1 })
	if n := f.down.count(`SELECT count(*) FROM outbox WHERE kind = 'mail' AND payload->>'to' = 'alice@example.com'`); n != 0 {
		t.Fatalf("%d mails to a verified address", n)
	}

	// Tokens: authd's own, amr says fed.
	id, secret := f.down.webClient()
	tok := f.down.tokens(b, id, secret, "alice@example.com")
	claims := idTokenClaims(t, tok["id_token"].(string))
	if amr, _ := claims["amr"].([]any); len(amr) != 1 || amr[0] != "fed" {
		t.Fatalf("amr = %v", claims["amr"])
	}
	if claims["iss"] != f.down.URL || claims["sub"] != u.ID {
		t.Fatalf("id token iss=%v sub=%v", claims["iss"], claims["sub"])
	}

	// A second login, in another browser, reuses the account.
	b2 := f.browser()
	resp, page = f.login(t, b2, "upstream", "alice@example.com")
	if resp.Request.URL.String() != f.down.URL+"/account" {
		t.Fatalf("second login ended at %s:\n%s", resp.Request.URL, page)
	}
	if n := f.down.count(`SELECT count(*) FROM users WHERE email = 'alice@example.com'`); n != 1 {
		t.Fatalf("%d users", n)
	}
	if n := f.down.count(`SELECT count(*) FROM user_identities`); n != 1 {
		t.Fatalf("%d identities after the second login", n)
	}
	if n := f.down.count(`SELECT count(*) FROM outbox WHERE type = 'user.registered'`); n != 1 {
		t.Fatalf("%d user.registered events", n)
	}

	// Logging out of down needs nothing of up.
	_, page = b2.get(f.down.URL + "/account")
	resp, _ = b2.post(f.down.URL+"/logout", url.Values{"csrf_token": {secHidden(page).Get("csrf_token")}})
	if resp.StatusCode != http.StatusOK || f.loggedInAs(t, b2) != "" {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
}

func TestFederation_ExistingAccountNeedsProof(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("bob@example.com")
	bob := f.down.mustUser("bob@example.com")

	b := f.browser()
	resp, page := f.login(t, b, "upstream", "bob@example.com")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/login/federated/link"`) {
		t.Fatalf("expected the proof page, got %d %s:\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	if who := f.loggedInAs(t, b); who != "" {
		t.Fatalf("logged in as %s before proving the account", who)
	}
	if n := f.down.count(`SELECT count(*) FROM user_identities`); n != 0 {
		t.Fatal("linked silently on a matching email")
	}
	form := secHidden(page)

	t.Run("ErrCSRFMissing", func(t *testing.T) {
		resp, _ := b.post(f.down.URL+"/login/federated/link", url.Values{"password": {secUserPass}})
		if resp.StatusCode != http.StatusForbidden || f.down.count(`SELECT count(*) FROM user_identities`) != 0 {
			t.Fatalf("without CSRF: %d", resp.StatusCode)
		}
	})
	t.Run("ErrOtherBrowser", func(t *testing.T) {
		// Another browser holds no pending link: the password alone links nothing.
		other := f.browser()
		_, p := other.get(f.down.URL + "/login")
		resp, _ := other.post(f.down.URL+"/login/federated/link", url.Values{"csrf_token": {secHidden(p).Get("csrf_token")}, "password": {secUserPass}})
		if resp.StatusCode != http.StatusBadRequest || f.down.count(`SELECT count(*) FROM user_identities`) != 0 {
			t.Fatalf("other browser: %d", resp.StatusCode)
		}
	})
	t.Run("ErrWrongPassword", func(t *testing.T) {
		form.Set("password", "not-the-password-123")
		resp, _ := b.post(f.down.URL+"/login/federated/link", form)
		if resp.StatusCode != http.StatusUnauthorized || f.down.count(`SELECT count(*) FROM user_identities`) != 0 {
			t.Fatalf("wrong password: %d", resp.StatusCode)
		}
	})
	t.Run("OK", func(t *testing.T) {
		form.Set("password", secUserPass)
		resp, page := b.post(f.down.URL+"/login/federated/link", form)
		if resp.Request.URL.String() != f.down.URL+"/account" {
			t.Fatalf("link ended at %s:\n%s", resp.Request.URL, page)
		}
		if n := f.down.count(`SELECT count(*) FROM user_identities WHERE user_id = $1`, bob.ID); n != 1 {
			t.Fatalf("%d identities", n)
		}
		if n := f.down.count(`SELECT count(*) FROM audit_events WHERE type = 'user.identity_linked' AND outcome = 'success' AND target_id = $1`, bob.ID); n != 1 {
			t.Fatalf("%d link audit events", n)
		}
		if !strings.Contains(page, "Upstream ID") || !strings.Contains(page, "/account/identities/unlink") {
			t.Fatalf("account page does not list the identity:\n%s", page)
		}
		// Next time the identity logs bob in directly.
		resp, _ = f.login(t, f.browser(), "upstream", "bob@example.com")
		if resp.Request.URL.String() != f.down.URL+"/account" {
			t.Fatalf("second login ended at %s", resp.Request.URL)
		}
	})
}

func TestFederation_UnverifiedEmailCannotReachExistingAccount(t *testing.T) {
	f := newFedEnv(t)
	// The upstream asserts victim's address without having verified it.
	if _, err := f.up.accts.CreateUser(context.Background(), accounts.NewUser{Email: "victim@example.com", Password: secUserPass}, nil); err != nil {
		t.Fatal(err)
	}
	victim := f.down.mustUser("victim@example.com")
	b := f.browser()
	resp, page := f.login(t, b, "upstream", "victim@example.com")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "email_unverified") {
		t.Fatalf("expected a refusal, got %d:\n%s", resp.StatusCode, page)
	}
	if strings.Contains(page, `action="/login/federated/link"`) {
		t.Fatal("an unverified address was offered the link page")
	}
	if who := f.loggedInAs(t, b); who != "" {
		t.Fatalf("logged in as %s", who)
	}
	if n := f.down.count(`SELECT count(*) FROM user_identities WHERE user_id = $1`, victim.ID); n != 0 {
		t.Fatal("linked to the victim")
	}
}

func TestFederation_UpstreamKeyRotationFollowed(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")
	if resp, page := f.login(t, f.browser(), "upstream", "alice@example.com"); resp.Request.URL.Path != "/account" {
		t.Fatalf("first login: %s\n%s", resp.Request.URL, page)
	}
	_, jwks := get(t, f.up.URL+"/.well-known/jwks.json")
	ctx := context.Background()
	active := func() string {
		var kid string
		_ = f.up.db.Pool.QueryRow(ctx, `SELECT kid FROM signing_keys WHERE alg = 'RS256' AND activates_at <= now() AND retires_at > now()
			ORDER BY generation DESC LIMIT 1`).Scan(&kid)
		return kid
	}
	// Rotate until the ID-token key is one down has never seen in the JWKS
	// it fetched (the pre-published next key was in it): that makes
	// go-oidc refetch on the unknown kid.
	for i := 0; i < 4 && strings.Contains(jwks, active()); i++ {
		if _, err := f.up.db.Pool.Exec(ctx, `UPDATE signing_keys SET created_at = created_at - interval '1 day'`); err != nil {
			t.Fatal(err)
		}
		if err := f.up.app.keys.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(jwks, active()) {
		t.Fatal("rotation did not bring a new key")
	}
	resp, page := f.login(t, f.browser(), "upstream", "alice@example.com")
	if resp.Request.URL.Path != "/account" {
		t.Fatalf("login after rotation: %d %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
}

func TestFederation_UpstreamFailuresShowRetryPage(t *testing.T) {
	f := newFedEnv(t, "AUTHD_UPSTREAM_TIMEOUT=1s")
	ctx := context.Background()
	// down: a closed port.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	// slow: holds every request until the test ends.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	// garbage: discovery that is not JSON.
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html>not a discovery document</html>")
	}))
	t.Cleanup(garbage.Close)
	for _, c := range []struct{ slug, issuer string }{{"closed", closed}, {"slow", slow.URL}, {"garbage", garbage.URL}} {
		if _, err := f.down.app.upstreams.Create(ctx, audit.Event{}, federation.Spec{Slug: c.slug, Issuer: c.issuer,
			ClientID: "x", ClientSecret: "secret-" + c.slug, AllowSignup: true}); err != nil {
			t.Fatal(err)
		}
		t.Run(c.slug, func(t *testing.T) {
			b := f.browser()
			_, page := b.get(f.down.URL + "/login")
			start := time.Now()
			resp, page := b.post(f.down.URL+"/login/federated/start", buttonForm(t, page, c.slug))
			if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "Try again") || !strings.Contains(page, "upstream_unavailable") {
				t.Fatalf("got %d:\n%s", resp.StatusCode, page)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s", d)
			}
		})
	}
	// Upstream secrets, codes and tokens never reach the logs.
	b := f.browser()
	f.up.mustUser("alice@example.com")
	f.login(t, b, "upstream", "alice@example.com")
	logs := f.down.logs.String()
	for _, secret := range []string{f.clientSecret, "secret-closed", "secret-slow", "secret-garbage", "eyJ"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(logs, "upstream login failed") {
		t.Error("the failures were not logged at all")
	}
}

// TestCLI_ProviderCreateUsedByServer: a provider registered with the CLI
// (secret from stdin) is one the running server logs people in with: both
// derive the same sealing key from AUTHD_SECRETS_KEY.
func TestCLI_ProviderCreateUsedByServer(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")
	id, secret := f.up.mustClient(clients.Spec{Name: "down via cli", FirstParty: true,
		RedirectURIs: []string{f.down.URL + federation.CallbackPath("corp")},
		GrantTypes:   []string{"authorization_code"}, Scopes: []string{"openid", "email", "profile"}})
	env := map[string]string{"AUTHD_DATABASE_URL": f.down.db.URL, "AUTHD_SECRETS_KEY": secTestKey, "AUTHD_ISSUER": f.down.URL}
	out, err := runCLI(t, env, secret+"\n", "provider", "create", "--output", "json", "--slug", "corp", "--name", "Corp SSO",
		"--issuer", f.up.URL, "--client-id", id, "--allow-signup")
	if err != nil {
		t.Fatal(err)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["callback_url"] != f.down.URL+"/login/federated/corp/callback" {
		t.Fatalf("create: %s %v", out, err)
	}
	if strings.Contains(out, secret) {
		t.Fatal("the CLI printed the secret")
	}
	if out, err = runCLI(t, env, "", "provider", "list"); err != nil || !strings.Contains(out, "Corp SSO") {
		t.Fatalf("list: %s %v", out, err)
	}
	resp, page := f.login(t, f.browser(), "corp", "alice@example.com")
	if resp.Request.URL.String() != f.down.URL+"/account" {
		t.Fatalf("login through the CLI's provider ended at %s:\n%s", resp.Request.URL, page)
	}
	// Disabled: no button, and a started login is refused.
	if _, err := runCLI(t, env, "", "provider", "update", "corp", "--disable"); err != nil {
		t.Fatal(err)
	}
	if _, page := f.browser().get(f.down.URL + "/login"); strings.Contains(page, "Corp SSO") {
		t.Fatal("a disabled provider is still on the login page")
	}
	if _, err := runCLI(t, env, "", "provider", "create", "--slug", "empty", "--issuer", f.up.URL, "--client-id", "x"); err == nil {
		t.Fatal("created a provider without a secret")
	}
}

// TestFederation_AppLoginThroughUpstream: an app's authorization request
// survives the detour through the upstream: login page button, upstream
// login, back to the authorization request, consent, code, tokens.
func TestFederation_AppLoginThroughUpstream(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")
	id, secret := f.down.webClient()
	verifier, challenge := secPKCE()
	b := f.browser()
	resp, page := b.get(secAuthURL(f.down.URL, id, challenge, url.Values{"scope": {"openid email"}}))
	if resp.Request.URL.Path != "/login" {
		t.Fatalf("not sent to log in: %s", resp.Request.URL)
	}
	form := buttonForm(t, page, "upstream")
	if !strings.HasPrefix(form.Get("return_to"), "/oauth2/auth?") {
		t.Fatalf("the button lost the authorization request: %q", form.Get("return_to"))
	}
	resp, page = b.post(f.down.URL+"/login/federated/start", form)
	resp, page = b.login(f.up.URL, page, "alice@example.com")
	if !strings.Contains(page, `action="/consent"`) {
		t.Fatalf("expected down's consent page, got %d %s:\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	cf := secHidden(page)
	cf.Set("decision", "allow")
	resp, _ = b.post(f.down.URL+"/consent", cf)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	st, out := f.down.exchange(id, secret, code, verifier)
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, out)
	}
	claims := idTokenClaims(t, out["id_token"].(string))
	if claims["email"] != "alice@example.com" || claims["email_verified"] != true || toJSON(claims["amr"]) != `["fed"]` {
		t.Fatalf("id token claims: %v", claims)
	}
}
