package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/oauth/clients"
)

// A review of the route policies, as an attacker. Each test here
// describes one hole found in the implementation and fails while the hole
// is open.

// adminToken returns an admin user's first-party token with scope admin.
func (e *secEnv) reviewAdminToken() string {
	e.tb.Helper()
	admin := e.mustUser("review-admin-"+secRand()[:6]+"@example.com", "admin")
	id, secret := e.firstParty()
	return e.passwordToken(id, secret, admin.Email, "openid admin")["access_token"].(string)
}

// TestAttack_ChargeCapsAreNotEnforced: and docs/security.md say
// a client's charge_max_per_spend / charge_max_per_user_day are enforced by
// the ledger (409 charge_cap_exceeded). They are stored and shown, but
// nothing reads them (clients.Registry.ChargeCaps has no caller): a
// charging service capped at 10 credits per charge and 20 per day takes the
// user's whole balance in one call.
func TestAttack_ChargeCapsAreNotEnforced(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("capped@example.com")
	adminTok := e.reviewAdminToken()
	if rec := e.callAPI("POST", "/admin/v1/users/"+u.ID+"/credits/grant", adminTok,
		`{"amount":1000,"reference":"seed","description":"seed"}`); rec.Code != http.StatusCreated {
		t.Fatalf("seed grant: %d %s", rec.Code, rec.Body)
	}
	svc, svcSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"credits:charge"},
		ChargeMaxPerSpend: 10, ChargeMaxPerUserDay: 20})
	st, _, out := e.postForm("/oauth2/token", svc, svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}})
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, out)
	}
	tok := out["access_token"].(string)

	rec := e.callAPI("POST", "/api/v1/users/"+u.ID+"/credits/spend", tok, `{"amount":1000,"reference":"drain","description":"x"}`)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "charge_cap_exceeded") {
		t.Errorf("charge of 1000 by a client capped at 10 per charge: %d %s", rec.Code, rec.Body)
	}
	// Per user per day: three charges of 10 with a daily cap of 20, on a
	// user the first charge did not drain.
	u2 := e.mustUser("capped-daily@example.com")
	if rec := e.callAPI("POST", "/admin/v1/users/"+u2.ID+"/credits/grant", adminTok,
		`{"amount":1000,"reference":"seed","description":"seed"}`); rec.Code != http.StatusCreated {
		t.Fatalf("seed grant: %d %s", rec.Code, rec.Body)
	}
	for i, ref := range []string{"d1", "d2", "d3"} {
		rec := e.callAPI("POST", "/api/v1/users/"+u2.ID+"/credits/spend", tok, `{"amount":10,"reference":"`+ref+`","description":"x"}`)
		if i == 2 && (rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "charge_cap_exceeded")) {
			t.Errorf("third charge of 10 under a daily cap of 20: %d %s", rec.Code, rec.Body)
		}
	}
}

// firstPartyWebApp is a confidential first-party code-flow client that may
// ask for the account scope (authd's own account app).
func (e *secEnv) firstPartyWebApp() (id, secret string) {
	return e.mustClient(clients.Spec{Name: "account app", FirstParty: true, RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes:     []string{"openid", "profile", "email", "offline_access", "account"}})
}

// ageLogin makes every browser session of user look authenticated long ago
// (a browser left logged in, or a token obtained from an old session).
func (e *secEnv) ageLogin(userID string, age time.Duration) {
	e.tb.Helper()
	if _, err := e.db.Pool.Exec(context.Background(),
		`UPDATE browser_sessions SET auth_time = now() - $2::interval WHERE user_id = $1`, userID, age.String()); err != nil {
		e.tb.Fatal(err)
	}
}

// TestAttack_EmailChangeNeedsNoPasswordNorRecentLogin_API: the design
// asks that changing the email needs the current password or a login no
// older than a few minutes (auth_time). PATCH /api/v1/me reads neither
// (Principal.AuthTime is carried but never checked): a first-party token
// from a login two hours old (or a stolen one, refreshed for 30 days)
// changes the email, and one password reset later the account is gone.
func TestAttack_EmailChangeNeedsNoPasswordNorRecentLogin_API(t *testing.T) {
	e := newSecEnv(t)
	victim := e.mustUser("victim-api@example.com")
	app, appSecret := e.firstPartyWebApp()
	b := e.browser()
	e.codeFor(b, app, victim.Email, url.Values{"scope": {"openid account"}}) // logs in
	e.ageLogin(victim.ID, 2*time.Hour)
	code, verifier := e.codeFor(b, app, victim.Email, url.Values{"scope": {"openid account"}})
	st, out := e.exchange(app, appSecret, code, verifier)
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, out)
	}
	tok := out["access_token"].(string)
	at, _ := jwtClaims(t, tok)["auth_time"].(float64)
	if age := time.Since(time.Unix(int64(at), 0)); age < 90*time.Minute {
		t.Fatalf("token auth_time is only %s old", age)
	}
	rec := e.callAPI("PATCH", "/api/v1/me", tok, `{"email":"attacker@evil.example"}`)
	if rec.Code == http.StatusOK {
		t.Errorf("PATCH /me email with a 2h-old login and no current password: %d %s", rec.Code, rec.Body)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1 AND pending_email = 'attacker@evil.example'`, victim.ID); n != 0 {
		t.Errorf("the attacker's address is pending on the victim's account")
	}
}

// TestAttack_EmailChangeNeedsNoPasswordNorRecentLogin_Page: the same on the
// hosted /account page ("on the API and on the hosted /account page
// alike"): a browser session logged in hours ago changes the email with
// no password.
func TestAttack_EmailChangeNeedsNoPasswordNorRecentLogin_Page(t *testing.T) {
	e := newSecEnv(t)
	victim := e.mustUser("victim-page@example.com")
	app, _ := e.firstPartyWebApp()
	b := e.browser()
	e.codeFor(b, app, victim.Email, url.Values{"scope": {"openid"}}) // logs in
	e.ageLogin(victim.ID, 2*time.Hour)
	_, page := b.get(e.URL + "/account")
	f := secHidden(page)
	if f.Get("csrf_token") == "" {
		t.Fatalf("no account form:\n%s", page)
	}
	f.Set("name", "")
	f.Set("email", "attacker@evil.example")
	resp, body := b.post(e.URL+"/account/profile", f)
	if resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "done=email") {
		t.Errorf("/account/profile changed the email from a 2h-old login without the password: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1 AND pending_email = 'attacker@evil.example'`, victim.ID); n != 0 {
		t.Errorf("the attacker's address is pending on the victim's account\n%.300s", body)
	}
}

// TestAttack_FirstPartyPublicClientGetsSilentCode: (RFC 8252
// §8.6): a public client never gets a code without user interaction. The
// consent branch of authorize is skipped for first-party clients, public
// or not, so anything that can listen on a loopback port (any port: the
// client is public) gets a code with prompt=none, silently, for the
// logged-in user, and redeems it with its own PKCE verifier: a token with
// the account scope (sessions, email).
func TestAttack_FirstPartyPublicClientGetsSilentCode(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("native-user@example.com")
	native, _ := e.mustClient(clients.Spec{Name: "authd desktop", Public: true, FirstParty: true,
		RedirectURIs: []string{secRedirect}, GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid", "profile", "account"}})
	b := e.browser()
	e.codeFor(b, native, u.Email, url.Values{"scope": {"openid"}}) // the real app, with the user logging in

	// Later, a process on the user's machine, on a port of its own:
	const evil = "http://127.0.0.1:4444/cb"
	verifier, challenge := secPKCE()
	resp, page := b.get(secAuthURL(e.URL, native, challenge, url.Values{"redirect_uri": {evil},
		"scope": {"openid account"}, "prompt": {"none"}}))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := ""
	if loc != nil {
		code = loc.Query().Get("code")
	}
	if code == "" {
		return // refused (consent_required / interaction_required): the hole is closed
	}
	t.Errorf("a first-party public client got a code with prompt=none at %s (%d)\n%.200s", loc, resp.StatusCode, page)
	st, _, out := e.postForm("/oauth2/token", "", "", url.Values{"grant_type": {"authorization_code"}, "client_id": {native},
		"code": {code}, "redirect_uri": {evil}, "code_verifier": {verifier}})
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, out)
	}
	if rec := e.callAPI("GET", "/api/v1/me/sessions", out["access_token"].(string), ""); rec.Code == http.StatusOK {
		t.Errorf("and its token reads the user's sessions: %s", rec.Body)
	}
}

// TestAttack_ConsentForAResourceServerCoversAuthd: remembered
// consent covers only the audiences shown. A request with no audience is
// granted authd's own (the issuer), but hasConsent compares the requested
// audiences ([]) with the remembered ones, and [] is covered by anything:
// after the user consented to a token for https://notes.example only (the
// page named notes, not authd), the client silently gets a token for
// authd's APIs with the same scopes.
func TestAttack_ConsentForAResourceServerCoversAuthd(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("notes-user@example.com")
	conf, confSecret := e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect}, Audience: []string{"https://notes.example"},
		Scopes: []string{"openid", "profile", "offline_access", "credits:read"}})
	b := e.browser()
	_, challenge := secPKCE()
	forNotes := url.Values{"audience": {"https://notes.example"}, "scope": {"openid profile credits:read"}}
	resp, page := b.get(secAuthURL(e.URL, conf, challenge, forNotes))
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/login"`) {
		resp, page = b.login(e.URL, page, u.Email)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/consent"`) {
		t.Fatalf("no consent page: %d\n%s", resp.StatusCode, page)
	}
	f := secHidden(page)
	f.Set("decision", "allow")
	if resp, _ := b.post(e.URL+"/consent", f); !strings.HasPrefix(resp.Header.Get("Location"), secRedirect) {
		t.Fatalf("consent: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	verifier, challenge := secPKCE()
	authdURL := secAuthURL(e.URL, conf, challenge, url.Values{"scope": {"openid profile credits:read"}})
	if shown, _ := consentShown(t, b, authdURL); shown {
		return // asked again: the hole is closed
	}
	t.Error("consent given for https://notes.example silently approved a token for authd's own APIs")
	resp, _ = b.get(authdURL)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	st, out := e.exchange(conf, confSecret, loc.Query().Get("code"), verifier)
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, out)
	}
	tok := out["access_token"].(string)
	if aud := toJSON(jwtClaims(t, tok)["aud"]); aud != `["`+e.URL+`"]` {
		t.Fatalf("aud %s", aud)
	}
	if rec := e.callAPI("GET", "/api/v1/credits", tok, ""); rec.Code == http.StatusOK {
		t.Errorf("and the token reads the user's credits at authd: %s", rec.Body)
	}
}

// TestAttack_ConsentPostSkipsExactRedirect: confidential
// clients' redirect URIs match exactly. authorize checks exactRedirect,
// but POST /consent re-parses return_to through fosite alone (which
// accepts any loopback port) and issues the code, so a consent form whose
// return_to names another port redirects the code there.
func TestAttack_ConsentPostSkipsExactRedirect(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("consent-port@example.com")
	conf, _ := e.webClient()
	b := e.browser()
	_, challenge := secPKCE()
	resp, page := b.get(secAuthURL(e.URL, conf, challenge, nil))
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/login"`) {
		resp, page = b.login(e.URL, page, u.Email)
	}
	if !strings.Contains(page, `action="/consent"`) {
		t.Fatalf("no consent page: %d\n%s", resp.StatusCode, page)
	}
	f := secHidden(page)
	rt, err := url.Parse(f.Get("return_to"))
	if err != nil || rt.Path != "/oauth2/auth" {
		t.Fatalf("return_to %q", f.Get("return_to"))
	}
	q := rt.Query()
	q.Set("redirect_uri", "http://127.0.0.1:7777/cb")
	f.Set("return_to", "/oauth2/auth?"+q.Encode())
	f.Set("decision", "allow")
	resp, body := b.post(e.URL+"/consent", f)
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "http://127.0.0.1:7777/") {
		t.Errorf("POST /consent redirected a confidential client's code to another loopback port: %s\n%.200s", loc, body)
	}
}

// TestAttack_IntrospectionOracleInMetrics: an unauthorised
// introspection must be indistinguishable from an unknown token. The body
// is, but the public /metrics (docs/operating.md: "public on the listen
// port") counts it as result="unauthorized" and an unknown token as
// "inactive", so a client learns that another client's token is live by
// reading the counter before and after.
func TestAttack_IntrospectionOracleInMetrics(t *testing.T) {
	e := newSecEnv(t)
	victim, victimSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"credits:read"}})
	prober, proberSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"credits:read"}})
	st, _, out := e.postForm("/oauth2/token", victim, victimSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:read"}})
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, out)
	}
	live := out["access_token"].(string)
	metrics := func() string {
		resp, err := http.Get(e.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "authd_oauth_introspections_total{") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	probe := func(tok string) string {
		before := metrics()
		if st, _, out := e.postForm("/oauth2/introspect", prober, proberSecret, url.Values{"token": {tok}}); st != http.StatusOK || out["active"] != false {
			t.Fatalf("introspect: %d %v", st, out)
		}
		after := metrics()
		return diffLines(before, after)
	}
	unknown := probe(live[:len(live)-4] + "AAAA")
	known := probe(live)
	if strings.ReplaceAll(unknown, "2", "1") != strings.ReplaceAll(known, "2", "1") {
		t.Errorf("/metrics tells a live foreign token from an unknown one:\nunknown token moved %q\nlive token moved    %q", unknown, known)
	}
}

// diffLines returns the lines of after that are not in before, with
// their values dropped.
func diffLines(before, after string) string {
	seen := map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		seen[l] = true
	}
	var out []string
	for _, l := range strings.Split(after, "\n") {
		if !seen[l] {
			if i := strings.LastIndex(l, " "); i > 0 {
				l = l[:i]
			}
			out = append(out, l)
		}
	}
	return strings.Join(out, ",")
}

// TestAttack_ChargingClientNotRecorded: "the ledger records
// the charging client on every transaction". A third-party app spending
// the user's credits with credits:spend (or an admin charging through a
// client) is recorded as actor user (or admin) only: nothing in the
// transaction or its audit event names the client that spent.
func TestAttack_ChargingClientNotRecorded(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("spender@example.com")
	adminTok := e.reviewAdminToken()
	if rec := e.callAPI("POST", "/admin/v1/users/"+u.ID+"/credits/grant", adminTok,
		`{"amount":100,"reference":"seed","description":"seed"}`); rec.Code != http.StatusCreated {
		t.Fatalf("seed grant: %d %s", rec.Code, rec.Body)
	}
	web, webSecret := e.webClient()
	b := e.browser()
	code, verifier := e.codeFor(b, web, u.Email, url.Values{"scope": {"openid credits:spend"}})
	st, out := e.exchange(web, webSecret, code, verifier)
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, out)
	}
	rec := e.callAPI("POST", "/api/v1/credits/spend", out["access_token"].(string), `{"amount":7,"reference":"app-spend","description":"x"}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("spend: %d %s", rec.Code, rec.Body)
	}
	var tx struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &tx)
	n := e.count(`SELECT count(*) FROM ledger_transactions t WHERE t.id = $1 AND row_to_json(t)::text LIKE '%' || $2 || '%'`, tx.ID, web)
	n += e.count(`SELECT count(*) FROM audit_events a WHERE row_to_json(a)::text LIKE '%' || $1 || '%' AND row_to_json(a)::text LIKE '%' || $2 || '%'`, tx.ID, web)
	if n == 0 {
		t.Errorf("the spend by client %s is recorded without the client (transaction %s)", web, tx.ID)
	}
}

// TestAttack_APIAudienceSettingLocksOutEveryToken: AUTHD_API_AUDIENCE is
// read by the guard only. Tokens still get the issuer when no audience is
// asked for (grantAudience), and the audience strategy lets clients name
// the issuer, not the API audience; so with the setting on, no token a
// client gets by default works at any authd API. (Functional, not a
// hole: the fail-safe direction.)
func TestAttack_APIAudienceSettingLocksOutEveryToken(t *testing.T) {
	e := newSecEnv(t, "AUTHD_API_AUDIENCE=https://api.authd.example")
	u := e.mustUser("aud-setting@example.com")
	id, secret := e.firstParty()
	tok := e.passwordToken(id, secret, u.Email, "openid profile")["access_token"].(string)
	if rec := e.callAPI("GET", "/api/v1/me", tok, ""); rec.Code != http.StatusOK {
		t.Errorf("GET /me with a default token and AUTHD_API_AUDIENCE set: %d (aud %s)", rec.Code, toJSON(jwtClaims(t, tok)["aud"]))
	}
	if aud := toJSON(jwtClaims(t, tok)["aud"]); aud != `["https://api.authd.example"]` {
		t.Errorf("a default token's aud is %s, want the API audience", aud)
	}
	// The setting replaces the issuer: a token for the issuer alone (a
	// client registered with it as an audience) is now a token for someone
	// else, refused like any other at every authd API.
	cid, csecret := e.mustClient(clients.Spec{Name: "issuer-aud", FirstParty: true, GrantTypes: []string{"password"},
		Audience: []string{e.URL}, Scopes: []string{"openid", "profile"}})
	st, _, out := e.postForm("/oauth2/token", cid, csecret, url.Values{"grant_type": {"password"}, "username": {u.Email},
		"password": {secUserPass}, "scope": {"openid profile"}, "audience": {e.URL}})
	if st != http.StatusOK {
		t.Fatalf("token for the issuer's audience: %d %v", st, out)
	}
	issuerTok := out["access_token"].(string)
	for _, path := range []string{"/api/v1/me", "/userinfo"} {
		if rec := e.callAPI("GET", path, issuerTok, ""); rec.Code != http.StatusUnauthorized ||
			!strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("GET %s with aud %s and AUTHD_API_AUDIENCE set: %d", path, toJSON(jwtClaims(t, issuerTok)["aud"]), rec.Code)
		}
	}
}

// TestAttack_ProfileScopeReadsTheEmail: the consent page says profile is
// "See your name and roles", and /userinfo gives the email only with scope
// email; but GET /api/v1/me (policy: profile or account) answers the whole
// account record, email, email_verified and pending_email included, to a
// third-party token the user never granted email.
func TestAttack_ProfileScopeReadsTheEmail(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("private-address@example.com")
	web, webSecret := e.webClient()
	b := e.browser()
	code, verifier := e.codeFor(b, web, u.Email, url.Values{"scope": {"openid profile"}})
	st, out := e.exchange(web, webSecret, code, verifier)
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, out)
	}
	tok := out["access_token"].(string)
	if rec := e.callAPI("GET", "/userinfo", tok, ""); strings.Contains(rec.Body.String(), u.Email) {
		t.Fatalf("control: /userinfo gave the email without scope email: %s", rec.Body)
	}
	rec := e.callAPI("GET", "/api/v1/me", tok, "")
	if rec.Code == http.StatusOK && strings.Contains(rec.Body.String(), u.Email) {
		t.Errorf("GET /api/v1/me with scopes openid profile (no email) reveals the email: %s", rec.Body)
	}
}
