package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
)

// The second-factor tests drive the real application: enrolment on
// /account/mfa, the login's second step, recovery codes, the role and
// client policies, step-up through acr_values, and the password grant.

var (
	mfaSecretRE   = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)
	mfaRecoveryRE = regexp.MustCompile(`<li><code>([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})</code></li>`)
)

func mfaCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mfaEnrol sets up an authenticator app for the logged-in c on
// /account/mfa and returns its secret, the code that confirmed it and the
// recovery codes.
func mfaEnrol(t testing.TB, c *acctClient) (secret, used string, codes []string) {
	t.Helper()
	_, page := c.do(http.MethodGet, "/account/mfa", nil)
	if !strings.Contains(page, `action="/account/mfa/totp"`) {
		t.Fatalf("no set-up form on /account/mfa:\n%s", page)
	}
	rec, _ := c.do(http.MethodPost, "/account/mfa/totp", secHidden(page))
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("start enrolment: %d", rec.Code)
	}
	_, page = c.do(http.MethodGet, "/account/mfa", nil)
	m := mfaSecretRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `src="data:image/png;base64,`) {
		t.Fatalf("no secret or QR code on the enrolment page:\n%s", page)
	}
	secret = m[1]
	f := secHidden(page)
	used = mfaCode(t, secret, time.Now())
	f.Set("code", used)
	rec, page = c.do(http.MethodPost, "/account/mfa/totp/confirm", f)
	if rec.Code != http.StatusOK {
		t.Fatalf("confirm enrolment: %d\n%s", rec.Code, page)
	}
	for _, m := range mfaRecoveryRE.FindAllStringSubmatch(page, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != 10 {
		t.Fatalf("want 10 recovery codes, got %d:\n%s", len(codes), page)
	}
	return secret, used, codes
}

// mfaPassword posts the login form and returns the answer.
func mfaPassword(c *acctClient, returnTo, email string) (int, string) {
	_, page := c.do(http.MethodGet, "/login?"+url.Values{"return_to": {returnTo}}.Encode(), nil)
	f := secHidden(page)
	f.Set("email", email)
	f.Set("password", secUserPass)
	rec, _ := c.do(http.MethodPost, "/login", f)
	return rec.Code, rec.Header().Get("Location")
}

// mfaWrongCode returns a code the authenticator of secret does not show
// in the steps around now (the ones a server accepts), nor used.
func mfaWrongCode(t *testing.T, secret, used string) string {
	t.Helper()
	now := time.Now()
	valid := []string{used, mfaCode(t, secret, now.Add(-30*time.Second)), mfaCode(t, secret, now), mfaCode(t, secret, now.Add(30*time.Second))}
	for _, c := range []string{"000000", "999999", "123123"} {
		if !slices.Contains(valid, c) {
			return c
		}
	}
	t.Fatal("no wrong code left")
	return ""
}

// mfaStep posts an answer to the second step.
func mfaStep(c *acctClient, method, code string) (int, string, string) {
	_, page := c.do(http.MethodGet, "/login/mfa", nil)
	f := secHidden(page)
	f.Set("method", method)
	f.Set("code", code)
	rec, body := c.do(http.MethodPost, "/login/mfa", f)
	return rec.Code, rec.Header().Get("Location"), body
}

func (c *acctClient) hasSession() bool {
	_, ok := c.cookies["authd_session"]
	return ok
}

func (c *acctClient) logout(t testing.TB) {
	t.Helper()
	_, page := c.do(http.MethodGet, "/account", nil)
	rec, _ := c.do(http.MethodPost, "/logout", secHidden(page))
	if rec.Code != http.StatusOK || c.hasSession() {
		t.Fatalf("logout: %d, session cookie kept: %v", rec.Code, c.hasSession())
	}
}

// idClaims decodes a JWT's payload (the signature is checked elsewhere).
func idClaims(t testing.TB, tok string) map[string]any {
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
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func strList(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// authorizeWith runs the code flow of clientID on c (already logged in, or
// logging in through login, which answers the pages as they come) and
// returns the client's redirect.
func authorizeWith(t testing.TB, c *acctClient, clientID string, extra url.Values, login func(loc string) string) *url.URL {
	t.Helper()
	sum := sha256.Sum256([]byte(mfaVerifier))
	u, _ := url.Parse(secAuthURL(c.e.URL, clientID, base64.RawURLEncoding.EncodeToString(sum[:]), extra))
	next := u.RequestURI()
	for range 10 {
		rec, page := c.do(http.MethodGet, next, nil)
		loc := rec.Header().Get("Location")
		switch {
		case strings.HasPrefix(loc, secRedirect):
			out, _ := url.Parse(loc)
			return out
		case rec.Code == http.StatusSeeOther && strings.HasPrefix(loc, "/login"):
			next = login(loc)
		case rec.Code == http.StatusSeeOther || rec.Code == http.StatusFound:
			next = loc
		default:
			t.Fatalf("authorize: %d at %s\n%s", rec.Code, next, page)
		}
	}
	t.Fatal("authorize: too many redirects")
	return nil
}

func TestMFA_EnrolLogoutLoginNeedsTheCode(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("totp@example.com")
	c := e.acctClient("10.9.0.1")
	if rec := c.login("totp@example.com", secUserPass); rec.Code != http.StatusSeeOther || !c.hasSession() {
		t.Fatalf("first login: %d", rec.Code)
	}
	secret, confirmCode, _ := mfaEnrol(t, c)
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = 'factor_changed'`); n != 1 {
		t.Fatalf("want 1 factor_changed mail, got %d", n)
	}
	var sealed string
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT secret_sealed FROM user_totp`).Scan(&sealed); err != nil || strings.Contains(sealed, secret) {
		t.Fatalf("the TOTP secret must be stored encrypted: %q (%v)", sealed, err)
	}
	c.logout(t)

	// The password alone opens nothing: a pending login, not a session.
	st, loc := mfaPassword(c, "/account", "totp@example.com")
	if st != http.StatusSeeOther || loc != "/login/mfa" || c.hasSession() {
		t.Fatalf("password step: %d %q session=%v", st, loc, c.hasSession())
	}
	if rec, _ := c.do(http.MethodGet, "/account", nil); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Fatalf("the pending login must not open /account: %d", rec.Code)
	}
	// The code that confirmed the enrolment was used in its step: refused.
	if st, _, _ := mfaStep(c, "totp", confirmCode); st != http.StatusUnauthorized || c.hasSession() {
		t.Fatalf("replayed confirmation code: %d", st)
	}
	if st, _, _ := mfaStep(c, "totp", "000000x"); st != http.StatusUnauthorized {
		t.Fatalf("malformed code: %d", st)
	}
	next := mfaCode(t, secret, time.Now().Add(30*time.Second))
	st, loc, body := mfaStep(c, "totp", next)
	if st != http.StatusSeeOther || loc != "/account" || !c.hasSession() {
		t.Fatalf("second step: %d %q session=%v\n%s", st, loc, c.hasSession(), body)
	}
	var amr []string
	if err := e.db.Pool.QueryRow(t.Context(), `SELECT amr FROM browser_sessions WHERE revoked_at IS NULL`).Scan(&amr); err != nil ||
		!slices.Equal(amr, []string{"pwd", "otp", "mfa"}) {
		t.Fatalf("session amr %v (%v)", amr, err)
	}

	// The same code again, at a new login: refused (its step was used).
	c2 := e.acctClient("10.9.0.2")
	mfaPassword(c2, "/account", "totp@example.com")
	if st, _, _ := mfaStep(c2, "totp", next); st != http.StatusUnauthorized || c2.hasSession() {
		t.Fatalf("replayed code at a new login: %d", st)
	}
	// The challenge is single use: after success the cookie is gone and
	// replaying the old challenge cookie value gets nothing.
	if _, ok := c.cookies["authd_mfa"]; ok {
		t.Fatal("challenge cookie kept after the second step")
	}
}

func TestMFA_RecoveryCodesWorkOnceEach(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("rec@example.com")
	c := e.acctClient("10.9.1.1")
	c.login("rec@example.com", secUserPass)
	_, _, codes := mfaEnrol(t, c)
	c.logout(t)
	for i, code := range codes[:3] {
		mfaPassword(c, "/account", "rec@example.com")
		typed := code
		if i == 1 {
			typed = strings.ToLower(strings.ReplaceAll(code, "-", " ")) // as typed by a person
		}
		if st, _, body := mfaStep(c, "recovery", typed); st != http.StatusSeeOther || !c.hasSession() {
			t.Fatalf("recovery code %d: %d\n%s", i, st, body)
		}
		c.logout(t)
		mfaPassword(c, "/account", "rec@example.com")
		if st, _, _ := mfaStep(c, "recovery", code); st != http.StatusUnauthorized || c.hasSession() {
			t.Fatalf("recovery code %d used twice: %d", i, st)
		}
	}
	if n := e.count(`SELECT count(*) FROM user_recovery_codes WHERE used_at IS NULL`); n != 7 {
		t.Fatalf("want 7 unused codes, got %d", n)
	}
	// Regenerating ends the old codes.
	if st, _, _ := mfaStep(c, "totp", mfaCode(t, "AAAAAAAAAAAAAAAA", time.Now())); st != http.StatusUnauthorized {
		t.Fatalf("a code of another secret: %d", st)
	}
}

func TestMFA_RegenerateInvalidatesOldCodes(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("regen@example.com")
	c := e.acctClient("10.9.2.1")
	c.login("regen@example.com", secUserPass)
	_, _, old := mfaEnrol(t, c)
	_, page := c.do(http.MethodGet, "/account/mfa", nil)
	rec, page := c.do(http.MethodPost, "/account/mfa/recovery", secHidden(page))
	fresh := mfaRecoveryRE.FindAllStringSubmatch(page, -1)
	if rec.Code != http.StatusOK || len(fresh) != 10 {
		t.Fatalf("regenerate: %d, %d codes", rec.Code, len(fresh))
	}
	c.logout(t)
	mfaPassword(c, "/account", "regen@example.com")
	if st, _, _ := mfaStep(c, "recovery", old[0]); st != http.StatusUnauthorized {
		t.Fatalf("an old recovery code after regeneration: %d", st)
	}
	if st, _, _ := mfaStep(c, "recovery", fresh[0][1]); st != http.StatusSeeOther {
		t.Fatalf("a new recovery code: %d", st)
	}
}

func TestMFA_WrongCodesCountInTheLoginBackoff(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("slow@example.com")
	c := e.acctClient("10.9.3.1")
	c.login("slow@example.com", secUserPass)
	secret, _, _ := mfaEnrol(t, c)
	c.logout(t)
	mfaPassword(c, "/account", "slow@example.com")
	throttled := false
	for range 8 {
		st, _, _ := mfaStep(c, "totp", "123456")
		if st == http.StatusTooManyRequests {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("wrong second-factor codes are never throttled")
	}
	// While throttled even the right code is refused unchecked.
	if st, _, _ := mfaStep(c, "totp", mfaCode(t, secret, time.Now())); st != http.StatusTooManyRequests || c.hasSession() {
		t.Fatalf("right code while throttled: %d", st)
	}
}

func TestMFA_PasswordGrantRefusedForMFAUser(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("grant@example.com")
	id, secret := e.accountClient()
	form := url.Values{"grant_type": {"password"}, "username": {"grant@example.com"}, "password": {secUserPass}, "scope": {"openid"}}
	st, _, out := e.postForm("/oauth2/token", id, secret, form)
	if st != http.StatusOK {
		t.Fatalf("password grant before MFA: %d %v", st, out)
	}
	at := idClaims(t, out["access_token"].(string))
	if !slices.Equal(strList(at["amr"]), []string{"pwd"}) || at["acr"] != oauth.ACRPassword {
		t.Fatalf("password-grant access token amr/acr: %v %v", at["amr"], at["acr"])
	}
	c := e.acctClient("10.9.4.1")
	c.login("grant@example.com", secUserPass)
	mfaEnrol(t, c)
	st, _, out = e.postForm("/oauth2/token", id, secret, form)
	desc, _ := out["error_description"].(string)
	if st != http.StatusBadRequest || out["error"] != "invalid_grant" || !strings.Contains(desc, "second factor") || !strings.Contains(desc, "browser") {
		t.Fatalf("password grant for an MFA user: %d %v", st, out)
	}
}

func TestMFA_AdminForcedToEnrol(t *testing.T) {
	e := newSecEnv(t, "AUTHD_MFA_REQUIRED_ROLES=admin")
	e.mustUser("boss@example.com", "admin")
	c := e.acctClient("10.9.5.1")
	st, loc := mfaPassword(c, "/account", "boss@example.com")
	if st != http.StatusSeeOther || loc != "/login/mfa" || c.hasSession() {
		t.Fatalf("admin password step: %d %q session=%v", st, loc, c.hasSession())
	}
	_, page := c.do(http.MethodGet, "/login/mfa", nil)
	m := mfaSecretRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `action="/login/mfa"`) {
		t.Fatalf("no enrolment on the second step:\n%s", page)
	}
	// The pending login is not a session anywhere, not even for /account/mfa.
	if rec, _ := c.do(http.MethodGet, "/account/mfa", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("/account/mfa during the pending login: %d", rec.Code)
	}
	f := secHidden(page)
	f.Set("code", "000000")
	if rec, _ := c.do(http.MethodPost, "/login/mfa", f); rec.Code != http.StatusUnauthorized || c.hasSession() {
		t.Fatalf("wrong enrolment code: %d", rec.Code)
	}
	f.Set("code", mfaCode(t, m[1], time.Now()))
	rec, page := c.do(http.MethodPost, "/login/mfa", f)
	if rec.Code != http.StatusOK || !c.hasSession() || len(mfaRecoveryRE.FindAllString(page, -1)) != 10 {
		t.Fatalf("enrolment at login: %d session=%v\n%s", rec.Code, c.hasSession(), page)
	}
	// An admin with a password-only grant is refused too.
	id, secret := e.accountClient()
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"password"},
		"username": {"boss@example.com"}, "password": {secUserPass}})
	if st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("password grant for a required-MFA admin: %d %v", st, out)
	}
}

func TestMFA_ClientRequiringMFALeadsToEnrolment(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("strict@example.com")
	id, secret := e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect}, FirstParty: true, RequireMFA: true,
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"}})
	c := e.acctClient("10.9.6.1")
	var enrolled bool
	redirect := authorizeWith(t, c, id, nil, func(loc string) string {
		ret, _ := url.Parse(loc)
		st, next := mfaPassword(c, ret.Query().Get("return_to"), "strict@example.com")
		if st != http.StatusSeeOther || next != "/login/mfa" || c.hasSession() {
			t.Fatalf("password for a client requiring MFA: %d %q", st, next)
		}
		_, page := c.do(http.MethodGet, "/login/mfa", nil)
		m := mfaSecretRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no enrolment:\n%s", page)
		}
		f := secHidden(page)
		f.Set("code", mfaCode(t, m[1], time.Now()))
		_, page = c.do(http.MethodPost, "/login/mfa", f)
		cont := regexp.MustCompile(`href="([^"]+)">I saved them`).FindStringSubmatch(page)
		if cont == nil {
			t.Fatalf("no continue link:\n%s", page)
		}
		enrolled = true
		return html.UnescapeString(cont[1])
	})
	if !enrolled {
		t.Fatalf("never asked to log in: %s", redirect)
	}
	v, _ := e.exchangeCode(t, id, secret, redirect)
	claims := idClaims(t, v["id_token"].(string))
	if !slices.Equal(strList(claims["amr"]), []string{"pwd", "otp", "mfa"}) || claims["acr"] != oauth.ACRMFA {
		t.Fatalf("ID token amr/acr: %v %v", claims["amr"], claims["acr"])
	}
	at := idClaims(t, v["access_token"].(string))
	if !slices.Equal(strList(at["amr"]), []string{"pwd", "otp", "mfa"}) || at["acr"] != oauth.ACRMFA {
		t.Fatalf("access token amr/acr: %v %v", at["amr"], at["acr"])
	}
}

// mfaVerifier is the PKCE verifier of authorizeWith's requests.
const mfaVerifier = "mfa-test-verifier-0123456789-0123456789-0123456789"

// exchangeCode redeems the code in redirect.
func (e *secEnv) exchangeCode(t testing.TB, id, secret string, redirect *url.URL) (map[string]any, int) {
	t.Helper()
	st, out := e.exchange(id, secret, redirect.Query().Get("code"), mfaVerifier)
	if st != http.StatusOK {
		t.Fatalf("code exchange: %d %v", st, out)
	}
	return out, st
}

func TestMFA_ACRValuesStepUp(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("step@example.com")
	id, secret := e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect}, FirstParty: true,
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"}})
	c := e.acctClient("10.9.7.1")
	c.login("step@example.com", secUserPass) // a password-only session
	secret2, _, recovery := mfaEnrol(t, c)
	noLogin := func(loc string) string { t.Fatalf("asked to log in again: %s", loc); return "" }

	// Without acr_values the password session is enough, and says so.
	out, _ := e.exchangeCode(t, id, secret, authorizeWith(t, c, id, nil, noLogin))
	if cl := idClaims(t, out["id_token"].(string)); cl["acr"] != oauth.ACRPassword || !slices.Equal(strList(cl["amr"]), []string{"pwd"}) {
		t.Fatalf("password session: acr %v amr %v", cl["acr"], cl["amr"])
	}
	// An unknown class cannot be met.
	r := authorizeWith(t, c, id, url.Values{"acr_values": {"urn:example:gold"}}, noLogin)
	if r.Query().Get("error") != "unmet_authentication_requirements" {
		t.Fatalf("unknown acr: %s", r)
	}
	// prompt=none cannot step up.
	r = authorizeWith(t, c, id, url.Values{"acr_values": {oauth.ACRMFA}, "prompt": {"none"}}, noLogin)
	if r.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none step-up: %s", r)
	}
	// acr_values asking for MFA: the password, then the code.
	steps := 0
	r = authorizeWith(t, c, id, url.Values{"acr_values": {oauth.ACRMFA + " " + "urn:example:gold"}}, func(loc string) string {
		steps++
		ret, _ := url.Parse(loc)
		if st, next := mfaPassword(c, ret.Query().Get("return_to"), "step@example.com"); st != http.StatusSeeOther || next != "/login/mfa" {
			t.Fatalf("step-up password: %d %q", st, next)
		}
		st, next, body := mfaStep(c, "totp", mfaCode(t, secret2, time.Now().Add(30*time.Second)))
		if st != http.StatusSeeOther {
			t.Fatalf("step-up code: %d\n%s", st, body)
		}
		return next
	})
	out, _ = e.exchangeCode(t, id, secret, r)
	if cl := idClaims(t, out["id_token"].(string)); steps != 1 || cl["acr"] != oauth.ACRMFA {
		t.Fatalf("after step-up (%d logins): acr %v amr %v", steps, cl["acr"], cl["amr"])
	}
	// The stronger session now meets the class without a new login.
	out, _ = e.exchangeCode(t, id, secret, authorizeWith(t, c, id, url.Values{"acr_values": {oauth.ACRMFA}}, noLogin))
	if cl := idClaims(t, out["id_token"].(string)); cl["acr"] != oauth.ACRMFA {
		t.Fatalf("MFA session: acr %v", cl["acr"])
	}
	// max_age=0 forces the whole login again, second factor included.
	steps = 0
	authorizeWith(t, c, id, url.Values{"max_age": {"0"}}, func(loc string) string {
		steps++
		ret, _ := url.Parse(loc)
		if st, next := mfaPassword(c, ret.Query().Get("return_to"), "step@example.com"); st != http.StatusSeeOther || next != "/login/mfa" {
			t.Fatalf("max_age password: %d %q", st, next)
		}
		// Both usable TOTP steps are spent: a recovery code, then.
		st, next, body := mfaStep(c, "recovery", recovery[0])
		if st != http.StatusSeeOther {
			t.Fatalf("max_age second step: %d\n%s", st, body)
		}
		return next
	})
	if steps != 1 {
		t.Fatalf("max_age=0 logins: %d", steps)
	}
}

func TestMFA_SecondStepHostileInput(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("hostile@example.com")
	c := e.acctClient("10.9.8.1")
	c.login("hostile@example.com", secUserPass)
	secret, _, _ := mfaEnrol(t, c)
	c.logout(t)
	mfaPassword(c, "/account", "hostile@example.com")
	_, page := c.do(http.MethodGet, "/login/mfa", nil)
	good := secHidden(page)

	// No CSRF token, or a wrong one: refused before anything is checked.
	for _, tok := range []string{"", "forged"} {
		f := url.Values{"method": {"totp"}, "code": {mfaCode(t, secret, time.Now())}}
		if tok != "" {
			f.Set("csrf_token", tok)
		}
		if rec, _ := c.do(http.MethodPost, "/login/mfa", f); rec.Code != http.StatusForbidden || c.hasSession() {
			t.Fatalf("CSRF %q: %d", tok, rec.Code)
		}
	}
	// Hostile values: unknown methods, huge codes, markup. 4xx, no session,
	// nothing reflected.
	for _, f := range []url.Values{
		{"method": {"webauthn"}, "code": {"123456"}},
		{"method": {"<script>x</script>"}, "code": {"123456"}},
		{"method": {"totp"}, "code": {strings.Repeat("9", 100000)}},
		{"method": {"recovery"}, "code": {strings.Repeat("A", 5000)}},
		{"method": {"recovery"}, "code": {"' OR 1=1 --"}},
		{"method": {"totp"}},
	} {
		for k, v := range good {
			f[k] = v
		}
		rec, body := c.do(http.MethodPost, "/login/mfa", f)
		if rec.Code < 400 || rec.Code >= 500 || c.hasSession() || strings.Contains(body, "<script>x") || secLeakRE.MatchString(body) {
			t.Fatalf("hostile %v: %d session=%v", f.Get("method"), rec.Code, c.hasSession())
		}
	}
	// Another browser with no challenge cookie, or a made-up one, gets
	// nothing.
	other := e.acctClient("10.9.8.2")
	other.cookies["authd_mfa"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	_, opage := other.do(http.MethodGet, "/login", nil)
	f := secHidden(opage)
	f.Set("method", "totp")
	f.Set("code", mfaCode(t, secret, time.Now().Add(30*time.Second)))
	if rec, _ := other.do(http.MethodPost, "/login/mfa", f); rec.Code != http.StatusBadRequest || other.hasSession() {
		t.Fatalf("forged challenge cookie: %d", rec.Code)
	}
	// The account forms need CSRF too.
	c.login("hostile@example.com", secUserPass)
	for _, path := range []string{"/account/mfa/totp", "/account/mfa/totp/confirm", "/account/mfa/totp/remove", "/account/mfa/recovery"} {
		if rec, _ := c.do(http.MethodPost, path, url.Values{"code": {"123456"}}); rec.Code != http.StatusForbidden {
			t.Fatalf("%s without CSRF: %d", path, rec.Code)
		}
	}
}

func TestMFA_ChallengeExpiresAndIsSingleUse(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("once@example.com")
	c := e.acctClient("10.9.9.1")
	c.login("once@example.com", secUserPass)
	secret, _, _ := mfaEnrol(t, c)
	c.logout(t)
	mfaPassword(c, "/account", "once@example.com")
	stolen := c.cookies["authd_mfa"]
	if st, _, _ := mfaStep(c, "totp", mfaCode(t, secret, time.Now().Add(30*time.Second))); st != http.StatusSeeOther {
		t.Fatalf("second step: %d", st)
	}
	// Replaying the used challenge cookie (with a fresh valid code) fails.
	replay := e.acctClient("10.9.9.2")
	replay.cookies["authd_mfa"] = stolen
	_, page := replay.do(http.MethodGet, "/login", nil)
	f := secHidden(page)
	f.Set("method", "totp")
	f.Set("code", mfaCode(t, secret, time.Now().Add(-30*time.Second)))
	if rec, _ := replay.do(http.MethodPost, "/login/mfa", f); rec.Code != http.StatusBadRequest || replay.hasSession() {
		t.Fatalf("used challenge replayed: %d", rec.Code)
	}
	// An expired challenge is refused.
	c.logout(t)
	mfaPassword(c, "/account", "once@example.com")
	if _, err := e.db.Pool.Exec(t.Context(), `UPDATE login_challenges SET expires_at = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	if rec, _ := c.do(http.MethodGet, "/login/mfa", nil); rec.Code != http.StatusBadRequest {
		t.Fatalf("expired challenge page: %d", rec.Code)
	}
	_, page = c.do(http.MethodGet, "/login", nil)
	f = secHidden(page)
	f.Set("method", "totp")
	f.Set("code", mfaCode(t, secret, time.Now().Add(-30*time.Second)))
	if rec, _ := c.do(http.MethodPost, "/login/mfa", f); rec.Code != http.StatusBadRequest || c.hasSession() {
		t.Fatalf("expired challenge: %d", rec.Code)
	}
}

func TestMFA_AdminResetsFactors(t *testing.T) {
	e := newSecEnv(t)
	admin := e.mustUser("root@example.com", "admin")
	victim := e.mustUser("lost@example.com")
	e.mustUser("nosy@example.com")
	all, allSecret := e.allScopesClient()
	token := func(email, scope, aud string) string {
		f := url.Values{"grant_type": {"password"}, "username": {email}, "password": {secUserPass}, "scope": {scope}}
		if aud != "" {
			f.Set("audience", aud)
		}
		st, _, out := e.postForm("/oauth2/token", all, allSecret, f)
		if st != http.StatusOK {
			t.Fatalf("token for %s: %d %v", email, st, out)
		}
		return out["access_token"].(string)
	}
	// A refresh token and a session of the victim, from before the reset.
	acct, acctSecret := e.accountClient()
	st, _, out := e.postForm("/oauth2/token", acct, acctSecret, url.Values{"grant_type": {"password"},
		"username": {"lost@example.com"}, "password": {secUserPass}, "scope": {"openid offline_access"}})
	if st != http.StatusOK {
		t.Fatalf("victim token: %d %v", st, out)
	}
	refresh := out["refresh_token"].(string)
	victimToken := token("lost@example.com", "admin", "")
	c := e.acctClient("10.9.10.1")
	c.login("lost@example.com", secUserPass)
	mfaEnrol(t, c)
	addPasskey := func(cred string) {
		t.Helper()
		if _, err := e.accts.AddPasskey(context.Background(), accounts.Passkey{UserID: victim.ID, RPID: "localhost", CredentialID: []byte(cred),
			Name: cred, PublicKey: []byte{1}, Flags: accounts.PasskeyFlagUserPresent}); err != nil {
			t.Fatal(err)
		}
	}
	addPasskey("lost-key-1")

	path := "/admin/v1/users/" + victim.ID + "/mfa"
	_, ccOut := func() (int, map[string]any) {
		st, _, out := e.postForm("/oauth2/token", all, allSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"introspect"}})
		return st, out
	}()
	for _, bad := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", 401},
		{"another user's token with the admin scope", token("nosy@example.com", "admin", ""), 403},
		{"the victim's own token", victimToken, 403},
		{"admin token without the admin scope", token("root@example.com", "openid roles", ""), 403},
		{"client token without the admin scope", ccOut["access_token"].(string), 403},
		{"admin token for another audience", token("root@example.com", "admin", "https://notes.example"), 401},
	} {
		if st, _ := e.apiCall(http.MethodDelete, path, bad.token, nil); st != bad.status {
			t.Fatalf("%s: %d, want %d", bad.name, st, bad.status)
		}
		if n := e.count(`SELECT count(*) FROM user_totp WHERE user_id = $1`, victim.ID); n != 1 {
			t.Fatalf("%s removed the factor", bad.name)
		}
	}
	if st, out := e.apiCall(http.MethodDelete, path, token("root@example.com", "admin", ""), nil); st != http.StatusOK || out["id"] != victim.ID {
		t.Fatalf("admin reset: %d %v", st, out)
	}
	if n := e.count(`SELECT count(*) FROM user_totp WHERE user_id = $1`, victim.ID) +
		e.count(`SELECT count(*) FROM user_recovery_codes WHERE user_id = $1`, victim.ID) +
		e.count(`SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`, victim.ID); n != 0 {
		t.Fatalf("factors left after reset: %d", n)
	}
	if e.refreshWorks(acct, acctSecret, refresh) {
		t.Fatal("the victim's refresh token survived the reset")
	}
	if rec, _ := c.do(http.MethodGet, "/account", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("the victim's session survived the reset: %d", rec.Code)
	}
	if n := e.count(`SELECT count(*) FROM audit_events WHERE type = 'user.mfa_reset' AND target_id = $1 AND actor_id = $2`, victim.ID, admin.ID); n != 1 {
		t.Fatalf("audit events of the reset: %d", n)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = 'factor_changed' AND payload->>'to' = 'lost@example.com'`); n != 2 {
		t.Fatalf("factor mails to the victim (added, reset): %d", n)
	}
	if st, loc := mfaPassword(c, "/account", "lost@example.com"); st != http.StatusSeeOther || loc != "/account" || !c.hasSession() {
		t.Fatalf("login after the reset: %d %q", st, loc)
	}
	if rec, _ := e.acctClient("10.9.10.2").do(http.MethodDelete, "/admin/v1/users/not-a-uuid/mfa", nil); rec.Code != http.StatusUnauthorized {
		t.Fatalf("no token, bad id: %d", rec.Code)
	}

	// The CLI twin.
	mfaEnrol(t, c)
	addPasskey("lost-key-2")
	if _, err := runCLI(t, map[string]string{"AUTHD_DATABASE_URL": e.db.URL}, "", "user", "mfa", "reset", "lost@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := e.count(`SELECT count(*) FROM user_totp WHERE user_id = $1`, victim.ID) +
		e.count(`SELECT count(*) FROM webauthn_credentials WHERE user_id = $1`, victim.ID); n != 0 {
		t.Fatal("CLI reset left a factor")
	}
	if n := e.count(`SELECT count(*) FROM audit_events WHERE type = 'user.mfa_reset' AND actor_id = 'authd-cli'`); n != 1 {
		t.Fatalf("CLI reset audit events: %d", n)
	}
}

// TestMFA_OneCodeOneLoginUnderRace: one pending login answered with the
// same valid code by many requests at once opens exactly one session.
func TestMFA_OneCodeOneLoginUnderRace(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("race@example.com")
	c := e.acctClient("10.9.11.1")
	c.login("race@example.com", secUserPass)
	secret, _, _ := mfaEnrol(t, c)
	const n = 8
	p := e.acctClient("10.9.11.2")
	mfaPassword(p, "/account", "race@example.com")
	_, page := p.do(http.MethodGet, "/login/mfa", nil)
	form := secHidden(page)
	form.Set("method", "totp")
	form.Set("code", mfaCode(t, secret, time.Now().Add(30*time.Second)))
	results := make(chan int, n)
	for range n {
		go func() {
			req := httptest.NewRequest(http.MethodPost, e.URL+"/login/mfa", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range p.cookies {
				req.AddCookie(&http.Cookie{Name: k, Value: v})
			}
			rec := e.serve(req)
			results <- rec.Code
		}()
	}
	ok := 0
	for range n {
		if <-results == http.StatusSeeOther {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d logins from one code and one challenge, want 1", ok)
	}
	if got := e.count(`SELECT count(*) FROM browser_sessions WHERE revoked_at IS NULL AND 'mfa' = ANY(amr)`); got != 1 {
		t.Fatalf("%d MFA sessions, want 1", got)
	}
}

// TestMFA_PushedACRValuesLeadToEnrolment: acr_values inside a pushed
// request count at the login too (no login loop), and the user without a
// factor sets one up.
func TestMFA_PushedACRValuesLeadToEnrolment(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("pushed@example.com")
	id, secret := e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect}, FirstParty: true,
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}})
	sum := sha256.Sum256([]byte(mfaVerifier))
	st, _, out := e.postForm("/oauth2/par", id, secret, url.Values{"response_type": {"code"}, "redirect_uri": {secRedirect},
		"scope": {"openid"}, "state": {"state-12345678"}, "nonce": {"nonce-12345678"}, "acr_values": {oauth.ACRMFA},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}})
	if st != http.StatusCreated {
		t.Fatalf("PAR: %d %v", st, out)
	}
	c := e.acctClient("10.9.12.1")
	next := "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {out["request_uri"].(string)}}.Encode()
	logins := 0
	for range 10 {
		rec, page := c.do(http.MethodGet, next, nil)
		loc := rec.Header().Get("Location")
		if strings.HasPrefix(loc, secRedirect) {
			r, _ := url.Parse(loc)
			v, _ := e.exchangeCode(t, id, secret, r)
			if cl := idClaims(t, v["id_token"].(string)); logins != 1 || cl["acr"] != oauth.ACRMFA {
				t.Fatalf("after %d logins: acr %v", logins, cl["acr"])
			}
			return
		}
		if !strings.HasPrefix(loc, "/login") {
			t.Fatalf("authorize: %d %q\n%s", rec.Code, loc, page)
		}
		logins++
		ret, _ := url.Parse(loc)
		if st, l := mfaPassword(c, ret.Query().Get("return_to"), "pushed@example.com"); st != http.StatusSeeOther || l != "/login/mfa" {
			t.Fatalf("login %d: %d %q (the pushed acr_values were not seen)", logins, st, l)
		}
		_, page = c.do(http.MethodGet, "/login/mfa", nil)
		m := mfaSecretRE.FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no enrolment:\n%s", page)
		}
		f := secHidden(page)
		f.Set("code", mfaCode(t, m[1], time.Now()))
		_, page = c.do(http.MethodPost, "/login/mfa", f)
		cont := regexp.MustCompile(`href="([^"]+)">I saved them`).FindStringSubmatch(page)
		if cont == nil {
			t.Fatalf("no continue link:\n%s", page)
		}
		next = html.UnescapeString(cont[1])
	}
	t.Fatal("login loop")
}

// TestMFA_GuessingFromManyAddressesLocksTheFactor: whoever guesses second
// factor codes holds the password and can spread the guesses over many
// addresses, each under the per-address backoff. From anywhere together,
// after 10 wrong codes the account's second factor is locked (1 minute,
// doubling): the right code from a fresh address is refused unchecked with
// Retry-After, the owner is mailed once, and a password reset lifts the lock.
func TestMFA_GuessingFromManyAddressesLocksTheFactor(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	const email = "spread@example.com"
	e.mustUser(email)
	owner := e.acctClient("10.41.0.1")
	owner.login(email, secUserPass)
	secret, used, _ := mfaEnrol(t, owner)
	owner.logout(t)
	wrong := mfaWrongCode(t, secret, used)
	guess := func(ip, code string) (int, *acctClient) {
		c := e.acctClient(ip)
		if st, next := mfaPassword(c, "/account", email); st != http.StatusSeeOther || next != "/login/mfa" {
			t.Fatalf("password from %s: %d %q", ip, st, next)
		}
		st, _, _ := mfaStep(c, "totp", code)
		return st, c
	}
	// One wrong code from each of 11 addresses: none is throttled on its
	// own, the 11th locks the account's second factor.
	for i := range 11 {
		if st, _ := guess(fmt.Sprintf("10.41.1.%d", i+1), wrong); st != http.StatusUnauthorized {
			t.Fatalf("wrong code %d: %d, want 401", i+1, st)
		}
	}
	st, c := guess("10.41.2.1", mfaCode(t, secret, time.Now()))
	if st != http.StatusTooManyRequests || c.hasSession() {
		t.Fatalf("the right code from a fresh address during the lock: %d, want 429", st)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = 'factor_guessed' AND payload->>'to' = $1`, email); n != 1 {
		t.Fatalf("want 1 factor_guessed mail to the owner, got %d", n)
	}
	// Refused guesses are not counted and mail nobody again.
	if st, _ := guess("10.41.2.2", wrong); st != http.StatusTooManyRequests {
		t.Fatalf("a guess during the lock: %d", st)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = 'factor_guessed'`); n != 1 {
		t.Fatalf("factor_guessed mails: %d, want 1", n)
	}
	// The owner resets the password: the guesser's password is dead and the
	// lock is lifted.
	if err := e.accts.ForgotPassword(context.Background(), email); err != nil {
		t.Fatal(err)
	}
	const fresh = "a brand new password 42"
	if st, out := e.apiCall(http.MethodPost, "/api/v1/password/reset", "", map[string]string{"token": e.outboxToken("password_reset", email), "password": fresh}); st >= 300 {
		t.Fatalf("reset: %d %v", st, out)
	}
	c = e.acctClient("10.41.3.1")
	_, page := c.do(http.MethodGet, "/login?"+url.Values{"return_to": {"/account"}}.Encode(), nil)
	f := secHidden(page)
	f.Set("email", email)
	f.Set("password", fresh)
	c.do(http.MethodPost, "/login", f)
	if st, _, body := mfaStep(c, "totp", mfaCode(t, secret, time.Now().Add(30*time.Second))); st != http.StatusSeeOther || !c.hasSession() {
		t.Fatalf("the right code after the password reset: %d\n%s", st, body)
	}
}
