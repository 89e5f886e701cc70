package main

// Third attack review: the second factor (MFA/TOTP, passkeys, federation),
// access tokens kept in their refresh token's row, back-channel logout.
// Each test is what an adversary would try; the report of the review names
// the ones that found a hole and the commits that closed it.

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
)

// TestAttack3_DeviceGrantSkipsRequiredMFA: a client registered with
// require_mfa gets a second-factor login from the code flow, but its device
// grant is approved on /device by any browser session, password-only
// included, and the poll mints tokens (amr pwd) for it. A stolen password
// of a user without a second factor is enough for an app that was promised
// two-step logins only.
func TestAttack3_DeviceGrantSkipsRequiredMFA(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	u := e.mustUser("victim@example.com", "user")
	id, secret := e.mustClient(clients.Spec{Name: "Strict TV", RequireMFA: true,
		GrantTypes: []string{oauth.DeviceGrantType, "refresh_token"},
		Scopes:     []string{"openid", "profile", "offline_access"}})
	st, _, out := e.postForm("/oauth2/device/auth", id, secret, url.Values{"scope": {"openid profile offline_access"}})
	if st != http.StatusOK {
		t.Fatalf("device authorization: %d %v", st, out)
	}
	deviceCode, _ := out["device_code"].(string)
	userCode, _ := out["user_code"].(string)
	b, csrf := e.loggedIn(u.Email) // password only: no second factor
	resp, page := b.post(e.URL+"/device", url.Values{"csrf_token": {csrf}, "user_code": {userCode}, "decision": {"allow"}})
	if resp.StatusCode == http.StatusOK && strings.Contains(page, "Your device is connected") {
		t.Errorf("a password-only session approved a device for a client requiring MFA")
	}
	st, _, out = e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {oauth.DeviceGrantType}, "device_code": {deviceCode}})
	if out["access_token"] != nil {
		t.Errorf("a client requiring MFA got device tokens from a password-only login: %d", st)
	}

	// The same user after a login with the second factor approves it.
	c := e.acctClient("10.30.1.1")
	if st, _ := mfaPassword(c, "/account", u.Email); st != http.StatusSeeOther {
		t.Fatalf("password: %d", st)
	}
	secret2, used, _ := mfaEnrol(t, c)
	c.logout(t)
	mfaPassword(c, "/account", u.Email)
	code := mfaCode(t, secret2, time.Now().Add(30*time.Second))
	if code == used {
		code = mfaCode(t, secret2, time.Now().Add(60*time.Second))
	}
	if st, _, body := mfaStep(c, "totp", code); st != http.StatusSeeOther || !c.hasSession() {
		t.Fatalf("second step: %d\n%s", st, body)
	}
	// A new device code: the first one was polled a moment ago (slow_down).
	st, _, out = e.postForm("/oauth2/device/auth", id, secret, url.Values{"scope": {"openid profile offline_access"}})
	if st != http.StatusOK {
		t.Fatalf("device authorization: %d %v", st, out)
	}
	deviceCode, userCode = out["device_code"].(string), out["user_code"].(string)
	_, page = c.do(http.MethodGet, "/device", nil)
	f := secHidden(page)
	f.Set("user_code", userCode)
	f.Set("decision", "allow")
	if rec, page := c.do(http.MethodPost, "/device", f); rec.Code != http.StatusOK || !strings.Contains(page, "Your device is connected") {
		t.Fatalf("a two-step session could not approve: %d\n%s", rec.Code, page)
	}
	st, _, out = e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {oauth.DeviceGrantType}, "device_code": {deviceCode}})
	if out["access_token"] == nil {
		t.Fatalf("no tokens after a two-step approval: %d %v", st, out)
	}
	// The tokens tell how the approving session logged in.
	for name, tok := range map[string]string{"access": out["access_token"].(string), "id": out["id_token"].(string)} {
		cl := idClaims(t, tok)
		if cl["acr"] != oauth.ACRMFA || !slices.Contains(strList(cl["amr"]), "mfa") {
			t.Errorf("%s token of a two-step approval: amr %v acr %v", name, cl["amr"], cl["acr"])
		}
	}
}

// TestAttack3_PendingChallengeIsNoSession: the pending second-step cookie
// (password right, code not yet given) opens nothing: not /account, not
// the console, not an authorization request, not /device.
func TestAttack3_PendingChallengeIsNoSession(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	e.mustUser("admin@example.com", "admin")
	c := e.acctClient("10.30.0.1")
	if st, _ := mfaPassword(c, "/account", "admin@example.com"); st != http.StatusSeeOther {
		t.Fatalf("password: %d", st)
	}
	// The admin has no second factor yet and is asked for one only when a
	// role or client demands it; make the role demand it by enrolling.
	if c.hasSession() {
		secret, _, _ := mfaEnrol(t, c)
		c.logout(t)
		st, next := mfaPassword(c, "/account", "admin@example.com")
		if st != http.StatusSeeOther || next != "/login/mfa" || c.hasSession() {
			t.Fatalf("password of an enrolled user: %d %q session=%v", st, next, c.hasSession())
		}
		_ = secret
	}
	if len(c.cookies) == 0 {
		t.Fatal("no challenge cookie")
	}
	id, _ := e.webClient()
	for _, p := range []string{"/account", "/account/mfa", "/admin", "/admin/users", "/device",
		"/oauth2/auth?" + url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {secRedirect},
			"scope": {"openid"}, "state": {"s-0123456789"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"},
			"code_challenge_method": {"S256"}, "prompt": {"none"}}.Encode()} {
		rec, body := c.do(http.MethodGet, p, nil)
		loc := rec.Header().Get("Location")
		switch {
		case strings.Contains(loc, "code="):
			t.Errorf("GET %s with only the challenge cookie: a code (%s)", p, loc)
		case rec.Code == http.StatusOK && (strings.Contains(body, "admin@example.com") || strings.Contains(body, `action="/logout"`)):
			t.Errorf("GET %s with only the challenge cookie: logged-in page", p)
		}
	}
	// The challenge cookie presented as the session cookie is no session.
	for k, v := range c.cookies {
		if strings.Contains(k, "mfa") {
			c.cookies["authd_session"] = v
		}
	}
	if rec, body := c.do(http.MethodGet, "/account", nil); rec.Code == http.StatusOK && strings.Contains(body, "admin@example.com") {
		t.Errorf("the challenge token works as a session cookie")
	}
}

// TestAttack3_InlineAccessTokenDiesWithItsFamily: an access token minted by
// a refresh rotation lives in its refresh token's row. It must stop working
// (introspection and authd's own bearer check) when the refresh token is
// revoked (RFC 7009), when the user is disabled, and when the family is
// rotated again.
func TestAttack3_InlineAccessTokenDiesWithItsFamily(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, secret := e.webClient()
	rotate := func(rt string) (string, string) {
		t.Helper()
		st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if st != http.StatusOK {
			t.Fatalf("refresh: %d %v", st, out)
		}
		return out["access_token"].(string), out["refresh_token"].(string)
	}
	bearerOK := func(at string) bool {
		req, _ := http.NewRequest(http.MethodGet, e.URL+"/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+at)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for _, how := range []string{"revoke-refresh", "disable-user", "rotate", "revoke-access"} {
		email := how + "@example.com"
		u := e.mustUser(email, "user")
		out := e.tokens(e.browser(), id, secret, email)
		at, rt := rotate(out["refresh_token"].(string))
		if e.count(`SELECT count(*) FROM oauth2_refresh WHERE access_inline AND active AND client_id = $1`, id) == 0 {
			t.Fatalf("%s: the rotation did not inline its access token", how)
		}
		if !e.active(id, secret, at) || !bearerOK(at) {
			t.Fatalf("%s: fresh inline access token refused", how)
		}
		switch how {
		case "revoke-refresh":
			if st, _, o := e.postForm("/oauth2/revoke", id, secret, url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}); st != http.StatusOK {
				t.Fatalf("revoke: %d %v", st, o)
			}
		case "revoke-access":
			if st, _, o := e.postForm("/oauth2/revoke", id, secret, url.Values{"token": {at}, "token_type_hint": {"access_token"}}); st != http.StatusOK {
				t.Fatalf("revoke: %d %v", st, o)
			}
		case "disable-user":
			// Without revoking: every check reads the flag live.
			if _, err := e.accts.SetDisabled(context.Background(), audit.Event{ActorType: audit.ActorSystem}, u.ID, true, false); err != nil {
				t.Fatal(err)
			}
		case "rotate":
			rotate(rt)
		}
		if e.active(id, secret, at) {
			t.Errorf("%s: the inline access token still introspects active", how)
		}
		if bearerOK(at) {
			t.Errorf("%s: the inline access token is still accepted by /api/v1/me", how)
		}
	}
}

// TestAttack3_PasswordSuccessForgivesWrongCodes: wrong second-factor codes
// count in the login backoff of (account, address), and the attacker who
// holds the password clears that count by logging in again with it: five
// free guesses per password login, from one address, forever (only the
// account-wide pause of a few seconds per guess is left). A second
// factor's failures must be forgiven only by a second factor's success.
func TestAttack3_PasswordSuccessForgivesWrongCodes(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	e.mustUser("guessed@example.com")
	c := e.acctClient("10.30.2.1")
	c.login("guessed@example.com", secUserPass)
	secret, used, _ := mfaEnrol(t, c)
	c.logout(t)
	wrong := mfaWrongCode(t, secret, used)
	throttled := false
	for round := 0; round < 3 && !throttled; round++ {
		if st, next := mfaPassword(c, "/account", "guessed@example.com"); st != http.StatusSeeOther || next != "/login/mfa" {
			// The address is locked: the guesses were counted.
			throttled = true
			break
		}
		for range 5 {
			if st, _, _ := mfaStep(c, "totp", wrong); st == http.StatusTooManyRequests {
				throttled = true
				break
			}
		}
	}
	if !throttled {
		t.Fatal("15 wrong codes from one address, each run of 5 after a fresh password login, were never throttled")
	}
}

// TestAttack3_ConsoleIgnoresTheRolePolicy: with AUTHD_MFA_REQUIRED_ROLES=admin
// an authorization request of an administrator whose session lacks the
// second factor is sent back to log in with it, but the admin console, the
// most powerful surface, opens for the same session: a user promoted while
// logged in with the password only (likewise sessions from before the
// policy was set) administers without ever passing a second factor.
func TestAttack3_ConsoleIgnoresTheRolePolicy(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t, "AUTHD_MFA_REQUIRED_ROLES=admin")
	u := e.mustUser("promoted@example.com", "user")
	c := e.acctClient("10.30.3.1")
	if rec := c.login(u.Email, secUserPass); rec.Code != http.StatusSeeOther || !c.hasSession() {
		t.Fatalf("password login: %d", rec.Code)
	}
	if err := e.accts.AddRole(context.Background(), u.ID, "admin"); err != nil {
		t.Fatal(err)
	}
	rec, body := c.do(http.MethodGet, "/admin/users", nil)
	if rec.Code == http.StatusOK && strings.Contains(body, "promoted@example.com") {
		t.Fatalf("the console opened for an administrator's password-only session under AUTHD_MFA_REQUIRED_ROLES=admin")
	}
	if loc := rec.Header().Get("Location"); rec.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") {
		t.Fatalf("want a redirect to log in again, got %d %q", rec.Code, loc)
	}
	// Logging in again makes the administrator enrol, and then it opens.
	st, next := mfaPassword(c, "/admin/users", u.Email)
	if st != http.StatusSeeOther || next != "/login/mfa" {
		t.Fatalf("password of an administrator without a second factor: %d %q", st, next)
	}
	_, page := c.do(http.MethodGet, "/login/mfa", nil)
	m := mfaSecretRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no enrolment:\n%s", page)
	}
	f := secHidden(page)
	f.Set("code", mfaCode(t, m[1], time.Now()))
	if rec, page := c.do(http.MethodPost, "/login/mfa", f); rec.Code != http.StatusOK || !c.hasSession() {
		t.Fatalf("enrolment: %d\n%s", rec.Code, page)
	}
	if rec, body := c.do(http.MethodGet, "/admin/users", nil); rec.Code != http.StatusOK || !strings.Contains(body, "promoted@example.com") {
		t.Fatalf("console after the two-step login: %d", rec.Code)
	}
}

// TestAttack3_OneTOTPCodeOneLogin: a phished code raced by the attacker and
// the victim (two browsers, each past the password) logs in one of them;
// the same for one recovery code.
func TestAttack3_OneTOTPCodeOneLogin(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	e.mustUser("raced@example.com")
	c := e.acctClient("10.30.4.1")
	c.login("raced@example.com", secUserPass)
	secret, used, codes := mfaEnrol(t, c)
	c.logout(t)
	code := mfaCode(t, secret, time.Now().Add(30*time.Second))
	if code == used {
		code = mfaCode(t, secret, time.Now().Add(60*time.Second))
	}
	for _, tc := range []struct{ method, code string }{{"totp", code}, {"recovery", codes[0]}} {
		const n = 6
		browsers := make([]*acctClient, n)
		forms := make([]url.Values, n)
		for i := range browsers {
			browsers[i] = e.acctClient("10.30.5." + strconv.Itoa(i+1))
			if st, next := mfaPassword(browsers[i], "/account", "raced@example.com"); st != http.StatusSeeOther || next != "/login/mfa" {
				t.Fatalf("password: %d %q", st, next)
			}
			_, page := browsers[i].do(http.MethodGet, "/login/mfa", nil)
			forms[i] = secHidden(page)
			forms[i].Set("method", tc.method)
			forms[i].Set("code", tc.code)
		}
		var wg sync.WaitGroup
		for i := range browsers {
			wg.Add(1)
			go func() { defer wg.Done(); browsers[i].do(http.MethodPost, "/login/mfa", forms[i]) }()
		}
		wg.Wait()
		won := 0
		for _, b := range browsers {
			if b.hasSession() {
				won++
			}
		}
		if won != 1 {
			t.Errorf("%s: one code logged in %d browsers", tc.method, won)
		}
	}
}
