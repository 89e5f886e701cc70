package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/storage/storagetest"
)

// More of the account-lifecycle protections against the real application:
// a distributed attacker and the account-wide pause, session lifetimes,
// the per-user bound on email changes, mail to unproven addresses, the dev
// command's listen address, and the account page in Chromium.

// Failures from many addresses, each inside its own allowance, meet the
// account-wide limit only after 100; from then on it pauses the account for
// at most 3 seconds, and the owner, on an address of their own, is told
// exactly how long and gets in once that has passed.
func TestLogin_ManyAddressesHoldTheOwnerSecondsAtMost(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("botnet-target@example.com")
	throttled := 0
	for i := 0; i < 120; i++ {
		rec := e.acctClient(fmt.Sprintf("198.18.%d.%d", i/200, i%200+1)).login(u.Email, fmt.Sprintf("botnet-guess-%d", i))
		switch rec.Code {
		case http.StatusUnauthorized:
			if throttled > 0 && i < 100 {
				t.Fatalf("failure %d refused after a pause began", i+1)
			}
		case http.StatusTooManyRequests:
			if i < 100 {
				t.Fatalf("address %d, after %d failures in all, was paused: the account-wide limit came early", i+1, i)
			}
			throttled++
			if ra, _ := strconv.Atoi(rec.Header().Get("Retry-After")); ra < 1 || ra > 3 {
				t.Fatalf("account-wide pause of %q seconds, want 1–3", rec.Header().Get("Retry-After"))
			}
		default:
			t.Fatalf("attempt %d: status %d", i+1, rec.Code)
		}
	}
	if throttled == 0 {
		t.Fatal("120 failures from 120 addresses met no account-wide limit")
	}
	owner := e.acctClient("203.0.113.77")
	rec := owner.login(u.Email, secUserPass)
	if rec.Code == http.StatusTooManyRequests {
		ra, _ := strconv.Atoi(rec.Header().Get("Retry-After"))
		if ra < 1 || ra > 3 || !strings.Contains(rec.Body.String(), "Please wait "+waitText(strconv.Itoa(ra))) {
			t.Fatalf("owner told Retry-After %q:\n%s", rec.Header().Get("Retry-After"), rec.Body.String())
		}
		// The owner waits what they were told: the locks move that far
		// into the past instead of the test sleeping.
		if _, err := e.db.Pool.Exec(context.Background(), `UPDATE login_failures
			SET locked_until = locked_until - make_interval(secs => $1)`, ra); err != nil {
			t.Fatal(err)
		}
		rec = owner.login(u.Email, secUserPass)
	}
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("owner on a fresh address after the pause: %d\n%s", rec.Code, rec.Body.String())
	}
}

// A browser session ends after AUTHD_SESSION_IDLE_TIMEOUT without use and
// AUTHD_SESSION_MAX_AGE after login however active. Time passes by moving
// the session's timestamps into the past.
func TestHostedPages_SessionIdleTimeoutAndMaxAge(t *testing.T) {
	e := newSecEnv(t, "AUTHD_SESSION_MAX_AGE=2h", "AUTHD_SESSION_IDLE_TIMEOUT=30m")
	u := e.mustUser("session-life@example.com")
	ctx := context.Background()
	shift := func(set string) {
		t.Helper()
		if _, err := e.db.Pool.Exec(ctx, `UPDATE browser_sessions SET `+set+` WHERE user_id = $1`, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	live := func(c *acctClient) bool {
		t.Helper()
		rec, _ := c.do(http.MethodGet, "/account", nil)
		return rec.Code == http.StatusOK
	}

	idle := e.acctClient("192.0.2.81")
	if rec := idle.login(u.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	shift(`last_seen_at = now() - interval '29 minutes'`)
	if !live(idle) {
		t.Fatal("a session used 29 minutes ago ended (idle timeout 30m)")
	}
	shift(`last_seen_at = now() - interval '31 minutes'`)
	if live(idle) {
		t.Fatal("a session unused for 31 minutes still works (idle timeout 30m)")
	}

	active := e.acctClient("192.0.2.82")
	if rec := active.login(u.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	var lifetime time.Duration
	if err := e.db.Pool.QueryRow(ctx, `SELECT EXTRACT(EPOCH FROM expires_at - auth_time)::bigint * 1000000000
		FROM browser_sessions WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1`, u.ID).Scan(&lifetime); err != nil {
		t.Fatal(err)
	}
	if lifetime != 2*time.Hour {
		t.Fatalf("session lifetime %s, want AUTHD_SESSION_MAX_AGE 2h", lifetime)
	}
	// Logged in 2h01m ago and used a minute ago: over its absolute lifetime.
	shift(`auth_time = auth_time - interval '121 minutes', created_at = created_at - interval '121 minutes',
		expires_at = expires_at - interval '121 minutes', last_seen_at = now() - interval '1 minute'`)
	if live(active) {
		t.Fatal("a session in use past AUTHD_SESSION_MAX_AGE still works")
	}
}

// At most 3 email changes start per user per hour, whatever the client
// address (the per-address bound is TestAccountAPI_EmailChangesRateLimitedPerAddress).
func TestAccountAPI_EmailChangesRateLimitedPerUser(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("per-user@example.com")
	id, secret := e.accountClient()
	tok := e.passwordToken(id, secret, u.Email, "openid account")["access_token"].(string)
	for i := 0; i < 4; i++ {
		st, out := e.apiCall(http.MethodPatch, "/api/v1/me", tok, map[string]string{"email": fmt.Sprintf("per-user-%d@example.com", i), "current_password": secUserPass})
		if i < 3 && st != http.StatusOK {
			t.Fatalf("change %d: %d %v", i+1, st, out)
		}
		if i == 3 && st != http.StatusTooManyRequests {
			t.Fatalf("4th change within the hour: %d %v, want 429", st, out)
		}
	}
	if got, _ := e.accts.User(context.Background(), u.ID); got.PendingEmail != "per-user-2@example.com" {
		t.Fatalf("pending email %q after a refused change", got.PendingEmail)
	}
}

// Mail to an address nobody has proven carries nothing the registrant
// chose: signing a stranger's address up with a lure as the name relays
// nothing, neither in the verification mail nor in a reset mail.
func TestAPI_UnverifiedAddressMailHasNoDisplayName(t *testing.T) {
	e := newSecEnv(t)
	const victim, lure = "stranger@example.com", "Call +1-555-0100 to claim your prize"
	if st, out := e.apiCall(http.MethodPost, "/api/v1/register", "", map[string]string{"email": victim, "password": "tulip-garden-42", "name": lure}); st != http.StatusCreated {
		t.Fatalf("register: %d %v", st, out)
	}
	if st, out := e.apiCall(http.MethodPost, "/api/v1/password/forgot", "", map[string]string{"email": victim}); st >= 300 {
		t.Fatalf("forgot: %d %v", st, out)
	}
	for _, tmpl := range []string{mail.VerifyEmail, mail.PasswordReset} {
		if n := e.count(`SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'to' = $2`, tmpl, victim); n != 1 {
			t.Fatalf("%s mails to %s: %d", tmpl, victim, n)
		}
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE payload->>'to' = $1 AND payload::text LIKE '%555-0100%'`, victim); n != 0 {
		t.Fatalf("%d mails to the unproven address carry the registrant's name", n)
	}
}

// `authd dev` itself (not only its helper) listens on loopback when
// AUTHD_LISTEN is unset. The test holds 127.0.0.1:8080 (or finds it held),
// so the command fails to bind, and its error names the address it tried.
func TestDev_CommandListensOnLoopbackByDefault(t *testing.T) {
	t.Chdir(t.TempDir())
	db := storagetest.NewDB(t)
	if ln, err := net.Listen("tcp", "127.0.0.1:8080"); err == nil {
		t.Cleanup(func() { _ = ln.Close() })
	}
	t.Setenv("AUTHD_DATABASE_URL", db.URL)
	t.Setenv("AUTHD_LISTEN", "")
	if err := os.Unsetenv("AUTHD_LISTEN"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := newRootCmd(&out, &errb)
	cmd.SetArgs([]string{"dev"})
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "listen tcp 127.0.0.1:8080") {
		t.Fatalf("authd dev with AUTHD_LISTEN unset: %v (want a bind error for 127.0.0.1:8080)\n%s", err, errb.String())
	}
}

// The account page in Chromium against the real application: an email
// change (prefetch-safe link, confirmed by this browser's session) and a
// password change each end what the old credential opened (refresh tokens,
// other sessions, reset links) while this browser stays logged in; names
// with a bidi override are refused.
func TestAccountPage_ChangesEndWhatTheOldCredentialOpened(t *testing.T) {
	e := newSecEnv(t)
	ctx := context.Background()
	u := e.mustUser("page-owner@example.com")
	id, secret := e.accountClient()
	tokenFor := func(email, password string) string {
		t.Helper()
		st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"password"},
			"username": {email}, "password": {password}, "scope": {"openid offline_access account"}})
		if st != http.StatusOK {
			t.Fatalf("password grant: %d %v", st, out)
		}
		return out["refresh_token"].(string)
	}
	otherSession := func(ip, email, password string) *acctClient {
		t.Helper()
		c := e.acctClient(ip)
		if rec := c.login(email, password); rec.Code != http.StatusSeeOther {
			t.Fatalf("other browser's login: %d", rec.Code)
		}
		return c
	}
	ended := func(c *acctClient) bool {
		t.Helper()
		rec, _ := c.do(http.MethodGet, "/account", nil)
		return rec.Code == http.StatusSeeOther && strings.HasPrefix(rec.Header().Get("Location"), "/login")
	}
	resetLink := func(email string) string {
		t.Helper()
		// A reset link goes out at most once a minute per user: the
		// earlier one is made old enough.
		if _, err := e.db.Pool.Exec(ctx, `UPDATE email_tokens SET created_at = created_at - interval '1 hour'
			WHERE user_id = $1 AND purpose = 'password_reset'`, u.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.accts.ForgotPassword(ctx, email); err != nil {
			t.Fatal(err)
		}
		return e.outboxToken(mail.PasswordReset, email)
	}

	b := newConsoleBrowser(t)
	b.open(e.URL + "/account")
	b.fill("email", u.Email, "password", secUserPass)
	if st := b.submit("/login"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	b.mustSee("Signed in as " + u.Email)

	// A name with a bidi override is refused and changes nothing.
	b.fill("name", "evil\u202Egnp.exe")
	if st := b.submit("/account/profile"); st != http.StatusBadRequest {
		t.Fatalf("name with a bidi override: %d", st)
	}
	if got, _ := e.accts.User(ctx, u.ID); got.Name != "" {
		t.Fatalf("name changed to %q", got.Name)
	}

	// Email change.
	refresh := tokenFor(u.Email, secUserPass)
	other := otherSession("192.0.2.91", u.Email, secUserPass)
	reset := resetLink(u.Email)
	const newAddr = "page-owner.new@example.com"
	b.open(e.URL + "/account")
	b.fill("email", newAddr)
	if st := b.submit("/account/profile"); st != http.StatusOK {
		t.Fatalf("email change: %d", st)
	}
	b.mustSee("Waiting for you to confirm", newAddr)
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'to' = $2`, mail.EmailChangeRequested, u.Email); n != 1 {
		t.Fatalf("notices to the old address: %d", n)
	}
	verify := e.URL + "/verify-email?token=" + e.outboxToken(mail.VerifyEmail, newAddr)
	cancel := "/email/cancel?token=" + e.outboxToken(mail.EmailChangeRequested, u.Email)
	scanner := e.acctClient("192.0.2.92")
	for _, link := range []string{strings.TrimPrefix(verify, e.URL), cancel} {
		for _, m := range []string{http.MethodHead, http.MethodGet} {
			if rec, _ := scanner.do(m, link, nil); rec.Code != http.StatusOK {
				t.Fatalf("%s %s: %d", m, link, rec.Code)
			}
		}
	}
	if got, _ := e.accts.User(ctx, u.ID); got.PendingEmail != newAddr {
		t.Fatalf("fetching the links changed the pending address to %q", got.PendingEmail)
	}
	if st := b.open(verify); st != http.StatusOK {
		t.Fatalf("open the link: %d", st)
	}
	if got, _ := e.accts.User(ctx, u.ID); got.Email != u.Email {
		t.Fatalf("fetching the link changed the address to %s", got.Email)
	}
	b.mustSee("Make " + newAddr + " the email address you log in with?")
	b.shot("account-email-change-confirm")
	if st := b.submit("/verify-email"); st != http.StatusOK {
		t.Fatalf("confirm: %d", st)
	}
	b.mustSee("Email verified")
	if got, _ := e.accts.User(ctx, u.ID); got.Email != newAddr {
		t.Fatalf("address after confirming: %s", got.Email)
	}
	if e.refreshWorks(id, secret, refresh) {
		t.Error("email change: a refresh token from before still works")
	}
	if !ended(other) {
		t.Error("email change: another browser's session survived")
	}
	if _, err := e.accts.ResetPassword(ctx, reset, "another-pass-999"); err == nil {
		t.Error("email change: a reset link mailed to the old address still works")
	}
	b.open(e.URL + "/account")
	b.mustSee("Signed in as " + newAddr)

	// Password change.
	refresh = tokenFor(newAddr, secUserPass)
	other = otherSession("192.0.2.93", newAddr, secUserPass)
	reset = resetLink(newAddr)
	const newPass = "lantern-meadow-river-8"
	b.fill("current_password", secUserPass, "new_password", newPass, "confirm_password", newPass)
	if st := b.submit("/account/password"); st != http.StatusOK {
		t.Fatalf("password change: %d", st)
	}
	b.mustSee("Your password was changed.")
	b.shot("account-password-changed")
	if e.refreshWorks(id, secret, refresh) {
		t.Error("password change: a refresh token from before still works")
	}
	if !ended(other) {
		t.Error("password change: another browser's session survived")
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'to' = $2`, mail.PasswordChanged, newAddr); n != 1 {
		t.Errorf("password-changed notices: %d, want 1", n)
	}
	if _, err := e.accts.ResetPassword(ctx, reset, "another-pass-999"); err == nil {
		t.Error("password change: a reset link mailed before still works")
	}
	b.open(e.URL + "/account")
	b.mustSee("Signed in as " + newAddr)
}

// The lockout as a person sees it: after repeated failures the login page
// in Chromium answers 429 and says how many seconds to wait, the number
// Retry-After carries; the owner on another address is not held.
func TestLoginPage_LockoutSaysHowLongInChromium(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("locked-page@example.com")
	b := newConsoleBrowser(t)
	var resp *network.Response
	for i := 0; i < 12; i++ {
		b.open(e.URL + "/login")
		b.fill("email", u.Email, "password", fmt.Sprintf("wrong-guess-%d", i))
		var err error
		if resp, err = chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(`form[action="/login"] button[type=submit]`))); err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusUnauthorized {
			break
		}
	}
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("repeated failures: %d, want 429", resp.Status)
	}
	retryAfter, _ := resp.Headers["Retry-After"].(string)
	b.shot("login-locked")
	if retryAfter == "" {
		t.Fatal("no Retry-After on the locked page")
	}
	b.mustSee("Please wait " + waitText(retryAfter))
	if rec := e.acctClient("203.0.113.61").login(u.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("owner on another address: %d", rec.Code)
	}
}

// Production cookies in a real browser: Chromium stores and sends the
// __Host- session and CSRF cookies (Secure, Path=/, no Domain) of an
// http://localhost issuer, a secure context, and logging in works with them.
func TestHostedPages_HostPrefixCookiesInChromium(t *testing.T) {
	e := newSecEnv(t, "AUTHD_ENV=production")
	u := e.mustUser("prod-browser@example.com")
	b := newConsoleBrowser(t)
	b.open(e.URL + "/account")
	b.fill("email", u.Email, "password", secUserPass)
	if st := b.submit("/login"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	b.mustSee("Signed in as " + u.Email)
	res, err := chromedp.Run(b.ctx, chromedp.Action[network.GetCookiesResult](func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{e.URL}})
	}))
	if err != nil {
		t.Fatal(err)
	}
	cookies := res.Cookies
	seen := map[string]bool{}
	for _, c := range cookies {
		seen[c.Name] = true
		if !strings.HasPrefix(c.Name, "__Host-") {
			t.Errorf("cookie %s without the __Host- prefix in production", c.Name)
		}
		if !c.Secure || c.Path != "/" || !c.HTTPOnly || c.Domain != "localhost" || c.SameSite != network.CookieSameSiteLax {
			t.Errorf("cookie %s: secure=%v path=%q httpOnly=%v domain=%q sameSite=%v", c.Name, c.Secure, c.Path, c.HTTPOnly, c.Domain, c.SameSite)
		}
	}
	if !seen["__Host-authd_session"] || !seen["__Host-authd_csrf"] {
		t.Fatalf("cookies in the browser: %v", seen)
	}
}

// Reset links mailed to the old address die with an email change, even
// when the account later changes back to that address (the reset's own
// check that the link's address is the account's would pass again then).
func TestAccountAPI_EmailChangeRetiresOldResetLinks(t *testing.T) {
	e := newSecEnv(t)
	ctx := context.Background()
	u := e.mustUser("comes-back@example.com")
	id, secret := e.accountClient()
	if err := e.accts.ForgotPassword(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	reset := e.outboxToken(mail.PasswordReset, u.Email)
	change := func(from, to string) {
		t.Helper()
		tok := e.passwordToken(id, secret, from, "openid account")["access_token"].(string)
		if st, out := e.apiCall(http.MethodPatch, "/api/v1/me", tok, map[string]string{"email": to, "current_password": secUserPass}); st != http.StatusOK {
			t.Fatalf("change to %s: %d %v", to, st, out)
		}
		verify := e.outboxToken(mail.VerifyEmail, to)
		if st, out := e.apiCall(http.MethodPost, "/api/v1/email/verify", "", map[string]string{"token": verify, "password": secUserPass}); st != http.StatusOK {
			t.Fatalf("confirm %s: %d %v", to, st, out)
		}
	}
	change(u.Email, "away-for-now@example.com")
	change("away-for-now@example.com", u.Email)
	if _, err := e.accts.ResetPassword(ctx, reset, "another-pass-999"); err == nil {
		t.Fatal("a reset link mailed before the address changed away works again now it is back")
	}
}

// The account page shares the API's per-address bound on email changes:
// from one client address, accounts of different users start at most a
// burst of them, then the page answers 429 with Retry-After.
func TestAccountPage_EmailChangesRateLimitedPerAddress(t *testing.T) {
	e := newSecEnv(t)
	var rec *httptest.ResponseRecorder
	for i := 0; i < 7; i++ {
		u := e.mustUser(fmt.Sprintf("page-rl-%d@example.com", i))
		c := e.acctClient("192.0.2.110") // one address, a browser per user
		if r := c.login(u.Email, secUserPass); r.Code != http.StatusSeeOther {
			t.Fatalf("login %d: %d", i, r.Code)
		}
		_, page := c.do(http.MethodGet, "/account", nil)
		f := url.Values{"csrf_token": {secHidden(page).Get("csrf_token")}, "name": {""}, "email": {fmt.Sprintf("page-rl-new-%d@example.com", i)}}
		rec, _ = c.do(http.MethodPost, "/account/profile", f)
		if i < 5 && rec.Code != http.StatusSeeOther {
			t.Fatalf("change %d: %d", i+1, rec.Code)
		}
	}
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("7th change from one address: %d (Retry-After %q), want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// A restart while the admin's logins are paused (failed attempts from
// anywhere) neither shows the password it could not check nor forgets it:
// once the pause is over, the banner shows it again.
func TestDev_BannerKeepsAPasswordItCouldNotCheck(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := storagetest.NewDB(t)
	boot := func() string { b, _ := devBanner(t, db); return b }
	boot()
	creds, err := loadDevCredentials()
	if err != nil || creds.AdminPassword == "" {
		t.Fatalf("credentials: %+v %v", creds, err)
	}
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO login_failures (email, client, failures, updated_at, locked_until)
		VALUES ('admin@localhost', '', 150, now(), now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	if paused := boot(); strings.Contains(paused, creds.AdminPassword) || !strings.Contains(paused, "could not be checked") {
		t.Fatalf("banner while the admin's logins are paused:\n%s", paused)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM login_failures`); err != nil {
		t.Fatal(err)
	}
	if after := boot(); !strings.Contains(after, "admin@localhost / "+creds.AdminPassword) {
		t.Fatalf("the password was forgotten after a paused restart:\n%s", after)
	}
}

// waitText is what the pages say for a Retry-After of ra seconds.
func waitText(ra string) string {
	n, err := strconv.Atoi(ra)
	if err != nil {
		return "(Retry-After " + ra + " is not whole seconds)"
	}
	return ratelimit.WaitText(time.Duration(n) * time.Second)
}
