package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/storagetest"
)

// The account-lifecycle tests drive the real application (buildApp) the way
// an attacker would: in-process requests from chosen client addresses, with
// cookies handled by hand so a test can plant what a sibling subdomain could.

// acctClient is one browser: a client address and its cookies.
type acctClient struct {
	e       *secEnv
	ip      string
	cookies map[string]string
	// setCookies holds the raw Set-Cookie headers of the last response.
	setCookies []*http.Cookie
}

func (e *secEnv) acctClient(ip string) *acctClient {
	return &acctClient{e: e, ip: ip, cookies: map[string]string{}}
}

func (c *acctClient) do(method, path string, form url.Values) (*httptest.ResponseRecorder, string) {
	c.e.tb.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, c.e.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.RemoteAddr = c.ip + ":40000"
	for k, v := range c.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec := httptest.NewRecorder()
	c.e.app.handler.ServeHTTP(rec, req)
	c.setCookies = rec.Result().Cookies()
	for _, ck := range c.setCookies {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return rec, rec.Body.String()
}

// login logs email in with password through the /login page.
func (c *acctClient) login(email, password string) *httptest.ResponseRecorder {
	c.e.tb.Helper()
	_, page := c.do(http.MethodGet, "/login", nil)
	f := secHidden(page)
	f.Set("email", email)
	f.Set("password", password)
	rec, _ := c.do(http.MethodPost, "/login", f)
	return rec
}

// accountClient is a first-party client that may be granted the account scope.
func (e *secEnv) accountClient() (id, secret string) {
	return e.mustClient(clients.Spec{Name: "console", FirstParty: true, GrantTypes: []string{"password", "refresh_token"},
		Scopes: []string{"openid", "profile", "email", "offline_access", "account"}})
}

// apiCall calls authd's JSON API with a bearer token over loopback HTTP.
func (e *secEnv) apiCall(method, path, bearer string, body any) (int, map[string]any) {
	e.tb.Helper()
	var rd *bytes.Reader
	switch b := body.(type) {
	case nil:
		rd = bytes.NewReader(nil)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, e.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// outboxToken returns the token of the newest queued mail of template to
// addr, opening the link the way the outbox worker does.
func (e *secEnv) outboxToken(template, addr string) string {
	e.tb.Helper()
	var sealed string
	err := e.db.Pool.QueryRow(context.Background(), `SELECT payload->>'sealed_link' FROM outbox
		WHERE kind = 'mail' AND type = $1 AND payload->>'to' = $2 ORDER BY created_at DESC LIMIT 1`, template, addr).Scan(&sealed)
	if err != nil {
		e.tb.Fatalf("no %s mail to %s: %v", template, addr, err)
	}
	key, _ := base64.StdEncoding.DecodeString(secTestKey)
	sealer, err := accounts.NewLinkSealer(deriveKey(key, "outbox links"))
	if err != nil {
		e.tb.Fatal(err)
	}
	link, err := sealer.Open(sealed, addr)
	if err != nil {
		e.tb.Fatal(err)
	}
	u, _ := url.Parse(link)
	return u.Query().Get("token")
}

func (e *secEnv) refreshWorks(id, secret, refresh string) bool {
	e.tb.Helper()
	st, _, _ := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	return st == http.StatusOK
}

// A password change through the API ends what the old password opened:
// refresh tokens, browser sessions and reset links already mailed; the
// account's address is told.
func TestAccountAPI_PasswordChangeEndsWhatTheOldPasswordOpened(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("pw-change@example.com")
	id, secret := e.accountClient()
	stolen := e.passwordToken(id, secret, u.Email, "openid offline_access account")
	mine := e.passwordToken(id, secret, u.Email, "openid offline_access account")
	b := e.acctClient("192.0.2.10")
	if rec := b.login(u.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	if err := e.accts.ForgotPassword(context.Background(), u.Email); err != nil {
		t.Fatal(err)
	}
	reset := e.outboxToken(mail.PasswordReset, u.Email)

	if st, out := e.apiCall(http.MethodPost, "/api/v1/me/password", mine["access_token"].(string),
		map[string]string{"current_password": "wrong-password-1", "new_password": "meadow-lantern-77"}); st != http.StatusBadRequest {
		t.Fatalf("wrong current password: %d %v", st, out)
	}
	if st, out := e.apiCall(http.MethodPost, "/api/v1/me/password", mine["access_token"].(string),
		map[string]string{"current_password": secUserPass, "new_password": "meadow-lantern-77"}); st != http.StatusNoContent {
		t.Fatalf("change: %d %v", st, out)
	}
	if e.refreshWorks(id, secret, stolen["refresh_token"].(string)) {
		t.Error("a refresh token issued before the change still works")
	}
	if rec, _ := b.do(http.MethodGet, "/account", nil); rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login") {
		t.Errorf("browser session survived: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	// Counted before trying the old reset link: a reset that wrongly works
	// mails a notice of its own.
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'to' = $2`, mail.PasswordChanged, u.Email); n != 1 {
		t.Errorf("password-changed notices = %d, want 1", n)
	}
	if _, err := e.accts.ResetPassword(context.Background(), reset, "another-pass-999"); err == nil {
		t.Error("a reset link mailed before the change still works")
	}
}

// Changing the email through the API, then the verification link: a GET or
// HEAD (a mail scanner) changes nothing, the link alone does not complete
// it, the password does, and the completed change revokes refresh tokens.
func TestAccountAPI_EmailChangeIsConfirmedByTheOwner(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("em-owner@example.com")
	id, secret := e.accountClient()
	tok := e.passwordToken(id, secret, u.Email, "openid offline_access account")
	newAddr := "em-new@example.com"
	if st, out := e.apiCall(http.MethodPatch, "/api/v1/me", tok["access_token"].(string), map[string]string{"email": newAddr}); st != http.StatusOK || out["pending_email"] != newAddr {
		t.Fatalf("PATCH /me (recent login): %d %v", st, out)
	}
	if n := e.count(`SELECT count(*) FROM outbox WHERE type = $1 AND payload->>'to' = $2`, mail.EmailChangeRequested, u.Email); n != 1 {
		t.Fatalf("notices to the old address = %d", n)
	}
	verify := e.outboxToken(mail.VerifyEmail, newAddr)
	scanner := e.acctClient("192.0.2.20")
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodGet} {
		if rec, _ := scanner.do(m, "/verify-email?token="+verify, nil); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", m, rec.Code)
		}
	}
	if got, _ := e.accts.User(context.Background(), u.ID); got.Email != u.Email || got.PendingEmail != newAddr {
		t.Fatalf("fetching the link changed the account: %+v", got)
	}
	if st, out := e.apiCall(http.MethodPost, "/api/v1/email/verify", "", map[string]string{"token": verify}); st != http.StatusForbidden {
		t.Fatalf("link alone: %d %v", st, out)
	}
	// Another account's browser session is not the owner's.
	mallory := e.mustUser("em-mallory@example.com")
	other := e.acctClient("192.0.2.21")
	if rec := other.login(mallory.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("mallory's login: %d", rec.Code)
	}
	_, page := other.do(http.MethodGet, "/verify-email?token="+verify, nil)
	f := secHidden(page)
	f.Set("token", verify)
	if rec, _ := other.do(http.MethodPost, "/verify-email", f); rec.Code == http.StatusOK {
		t.Fatalf("another account's session confirmed the change: %d", rec.Code)
	}
	if got, _ := e.accts.User(context.Background(), u.ID); got.Email != u.Email {
		t.Fatalf("another account's session changed the address to %s", got.Email)
	}
	if st, out := e.apiCall(http.MethodPost, "/api/v1/email/verify", "", map[string]string{"token": verify, "password": secUserPass}); st != http.StatusOK || out["email"] != newAddr {
		t.Fatalf("with the password: %d %v", st, out)
	}
	if e.refreshWorks(id, secret, tok["refresh_token"].(string)) {
		t.Error("a refresh token issued before the email change still works")
	}
}

func TestAccountAPI_EmailChangesRateLimitedPerAddress(t *testing.T) {
	e := newSecEnv(t)
	id, secret := e.accountClient()
	var last int
	for i := 0; i < 8; i++ { // different users, one client address (loopback)
		u := e.mustUser(fmt.Sprintf("rl-%d@example.com", i))
		tok := e.passwordToken(id, secret, u.Email, "openid account")
		last, _ = e.apiCall(http.MethodPatch, "/api/v1/me", tok["access_token"].(string), map[string]string{"email": fmt.Sprintf("rl-new-%d@example.com", i), "current_password": secUserPass})
		if i < 5 && last != http.StatusOK {
			t.Fatalf("change %d: %d", i, last)
		}
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("8th change from one address: %d, want 429", last)
	}
}

// Duplicate keys (also case-only ones) make a body ambiguous; it is refused
// and nothing is created.
func TestAPI_DuplicateJSONKeysRefused(t *testing.T) {
	e := newSecEnv(t)
	for _, body := range []string{
		`{"email":"dup1@example.com","password":"tulip-garden-42","email":"dup2@example.com"}`,
		`{"email":"dup1@example.com","password":"tulip-garden-42","Email":"dup2@example.com"}`,
	} {
		if st, out := e.apiCall(http.MethodPost, "/api/v1/register", "", body); st != http.StatusBadRequest {
			t.Fatalf("%s: %d %v", body, st, out)
		}
	}
	if n := e.count(`SELECT count(*) FROM users`); n != 0 {
		t.Fatalf("users = %d after refused bodies", n)
	}
}

// A login with an address longer than any email is refused before anything
// is written: no backoff row, no audit line.
func TestLogin_OverlongEmailWritesNothing(t *testing.T) {
	e := newSecEnv(t)
	c := e.acctClient("192.0.2.30")
	_, page := c.do(http.MethodGet, "/login", nil)
	before := e.count(`SELECT count(*) FROM audit_events`)
	f := secHidden(page)
	f.Set("email", strings.Repeat("x", 100_000)+"@example.com")
	f.Set("password", "whatever-password")
	if rec, _ := c.do(http.MethodPost, "/login", f); rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
	if n := e.count(`SELECT count(*) FROM login_failures`); n != 0 {
		t.Errorf("login_failures rows = %d", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_events`); n != before {
		t.Errorf("audit rows %d → %d", before, n)
	}
}

// An attacker failing from other addresses cannot lock the owner, on an
// address of their own, out; the attacker's address is told how long to
// wait, in the message and in Retry-After.
func TestLogin_LockoutCannotBeAimed(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("aimed@example.com")
	attacker := e.acctClient("198.51.100.9")
	// The lock after the 6th failure is 1s, then 2s, 4s…: on a slow
	// machine a short one may pass before the next attempt, a longer not.
	var rec *httptest.ResponseRecorder
	for i := 0; i < 12; i++ {
		if rec = attacker.login(u.Email, fmt.Sprintf("guess-%d-wrong", i)); rec.Code != http.StatusUnauthorized {
			break
		}
	}
	if rec.Code != http.StatusTooManyRequests {
		t.Fatalf("repeated failures from one address: %d, want 429", rec.Code)
	}
	ra := rec.Header().Get("Retry-After")
	if ra == "" || !strings.Contains(rec.Body.String(), "Please wait "+waitText(ra)) {
		t.Fatalf("Retry-After %q and message disagree:\n%s", ra, rec.Body.String())
	}
	owner := e.acctClient("203.0.113.50")
	if rec := owner.login(u.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("owner on another address: %d\n%s", rec.Code, rec.Body.String())
	}
}

// Every login costs one password hash, with and without an account, at
// every password length class; and the whole login path's timing agrees.
func TestLogin_NoTimingOracle(t *testing.T) {
	e := newSecEnv(t, "AUTHD_BCRYPT_COST=8")
	e.mustUser("timing@example.com")
	hasher := e.accts.Hasher()
	type class struct {
		email string
		n     int
	}
	var classes []class
	for _, email := range []string{"timing@example.com", "nobody-here@example.com"} {
		for _, n := range []int{12, 72, 73, 500} {
			classes = append(classes, class{email, n})
		}
	}
	samples := make([][]time.Duration, len(classes))
	for round := 0; round < 7; round++ {
		// Round-robin, so load on the machine weighs on every class alike.
		for i, cl := range classes {
			c := e.acctClient(fmt.Sprintf("10.99.%d.%d", round, i)) // a fresh address: no backoff
			_, page := c.do(http.MethodGet, "/login", nil)
			f := secHidden(page)
			f.Set("email", cl.email)
			f.Set("password", strings.Repeat("q", cl.n))
			before := hasher.Ops()
			start := time.Now()
			rec, _ := c.do(http.MethodPost, "/login", f)
			samples[i] = append(samples[i], time.Since(start))
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("%s/%d: status %d", cl.email, cl.n, rec.Code)
			}
			if ops := hasher.Ops() - before; ops != 1 {
				t.Fatalf("%s with a %d-byte password: %d hash computations, want 1", cl.email, cl.n, ops)
			}
		}
	}
	medians := make([]time.Duration, len(classes))
	for i, s := range samples {
		sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
		medians[i] = s[len(s)/2]
	}
	lo, hi := medians[0], medians[0]
	for _, m := range medians {
		lo, hi = min(lo, m), max(hi, m)
	}
	// The fixed oracle was 10× and more; a generous bound keeps a noisy
	// shared machine from failing an equal-cost path.
	t.Logf("login medians per class: %v", medians)
	if hi > 4*lo {
		t.Fatalf("login medians differ by more than 4×: %v (classes %v)", medians, classes)
	}
}

// In production the pages' cookies are __Host- cookies (Secure, Path=/, no
// Domain), and a plain-named cookie a sibling subdomain could plant is ignored.
func TestHostedPages_HostPrefixCookiesInProduction(t *testing.T) {
	e := newSecEnv(t, "AUTHD_ENV=production")
	u := e.mustUser("prod@example.com")
	c := e.acctClient("192.0.2.40")
	c.do(http.MethodGet, "/login", nil)
	check := func(want string) string {
		t.Helper()
		for _, ck := range c.setCookies {
			if ck.Name == want {
				if !ck.Secure || ck.Path != "/" || ck.Domain != "" || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
					t.Fatalf("%s: %+v", want, ck)
				}
				return ck.Value
			}
		}
		t.Fatalf("no %s cookie in %v", want, c.setCookies)
		return ""
	}
	check("__Host-authd_csrf")
	f := secHidden(func() string { _, p := c.do(http.MethodGet, "/login", nil); return p }())
	f.Set("email", u.Email)
	f.Set("password", secUserPass)
	if rec, _ := c.do(http.MethodPost, "/login", f); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	session := check("__Host-authd_session")
	planted := e.acctClient("192.0.2.41")
	planted.cookies["authd_session"] = session
	if rec, _ := planted.do(http.MethodGet, "/account", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("a plain authd_session cookie was honoured in production: %d", rec.Code)
	}
}

// A CSRF cookie planted in the victim's browser together with its token
// (which the attacker got for themselves) does not fit the victim's session.
func TestHostedPages_CSRFTokenBoundToSession(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("csrf-victim@example.com")
	attacker := e.acctClient("198.51.100.60")
	_, page := attacker.do(http.MethodGet, "/login", nil)
	plantedCookie, plantedToken := attacker.cookies["authd_csrf"], secHidden(page).Get("csrf_token")

	victim := e.acctClient("192.0.2.60")
	if rec := victim.login(u.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	victim.cookies["authd_csrf"] = plantedCookie
	rec, _ := victim.do(http.MethodPost, "/account/profile", url.Values{"csrf_token": {plantedToken}, "name": {"Pwned"}, "email": {u.Email}})
	if rec.Code != http.StatusForbidden {
		t.Fatalf("planted CSRF pair accepted: %d", rec.Code)
	}
	if got, _ := e.accts.User(context.Background(), u.ID); got.Name == "Pwned" {
		t.Fatal("the profile changed")
	}
	// The victim's own page still works.
	_, page = victim.do(http.MethodGet, "/account", nil)
	if rec, _ := victim.do(http.MethodPost, "/account/profile", url.Values{"csrf_token": {secHidden(page).Get("csrf_token")}, "name": {"Victim"}, "email": {u.Email}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("own form: %d", rec.Code)
	}
}

func TestHostedPages_SessionLifetimeFromConfig(t *testing.T) {
	e := newSecEnv(t, "AUTHD_SESSION_MAX_AGE=2h", "AUTHD_SESSION_IDLE_TIMEOUT=30m")
	u := e.mustUser("life@example.com")
	c := e.acctClient("192.0.2.70")
	c.login(u.Email, secUserPass)
	for _, ck := range c.setCookies {
		if ck.Name == "authd_session" {
			if d := time.Until(ck.Expires); d < 119*time.Minute || d > 121*time.Minute {
				t.Fatalf("session cookie expires in %s, want 2h", d)
			}
			return
		}
	}
	t.Fatal("no session cookie")
}

func TestCLI_UserCreateAppliesPasswordPolicy(t *testing.T) {
	db := storagetest.NewDB(t)
	env := map[string]string{"AUTHD_DATABASE_URL": db.URL}
	for _, pw := range []string{"123", "password123", strings.Repeat("x", 73)} {
		if _, err := runCLI(t, env, "", "user", "create", "--email", "weak@example.com", "--password", pw); err == nil || !strings.Contains(err.Error(), "--password") {
			t.Fatalf("password %q: err = %v", pw, err)
		}
	}
	if _, err := runCLI(t, env, "", "user", "create", "--email", "weak@example.com", "--password", "tulip-garden-42", "--name", "a\u202Eb"); err == nil {
		t.Fatal("a name with a bidi override was accepted")
	}
	if _, err := runCLI(t, env, "tulip-garden-42\n", "user", "create", "--email", "ok@example.com", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	var n int
	_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&n)
	if n != 1 {
		t.Fatalf("users = %d, want 1", n)
	}
}

func TestDev_ListensOnLoopbackByDefault(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	if got := devListen(":8080", unset); got != "127.0.0.1:8080" {
		t.Fatalf("AUTHD_LISTEN unset: dev listens on %q, want 127.0.0.1:8080", got)
	}
	set := func(k string) (string, bool) { return "0.0.0.0:9000", k == "AUTHD_LISTEN" }
	if got := devListen("0.0.0.0:9000", set); got != "0.0.0.0:9000" {
		t.Fatalf("AUTHD_LISTEN set: %q", got)
	}
}

// The dev banner shows the admin password only while it works: after the
// admin changed it, a restart says so instead of printing a dead one.
func TestDev_BannerNeverPrintsADeadPassword(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		t.Fatal(err)
	}
	db := storagetest.NewDB(t)
	boot := func() string { b, _ := devBanner(t, db); return b }
	first := boot()
	creds, err := loadDevCredentials()
	if err != nil || creds.AdminPassword == "" {
		t.Fatalf("credentials: %+v %v", creds, err)
	}
	if !strings.Contains(first, "admin@localhost / "+creds.AdminPassword) {
		t.Fatalf("first run does not show the new password:\n%s", first)
	}
	if again := boot(); !strings.Contains(again, "admin@localhost / "+creds.AdminPassword) {
		t.Fatalf("a restart hides a password that still works:\n%s", again)
	}
	h, _ := accounts.NewPasswordHasher("bcrypt", 4, 0)
	svc := accounts.New(db.Pool, h, nil, accounts.Config{})
	admin, err := svc.UserByEmail(context.Background(), "admin@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetPassword(context.Background(), db.Pool, admin.ID, "the-admins-own-pass"); err != nil {
		t.Fatal(err)
	}
	changed := boot()
	if strings.Contains(changed, creds.AdminPassword) || !strings.Contains(changed, "password changed") {
		t.Fatalf("banner after the password changed:\n%s", changed)
	}
}

// devBanner runs buildApp with the dev extras on db, as `authd dev` does,
// stops it, and returns what it printed and the issuer. The caller chdirs
// to a directory holding devDir.
func devBanner(t *testing.T, db *storagetest.DB) (banner, issuer string) {
	t.Helper()
	cfg, err := config.FromEnv([]string{"AUTHD_SECRETS_KEY=" + secTestKey, "AUTHD_BCRYPT_COST=4"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = db.URL
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	rt := &runtime{cfg: cfg, log: zap.NewNop(), pool: db.Pool, reg: prometheus.NewRegistry(), ready: make(chan struct{}), dev: &devExtras{out: &out}}
	a, err := buildApp(ctx, rt)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cancel()
	a.wait()
	a.close()
	return out.String(), cfg.Issuer
}
