package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
)

// The passkey as the login's second factor and as a passwordless first
// factor, in headless Chromium with a DevTools virtual authenticator, on
// the real application (issuer http://localhost:PORT, so passkeys are on).

// addAuthenticator gives b's browser a platform authenticator that keeps
// discoverable credentials and verifies its user.
func addAuthenticator(t *testing.T, b *consoleBrowser) {
	t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Action[cdpwebauthn.AuthenticatorID](func(ctx context.Context, tg *chromedp.Target) (cdpwebauthn.AuthenticatorID, error) {
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
}

// eval runs js in the page (DevTools is not bound by the page's CSP).
func eval[T any](t *testing.T, b *consoleBrowser, js string) T {
	t.Helper()
	out, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	return out
}

// browserSession returns the browser's session cookie for a plain client.
func browserSession(t *testing.T, b *consoleBrowser) string {
	t.Helper()
	res, err := chromedp.Run(b.ctx, chromedp.Action[network.GetCookiesResult](func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{})
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "authd_session" {
			return c.Value
		}
	}
	t.Fatal("the browser has no session")
	return ""
}

// registerPasskey logs email in with the password in b, adds a passkey and
// logs out.
func registerPasskey(t *testing.T, e *secEnv, b *consoleBrowser, email string) {
	t.Helper()
	b.open(e.URL + "/login")
	b.fill("email", email, "password", secUserPass)
	b.submit("/login")
	b.open(e.URL + "/account/passkeys")
	b.fill("passkey_name", "Laptop")
	b.submit("/account/passkeys/add")
	b.mustSee("Your passkey was added")
	b.open(e.URL + "/account")
	b.submit("/logout")
}

// passwordStep logs email in with the password in b and checks it lands on
// the second step, which carries the passkey script under its CSP.
func passwordStep(t *testing.T, e *secEnv, b *consoleBrowser, email string) {
	t.Helper()
	b.open(e.URL + "/login?return_to=%2Faccount")
	b.fill("email", email, "password", secUserPass)
	b.submit("/login")
	if loc := b.location(); loc != e.URL+"/login/mfa" {
		t.Fatalf("after the password: %s", loc)
	}
}

// idTokenAMR runs the code flow of client id with the browser session
// token and returns the ID token's amr and acr.
func idTokenAMR(t *testing.T, e *secEnv, session, id, secret string, extra url.Values) ([]string, any) {
	t.Helper()
	c := e.acctClient("10.9.8.1")
	c.cookies["authd_session"] = session
	r := authorizeWith(t, c, id, extra, func(loc string) string { t.Fatalf("asked to log in again: %s", loc); return "" })
	out, _ := e.exchangeCode(t, id, secret, r)
	cl := idClaims(t, out["id_token"].(string))
	return strList(cl["amr"]), cl["acr"]
}

func TestPasskeyMFA_InTheBrowser(t *testing.T) {
	e := newSecEnv(t)
	ctx := context.Background()
	alice := e.mustUser("alice@example.com")
	bob := e.mustUser("bob@example.com")
	id, secret := e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect}, FirstParty: true,
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"}})
	strictID, strictSecret := e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect}, FirstParty: true, RequireMFA: true,
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"}})

	b := newConsoleBrowser(t)
	addAuthenticator(t, b)
	registerPasskey(t, e, b, alice.Email)
	if m, _ := e.accts.Factors(ctx, alice.ID); !slices.Equal(m, []string{"webauthn"}) {
		t.Fatalf("alice's factors: %v", m)
	}

	// The password, then the passkey: the only second factor is owed.
	passwordStep(t, e, b, alice.Email)
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(e.URL+"/login/mfa"))
	if err != nil {
		t.Fatal(err)
	}
	if csp, _ := resp.Headers["Content-Security-Policy"].(string); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("second step CSP: %q", csp)
	}
	b.mustSee("Passkey", "Use a passkey")
	b.shot("login-mfa-passkey")
	// Keep what the script posts (window.name survives the navigation),
	// for the replay below.
	eval[any](t, b, `(() => { const s = HTMLFormElement.prototype.submit;
		HTMLFormElement.prototype.submit = function () {
			if (this.elements.ceremony) window.name = JSON.stringify({ceremony: this.elements.ceremony.value, credential: this.elements.credential.value});
			s.call(this); }; return true; })()`)
	b.submit("/login/mfa", "webauthn")
	if loc := b.location(); loc != e.URL+"/account" {
		t.Fatalf("after the passkey step: %s\n%s", loc, b.text())
	}
	var posted struct{ Ceremony, Credential string }
	if err := json.Unmarshal([]byte(eval[string](t, b, `window.name`)), &posted); err != nil || posted.Credential == "" {
		t.Fatalf("posted answer: %+v %v", posted, err)
	}
	amr, acr := idTokenAMR(t, e, browserSession(t, b), id, secret, nil)
	if !slices.Equal(amr, []string{"pwd", "hwk", "mfa"}) || acr != oauth.ACRMFA {
		t.Fatalf("password + passkey: amr %v acr %v", amr, acr)
	}

	t.Run("CeremonyReplayRefused", func(t *testing.T) {
		// The answer the browser posted, posted again on a new pending
		// login: with its own (used) ceremony, and with the new one.
		c := e.acctClient("10.9.8.2")
		if st, loc := mfaPassword(c, "/account", alice.Email); st != http.StatusSeeOther || loc != "/login/mfa" {
			t.Fatalf("password: %d %s", st, loc)
		}
		_, page := c.do(http.MethodGet, "/login/mfa", nil)
		f := secHidden(page)
		fresh := f.Get("ceremony")
		if fresh == "" || !strings.Contains(page, `data-public-key="{`) {
			t.Fatalf("no passkey form on the step page:\n%s", page)
		}
		for _, cer := range []string{posted.Ceremony, fresh} {
			f.Set("method", "webauthn")
			f.Set("ceremony", cer)
			f.Set("credential", posted.Credential)
			rec, body := c.do(http.MethodPost, "/login/mfa", f)
			if rec.Code != http.StatusUnauthorized || c.hasSession() || !strings.Contains(body, "passkey could not confirm") {
				t.Fatalf("replayed answer: %d, session %v", rec.Code, c.hasSession())
			}
			_, page = c.do(http.MethodGet, "/login/mfa", nil)
			f = secHidden(page)
		}
	})

	t.Run("AnotherUsersPasskeyRefused", func(t *testing.T) {
		// Bob's passkey (in the same browser) answers Alice's second
		// step: the attacker edits the allowed credentials.
		bb := newConsoleBrowser(t)
		addAuthenticator(t, bb)
		registerPasskey(t, e, bb, bob.Email)
		keys, err := e.accts.Passkeys(ctx, bob.ID, "localhost")
		if err != nil || len(keys) != 1 {
			t.Fatalf("bob's passkeys: %v %v", keys, err)
		}
		passwordStep(t, e, bb, alice.Email)
		eval[any](t, bb, `(() => { const f = document.querySelector('form[data-webauthn]');
			const o = JSON.parse(f.dataset.publicKey);
			o.allowCredentials = [{type: 'public-key', id: '`+base64.RawURLEncoding.EncodeToString(keys[0].CredentialID)+`'}];
			f.dataset.publicKey = JSON.stringify(o); return true; })()`)
		if st := bb.submit("/login/mfa", "webauthn"); st != http.StatusUnauthorized {
			t.Fatalf("bob's passkey for alice: %d", st)
		}
		bb.mustSee("passkey could not confirm")
		bb.shot("login-mfa-passkey-refused")
		if loc := bb.location(); loc != e.URL+"/login/mfa" {
			t.Fatalf("ended at %s", loc)
		}
		var n int
		if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM browser_sessions WHERE user_id = $1 AND revoked_at IS NULL`, alice.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 { // the browser's own, from the passkey step above
			t.Fatalf("alice's live sessions: %d", n)
		}
	})

	t.Run("PasswordlessSessionAMR", func(t *testing.T) {
		b.open(e.URL + "/account")
		b.submit("/logout")
		b.open(e.URL + "/login?return_to=%2Faccount")
		b.submit("/login/passkey")
		if loc := b.location(); loc != e.URL+"/account" {
			t.Fatalf("passwordless login ended at %s\n%s", loc, b.text())
		}
		s := browserSession(t, b)
		amr, acr := idTokenAMR(t, e, s, id, secret, nil)
		if !slices.Equal(amr, []string{"hwk", "mfa"}) || acr != oauth.ACRMFA {
			t.Fatalf("passwordless: amr %v acr %v", amr, acr)
		}
		// A verified passkey login meets acr_values and a client that
		// requires MFA without another login.
		if amr, _ := idTokenAMR(t, e, s, id, secret, url.Values{"acr_values": {oauth.ACRMFA}}); !slices.Contains(amr, "mfa") {
			t.Fatalf("acr_values: amr %v", amr)
		}
		if amr, _ := idTokenAMR(t, e, s, strictID, strictSecret, nil); !slices.Contains(amr, "mfa") {
			t.Fatalf("require_mfa client: amr %v", amr)
		}
	})

	t.Run("AdminResetRemovesPasskeys", func(t *testing.T) {
		if err := e.accts.ResetFactors(ctx, audit.Event{ActorType: audit.ActorSystem, ActorID: "test"}, alice.ID); err != nil {
			t.Fatal(err)
		}
		keys, err := e.accts.Passkeys(ctx, alice.ID, "localhost")
		if err != nil || len(keys) != 0 {
			t.Fatalf("passkeys after the reset: %d %v", len(keys), err)
		}
		if m, _ := e.accts.Factors(ctx, alice.ID); len(m) != 0 {
			t.Fatalf("factors after the reset: %v", m)
		}
		// The password alone logs in again, with no second step.
		c := e.acctClient("10.9.8.3")
		if st, loc := mfaPassword(c, "/account", alice.Email); st != http.StatusSeeOther || loc != "/account" {
			t.Fatalf("password after the reset: %d %s", st, loc)
		}
	})
}

// TestPasskeyMFA_TOTPStillWorksWithoutScript: a user holding an
// authenticator app and a passkey sees both on the second step; the app's
// form is plain HTML (the passkey button is hidden until the script shows
// it) and passes without JavaScript.
func TestPasskeyMFA_TOTPStillWorksWithoutScript(t *testing.T) {
	e := newSecEnv(t)
	ctx := context.Background()
	u := e.mustUser("both@example.com")
	c := e.acctClient("10.9.8.4")
	c.login(u.Email, secUserPass)
	secret, _, _ := mfaEnrol(t, c)
	if _, err := e.accts.AddPasskey(ctx, accounts.Passkey{UserID: u.ID, RPID: "localhost", CredentialID: []byte("both-cred"), Name: "Key",
		PublicKey: []byte{1}, Flags: accounts.PasskeyFlagUserPresent | accounts.PasskeyFlagUserVerified}); err != nil {
		t.Fatal(err)
	}
	c.logout(t)
	if st, loc := mfaPassword(c, "/account", u.Email); st != http.StatusSeeOther || loc != "/login/mfa" {
		t.Fatalf("password: %d %s", st, loc)
	}
	_, page := c.do(http.MethodGet, "/login/mfa", nil)
	if !strings.Contains(page, `name="method" value="totp"`) || !strings.Contains(page, `data-webauthn-only hidden`) ||
		!strings.Contains(page, `<script src="/static/webauthn.js"`) {
		t.Fatalf("second step with both factors:\n%s", page)
	}
	st, loc, body := mfaStep(c, "totp", mfaCode(t, secret, time.Now().Add(30*time.Second)))
	if st != http.StatusSeeOther || loc != "/account" || !c.hasSession() {
		t.Fatalf("TOTP step: %d %s\n%s", st, loc, body)
	}
	if _, page := c.do(http.MethodGet, "/account", nil); !strings.Contains(page, "On (authenticator app, recovery codes, passkeys).") {
		t.Fatalf("account page's factor summary:\n%s", page)
	}
	sess, _, err := e.accts.SessionByToken(ctx, c.cookies["authd_session"])
	if err != nil || !slices.Equal(sess.AMR, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("session amr: %v %v", sess, err)
	}
}
