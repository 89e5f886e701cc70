package loginui_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/passkey"
	loginui "github.com/authd/authd/login-ui"
)

// passkeySite is the hosted pages with passkeys on. WebAuthn refuses an IP
// address as relying party, so the browser uses http://localhost:PORT (a
// secure context) and the issuer is that URL.
type passkeySite struct {
	*site
	base string // http://localhost:PORT
	svc  *passkey.Service
}

func newPasskeySite(t *testing.T) *passkeySite {
	t.Helper()
	ps := &passkeySite{}
	var pages *loginui.PasskeyPages
	ps.site = newSite(t, siteOpts{pages: func(p *loginui.AccountPages, s *site) {
		ps.base = strings.Replace(s.url, "127.0.0.1", "localhost", 1)
		svc, err := passkey.New(passkey.Config{Issuer: ps.base}, s.accts)
		if err != nil {
			t.Fatal(err)
		}
		ps.svc = svc
		s.ui.EnablePasskeys()
		s.accts.AddFactor(svc.Factor(s.accts))
		pages = &loginui.PasskeyPages{UI: s.ui, Accounts: s.accts, Passkeys: svc, Log: zap.NewNop(),
			Login: &loginui.Login{UI: s.ui, Accounts: s.accts}}
		p.Passkeys = pages
	}, mount: func(r *mux.Router, s *site) {
		login := pages.Login
		r.Handle("/login", login)
		r.HandleFunc("/login/mfa", login.SecondStep)
		r.HandleFunc("/logout", login.Logout)
		pages.Mount(r)
	}})
	return ps
}

// virtualAuthenticator gives the browser a platform authenticator (CTAP2,
// internal transport) that stores discoverable credentials and verifies
// the user, through the DevTools WebAuthn domain.
func virtualAuthenticator(t *testing.T, ctx context.Context) cdpwebauthn.AuthenticatorID {
	t.Helper()
	id, err := chromedp.Run(ctx, chromedp.Action[cdpwebauthn.AuthenticatorID](func(ctx context.Context, tg *chromedp.Target) (cdpwebauthn.AuthenticatorID, error) {
		if _, err := cdp.Call(ctx, tg, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
			return "", err
		}
		res, err := cdp.Call(ctx, tg, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
			Options: &cdpwebauthn.VirtualAuthenticatorOptions{
				Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21,
				Transport: cdpwebauthn.AuthenticatorTransportInternal, HasResidentKey: true, HasUserVerification: true,
				IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		return res.AuthenticatorID, err
	}))
	if err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	return id
}

func header(resp *network.Response, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// assertScriptCSP checks the CSP of a passkey page: the one same-origin
// script, nothing inline, no eval.
func assertScriptCSP(t *testing.T, resp *network.Response) {
	t.Helper()
	csp := header(resp, "Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("passkey page CSP = %q", csp)
	}
}

func navigate(t *testing.T, ctx context.Context, u string) *network.Response {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(u))
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	return resp
}

func clickFor(t *testing.T, ctx context.Context, sel string) *network.Response {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
	return resp
}

// TestBrowser_PasskeyRegisterAndLogin: a user adds a passkey on
// /account/passkeys (JavaScript, the virtual authenticator), is mailed,
// logs out and logs in with the passkey alone; the passkey pages carry
// the script CSP, the others none.
func TestBrowser_PasskeyRegisterAndLogin(t *testing.T) {
	s := newPasskeySite(t)
	ctx := context.Background()
	u, err := s.accts.CreateUser(ctx, accounts.NewUser{Email: "pat@example.com", Password: pw1, Name: "Pat", Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	virtualAuthenticator(t, b)

	resp := navigate(t, b, s.base+"/login")
	assertScriptCSP(t, resp)
	screenshot(t, b, "passkey-login")
	fill(t, b, "email", u.Email, "password", pw1)
	submit(t, b, "/login")
	mustContain(t, b, "Your account")

	resp = navigate(t, b, s.base+"/account/passkeys")
	assertScriptCSP(t, resp)
	mustContain(t, b, "You have no passkeys yet", "Add a passkey")
	screenshot(t, b, "passkeys-empty")
	fill(t, b, "passkey_name", "Laptop")
	if resp := clickFor(t, b, `form[action="/account/passkeys/add"] button[type=submit]`); resp.Status != 200 {
		t.Fatalf("add: status %d", resp.Status)
	}
	mustContain(t, b, "Your passkey was added", "Signs in without a password")
	screenshot(t, b, "passkeys-added")
	s.mailTo(u.Email, "A passkey was added to your account")

	list, err := s.accts.Passkeys(ctx, u.ID, s.svc.RPID())
	if err != nil || len(list) != 1 || !list[0].Passwordless || !list[0].UserVerified() || list[0].Transports == nil {
		t.Fatalf("stored passkeys: %+v, %v", list, err)
	}

	// The account page itself stays script-free.
	resp = navigate(t, b, s.base+"/account")
	if csp := header(resp, "Content-Security-Policy"); strings.Contains(csp, "script-src") {
		t.Fatalf("/account allows scripts: %q", csp)
	}
	mustContain(t, b, "You have 1 passkey.", "Manage passkeys")
	screenshot(t, b, "account-passkeys-summary")
	submit(t, b, "/logout")
	mustContain(t, b, "You have been logged out")

	navigate(t, b, s.base+"/login?return_to=%2Faccount")
	if resp := clickFor(t, b, `form[action="/login/passkey"] button[type=submit]`); resp.Status != 200 {
		t.Fatalf("passkey login: status %d", resp.Status)
	}
	mustContain(t, b, "Your account", "pat@example.com")
	screenshot(t, b, "passkey-logged-in")
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE type = 'user.login_passkey' AND actor_id = $1 AND details->>'method' = 'passkey' AND details->'amr' = '["hwk", "mfa"]'::jsonb`, u.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("passkey login audit rows: %d, %v", n, err)
	}
	list, _ = s.accts.Passkeys(ctx, u.ID, s.svc.RPID())
	if list[0].LastUsedAt == nil {
		t.Fatal("last use not recorded")
	}

	// Renaming and removing work without JavaScript (plain forms).
	navigate(t, b, s.base+"/account/passkeys")
	fill(t, b, "name-"+list[0].ID, "Work laptop")
	submit(t, b, "/account/passkeys/rename")
	mustContain(t, b, "The passkey was renamed")
	submit(t, b, "/account/passkeys/delete")
	mustContain(t, b, "The passkey was removed", "You have no passkeys yet")
	s.mailTo(u.Email, "A passkey was removed from your account")
}

// browserClient is an attacker's (or a script's) plain HTTP client on the
// site, without the browser's cookies.
type browserClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newClient(t *testing.T, base string) *browserClient {
	jar, _ := cookiejar.New(nil)
	return &browserClient{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *browserClient) csrf(path string) string {
	c.t.Helper()
	resp, err := c.c.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := csrfFieldRE.FindStringSubmatch(string(b))
	if m == nil {
		c.t.Fatalf("no CSRF token on %s (%d)", path, resp.StatusCode)
	}
	return m[1]
}

func (c *browserClient) post(path string, f url.Values) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.c.PostForm(c.base+path, f)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *browserClient) login(email, password string) {
	c.t.Helper()
	resp, _ := c.post("/login", url.Values{"csrf_token": {c.csrf("/login")}, "email": {email}, "password": {password}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("login: %d", resp.StatusCode)
	}
}

// cookie returns the value of the client's cookie name.
func (c *browserClient) cookie(name string) string {
	u, _ := url.Parse(c.base)
	for _, k := range c.c.Jar.Cookies(u) {
		if k.Name == name {
			return k.Value
		}
	}
	return ""
}

// assertWith asks the browser's authenticator to answer options (the JSON
// authd sent, possibly altered by the caller) and returns the credential
// JSON, as the page script would post it.
func assertWith(t *testing.T, ctx context.Context, options json.RawMessage) string {
	t.Helper()
	js := `(async () => { const o = ` + string(options) + `;
		const c = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o.publicKey) });
		return JSON.stringify(c.toJSON()); })()`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("navigator.credentials.get: %v", err)
	}
	return out
}

// registerInBrowser gives u a passkey through the pages, in browser b.
func registerInBrowser(t *testing.T, s *passkeySite, b context.Context, email, name string) {
	t.Helper()
	navigate(t, b, s.base+"/login")
	fill(t, b, "email", email, "password", pw1)
	submit(t, b, "/login")
	navigate(t, b, s.base+"/account/passkeys")
	fill(t, b, "passkey_name", name)
	clickFor(t, b, `form[action="/account/passkeys/add"] button[type=submit]`)
	mustContain(t, b, "Your passkey was added")
	navigate(t, b, s.base+"/account")
	submit(t, b, "/logout")
}

// TestPasskeyLogin_Attacks: a replayed assertion, a challenge used twice,
// a counter that went backwards and another user's credential are all
// refused.
func TestPasskeyLogin_Attacks(t *testing.T) {
	s := newPasskeySite(t)
	ctx := context.Background()
	alice, err := s.accts.CreateUser(ctx, accounts.NewUser{Email: "alice@example.com", Password: pw1, Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.accts.CreateUser(ctx, accounts.NewUser{Email: "bob@example.com", Password: pw1, Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	authID := virtualAuthenticator(t, b)
	registerInBrowser(t, s, b, alice.Email, "Alice key")
	registerInBrowser(t, s, b, bob.Email, "Bob key")
	navigate(t, b, s.base+"/login") // the page whose origin the assertions carry

	// A legitimate passwordless login by a plain client, the browser only
	// answering the challenge.
	c := newClient(t, s.base)
	csrf := c.csrf("/login")
	resp, body := c.post("/login/passkey/options", url.Values{"csrf_token": {csrf}})
	if resp.StatusCode != 200 {
		t.Fatalf("options: %d %s", resp.StatusCode, body)
	}
	ceremony := c.cookie("authd_webauthn")
	assertion := assertWith(t, b, json.RawMessage(body))
	resp, _ = c.post("/login/passkey", url.Values{"csrf_token": {csrf}, "credential": {assertion}, "return_to": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("passkey login: %d", resp.StatusCode)
	}

	// Many synced passkeys keep their counter at 0, so the counter cannot
	// be what stops a replay: the single-use challenge must.
	if _, err := s.pool.Exec(ctx, `UPDATE webauthn_credentials SET sign_count = 0`); err != nil {
		t.Fatal(err)
	}
	t.Run("ReplayedAssertion_SameChallenge", func(t *testing.T) {
		a := newClient(t, s.base)
		tok := a.csrf("/login")
		u, _ := url.Parse(s.base)
		a.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authd_webauthn", Value: ceremony, Path: "/"}})
		resp, _ := a.post("/login/passkey", url.Values{"csrf_token": {tok}, "credential": {assertion}})
		if resp.StatusCode != http.StatusUnauthorized || a.cookie("authd_session") != "" {
			t.Fatalf("replay with the used ceremony: %d", resp.StatusCode)
		}
	})
	t.Run("ReplayedAssertion_FreshChallenge", func(t *testing.T) {
		a := newClient(t, s.base)
		tok := a.csrf("/login")
		if resp, _ := a.post("/login/passkey/options", url.Values{"csrf_token": {tok}}); resp.StatusCode != 200 {
			t.Fatalf("options: %d", resp.StatusCode)
		}
		resp, _ := a.post("/login/passkey", url.Values{"csrf_token": {tok}, "credential": {assertion}})
		if resp.StatusCode != http.StatusUnauthorized || a.cookie("authd_session") != "" {
			t.Fatalf("old assertion on a new challenge: %d", resp.StatusCode)
		}
	})
	t.Run("CSRFMissing_Options", func(t *testing.T) {
		a := newClient(t, s.base)
		a.csrf("/login")
		if resp, _ := a.post("/login/passkey/options", url.Values{}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("options without CSRF: %d", resp.StatusCode)
		}
	})
	t.Run("AnotherUsersCredential_SecondFactor", func(t *testing.T) {
		// Bob's second-factor ceremony answered with Alice's passkey (the
		// attacker controls the browser and edits the allow list).
		o, err := s.svc.BeginSecondFactor(ctx, bob, "")
		if err != nil {
			t.Fatal(err)
		}
		keys, _ := s.accts.Passkeys(ctx, alice.ID, s.svc.RPID())
		var opts map[string]map[string]any
		_ = json.Unmarshal(o.JSON, &opts)
		opts["publicKey"]["allowCredentials"] = []map[string]any{{"type": "public-key", "id": b64u(keys[0].CredentialID)}}
		altered, _ := json.Marshal(opts)
		cred := assertWith(t, b, altered)
		if _, err := s.svc.FinishSecondFactor(ctx, bob, "", o.Token, []byte(cred)); !errors.Is(err, passkey.ErrRejected) {
			t.Fatalf("Alice's passkey for Bob: %v", err)
		}
		// A ceremony begun for Alice does not finish for Bob either.
		o, err = s.svc.BeginSecondFactor(ctx, alice, "")
		if err != nil {
			t.Fatal(err)
		}
		cred = assertWith(t, b, o.JSON)
		if _, err := s.svc.FinishSecondFactor(ctx, bob, "", o.Token, []byte(cred)); !errors.Is(err, accounts.ErrNoCeremony) {
			t.Fatalf("Alice's ceremony finished by Bob: %v", err)
		}
	})
	t.Run("SecondFactor_OK", func(t *testing.T) {
		o, err := s.svc.BeginSecondFactor(ctx, alice, "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.svc.FinishSecondFactor(ctx, alice, "", o.Token, []byte(assertWith(t, b, o.JSON)))
		if err != nil || res.User.ID != alice.ID {
			t.Fatalf("second factor: %v", err)
		}
		if got := strings.Join(res.AMR(true), " "); got != "pwd hwk mfa" {
			t.Fatalf("amr = %q", got)
		}
	})
	// passwordlessAs runs a passwordless login offering only user's passkey
	// and returns the status.
	passwordlessAs := func(t *testing.T, user *accounts.User) (int, string) {
		t.Helper()
		a := newClient(t, s.base)
		tok := a.csrf("/login")
		_, body := a.post("/login/passkey/options", url.Values{"csrf_token": {tok}})
		keys, _ := s.accts.Passkeys(ctx, user.ID, s.svc.RPID())
		var m map[string]map[string]any
		_ = json.Unmarshal([]byte(body), &m)
		m["publicKey"]["allowCredentials"] = []map[string]any{{"type": "public-key", "id": b64u(keys[0].CredentialID)}}
		opts, _ := json.Marshal(m)
		resp, page := a.post("/login/passkey", url.Values{"csrf_token": {tok}, "credential": {assertWith(t, b, opts)}})
		return resp.StatusCode, page
	}
	t.Run("NotPasswordless_Refused", func(t *testing.T) {
		keys, _ := s.accts.Passkeys(ctx, bob.ID, s.svc.RPID())
		if err := s.accts.SetPasskeyPasswordless(ctx, bob.ID, keys[0].ID, false); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = s.accts.SetPasskeyPasswordless(ctx, bob.ID, keys[0].ID, true) }()
		if st, page := passwordlessAs(t, bob); st != http.StatusUnauthorized || !strings.Contains(page, "not set up to sign in without a password") {
			t.Fatalf("passwordless with a second-factor-only passkey: %d", st)
		}
	})
	t.Run("UserNotVerified_Refused", func(t *testing.T) {
		// The authenticator answers without the UV flag (as a stolen,
		// unlocked security key without PIN would): no passwordless login.
		setBadUV := func(bad bool) {
			_, err := chromedp.Run(b, chromedp.Action[chromedp.Void](func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
				_, err := cdp.Call(ctx, tg, cdpwebauthn.SetResponseOverrideBits, cdpwebauthn.SetResponseOverrideBitsParams{AuthenticatorID: authID, IsBadUV: &bad})
				return chromedp.Void{}, err
			}))
			if err != nil {
				t.Fatal(err)
			}
		}
		setBadUV(true)
		defer setBadUV(false)
		if st, _ := passwordlessAs(t, alice); st != http.StatusUnauthorized {
			t.Fatalf("passwordless without user verification: %d", st)
		}
	})
	t.Run("SignCountRegression_Refused", func(t *testing.T) {
		// The stored counter is ahead of the authenticator's: a clone.
		if _, err := s.pool.Exec(ctx, `UPDATE webauthn_credentials SET sign_count = 1000000 WHERE user_id = $1`, alice.ID); err != nil {
			t.Fatal(err)
		}
		a := newClient(t, s.base)
		tok := a.csrf("/login")
		_, body := a.post("/login/passkey/options", url.Values{"csrf_token": {tok}})
		opts := json.RawMessage(body)
		// Only Alice's passkey may answer.
		keys, _ := s.accts.Passkeys(ctx, alice.ID, s.svc.RPID())
		var m map[string]map[string]any
		_ = json.Unmarshal(opts, &m)
		m["publicKey"]["allowCredentials"] = []map[string]any{{"type": "public-key", "id": b64u(keys[0].CredentialID)}}
		opts, _ = json.Marshal(m)
		resp, _ := a.post("/login/passkey", url.Values{"csrf_token": {tok}, "credential": {assertWith(t, b, opts)}})
		if resp.StatusCode != http.StatusUnauthorized || a.cookie("authd_session") != "" {
			t.Fatalf("cloned passkey login: %d", resp.StatusCode)
		}
		keys, _ = s.accts.Passkeys(ctx, alice.ID, s.svc.RPID())
		if !keys[0].CloneWarning || keys[0].SignCount != 1000000 {
			t.Fatalf("after regression: clone=%v count=%d", keys[0].CloneWarning, keys[0].SignCount)
		}
	})
}

func b64u(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var sb strings.Builder
	for i := 0; i < len(b); i += 3 {
		var n uint32
		k := len(b) - i
		if k > 3 {
			k = 3
		}
		for j := 0; j < 3; j++ {
			n <<= 8
			if j < k {
				n |= uint32(b[i+j])
			}
		}
		for j := 0; j < k+1; j++ {
			sb.WriteByte(enc[(n>>(18-6*uint(j)))&63])
		}
	}
	return sb.String()
}

// TestPasskeyPages_CSRFAndOwnership: every change needs the form's CSRF
// token, and nobody can delete, rename or toggle another user's passkey.
func TestPasskeyPages_CSRFAndOwnership(t *testing.T) {
	s := newPasskeySite(t)
	ctx := context.Background()
	alice, _ := s.accts.CreateUser(ctx, accounts.NewUser{Email: "alice@example.com", Password: pw1, Verified: true}, nil)
	bob, _ := s.accts.CreateUser(ctx, accounts.NewUser{Email: "bob@example.com", Password: pw1, Verified: true}, nil)
	_ = bob
	// Alice logs in before she holds a passkey (with one, her password
	// login would owe the passkey as a second factor).
	a := newClient(t, s.base)
	a.login(alice.Email, pw1)
	other := newClient(t, s.base)
	other.login(alice.Email, pw1)
	p, err := s.accts.AddPasskey(ctx, accounts.Passkey{UserID: alice.ID, RPID: s.svc.RPID(), CredentialID: []byte("alice-cred"), Name: "Alice key",
		PublicKey: []byte{1}, Flags: accounts.PasskeyFlagUserPresent | accounts.PasskeyFlagUserVerified, Passwordless: true})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		_ = s.pool.QueryRow(ctx, `SELECT count(*) FROM webauthn_credentials WHERE id = $1 AND name = 'Alice key' AND passwordless`, p.ID).Scan(&n)
		return n
	}
	for _, path := range []string{"/account/passkeys/options", "/account/passkeys/add", "/account/passkeys/rename", "/account/passkeys/passwordless", "/account/passkeys/delete"} {
		t.Run("CSRFMissing"+strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			resp, _ := a.post(path, url.Values{"id": {p.ID}, "name": {"X"}, "on": {"0"}, "credential": {"{}"}})
			if resp.StatusCode != http.StatusForbidden || count() != 1 {
				t.Fatalf("%s without CSRF: %d", path, resp.StatusCode)
			}
			resp, _ = a.post(path, url.Values{"csrf_token": {"forged"}, "id": {p.ID}, "name": {"X"}, "on": {"0"}})
			if resp.StatusCode != http.StatusForbidden || count() != 1 {
				t.Fatalf("%s with a forged CSRF token: %d", path, resp.StatusCode)
			}
		})
	}
	m := newClient(t, s.base)
	m.login(bob.Email, pw1)
	for _, path := range []string{"/account/passkeys/rename", "/account/passkeys/passwordless", "/account/passkeys/delete"} {
		t.Run("AnotherUsersPasskey"+strings.ReplaceAll(path, "/", "_"), func(t *testing.T) {
			resp, _ := m.post(path, url.Values{"csrf_token": {m.csrf("/account/passkeys")}, "id": {p.ID}, "name": {"Mallory"}, "on": {"0"}})
			if resp.StatusCode != http.StatusNotFound || count() != 1 {
				t.Fatalf("%s on Alice's passkey by Bob: %d", path, resp.StatusCode)
			}
		})
	}
	t.Run("AddNeedsPresence", func(t *testing.T) {
		// The registration options need the current password once the
		// login is old; a wrong one is refused before any ceremony.
		resp, _ := a.post("/account/passkeys/options", url.Values{"csrf_token": {a.csrf("/account/passkeys")}, "name": {"K"}, "current_password": {"wrong password"}})
		if resp.StatusCode != http.StatusBadRequest || a.cookie("authd_webauthn") != "" {
			t.Fatalf("options with a wrong password: %d", resp.StatusCode)
		}
	})
	t.Run("AddFromAnotherSession_Refused", func(t *testing.T) {
		// A ceremony begun by one session cannot be finished by another
		// session of the same user (the cookie was stolen or planted).
		resp, _ := a.post("/account/passkeys/options", url.Values{"csrf_token": {a.csrf("/account/passkeys")}, "name": {"K"}})
		if resp.StatusCode != 200 {
			t.Fatalf("options: %d", resp.StatusCode)
		}
		u, _ := url.Parse(s.base)
		other.c.Jar.SetCookies(u, []*http.Cookie{{Name: "authd_webauthn", Value: a.cookie("authd_webauthn"), Path: "/"}})
		resp, body := other.post("/account/passkeys/add", url.Values{"csrf_token": {other.csrf("/account/passkeys")}, "name": {"K"}, "credential": {`{"id":"x"}`}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "could not be added") {
			t.Fatalf("finish from another session: %d", resp.StatusCode)
		}
		// The refusal is the binding, not the (bogus) answer: the ceremony
		// of one session is not found from another.
		sessions, _ := s.accts.Sessions(ctx, alice.ID)
		if len(sessions) < 2 {
			t.Fatalf("%d sessions", len(sessions))
		}
		o, err := s.svc.BeginRegistration(ctx, alice, sessions[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.svc.FinishRegistration(ctx, alice, sessions[1].ID, o.Token, []byte(`{"id":"x"}`), passkey.Registration{Name: "K"})
		if !errors.Is(err, accounts.ErrNoCeremony) {
			t.Fatalf("another session's ceremony: %v", err)
		}
	})
}
