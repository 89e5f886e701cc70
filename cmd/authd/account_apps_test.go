package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/oauth/clients"
)

// TestAccountPage_RolesCreditsAndRevokingAnApp: /account shows the user's
// roles, balance and recent transactions and the apps they allowed; "revoke
// access" (a CSRF-checked POST) kills that app's tokens for this user and
// forgets the consent, and touches nothing of anyone else's.
func TestAccountPage_RolesCreditsAndRevokingAnApp(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("owner@example.com")
	other := e.mustUser("neighbour@example.com")
	web, webSecret := e.mustClient(clients.Spec{Name: "Photo Printer", RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"}})

	// Credits, granted through the admin API.
	ops, opsSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	st, _, out := e.postForm("/oauth2/token", ops, opsSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
	if st != http.StatusOK {
		t.Fatalf("admin token: %d %v", st, out)
	}
	if rec := e.callAPI("POST", "/admin/v1/users/"+u.ID+"/credits/grant", out["access_token"].(string),
		`{"amount":42,"reference":"welcome","description":"welcome credits"}`); rec.Code != http.StatusCreated {
		t.Fatalf("grant: %d %s", rec.Code, rec.Body)
	}

	b := e.browser()
	mine := e.tokens(b, web, webSecret, u.Email)["refresh_token"].(string)
	theirs := e.tokens(e.browser(), web, webSecret, other.Email)["refresh_token"].(string)

	resp, page := b.get(e.URL + "/account")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/account: %d", resp.StatusCode)
	}
	for _, want := range []string{"<code>user</code>", `id="credit-balance">42<`, "welcome credits", "Photo Printer", `name="client_id" value="` + web + `"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/account lacks %q", want)
		}
	}
	form := secHidden(page)
	// An administrator sees the app among the user's linked apps.
	root := e.mustUser("root@example.com", "admin")
	adm, _ := e.loggedIn(root.Email)
	if _, admPage := adm.get(e.URL + "/admin/users/" + u.ID); !strings.Contains(admPage, `id="linked-apps"`) || !strings.Contains(admPage, "Photo Printer") {
		t.Errorf("the console's user page does not list the linked app:\n%s", admPage)
	}

	// Without the CSRF token nothing happens.
	if resp, _ := b.post(e.URL+"/account/apps/revoke", url.Values{"client_id": {web}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("revoke without CSRF: %d", resp.StatusCode)
	}
	if !e.active(web, webSecret, mine) {
		t.Fatal("a POST without CSRF revoked the app")
	}

	resp, _ = b.post(e.URL+"/account/apps/revoke", url.Values{"csrf_token": {form.Get("csrf_token")}, "client_id": {web}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.String(), "done=app") {
		t.Fatalf("revoke: %d %s", resp.StatusCode, resp.Request.URL)
	}
	if e.active(web, webSecret, mine) {
		t.Error("the revoked app's refresh token is still active")
	}
	if st, _, out := e.postForm("/oauth2/token", web, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {mine}}); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Errorf("refresh after revoke: %d %v", st, out)
	}
	if n := e.count(`SELECT count(*) FROM oauth2_consents WHERE user_id = $1`, u.ID); n != 0 {
		t.Errorf("%d consents left for the user", n)
	}
	_, challenge := secPKCE()
	if shown, _ := consentShown(t, b, secAuthURL(e.URL, web, challenge, nil)); !shown {
		t.Error("the app was approved silently after its access was revoked")
	}
	// The neighbour's grant of the same app lives on.
	if !e.active(web, webSecret, theirs) {
		t.Error("revoking one user's app revoked another user's token")
	}
	if n := e.count(`SELECT count(*) FROM oauth2_consents WHERE user_id = $1`, other.ID); n != 1 {
		t.Errorf("the neighbour has %d consents, want 1", n)
	}
}

// TestAdminAPI_AuditFilterByTime: since and until bound the events by when
// they happened; a malformed time is a 400 naming the parameter.
func TestAdminAPI_AuditFilterByTime(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.adminToken
	e.must(201, "POST", "/admin/v1/roles", tok, map[string]string{"name": "timed", "description": "x"}, nil)
	// A moment on the database's clock between the two events.
	var cut time.Time
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&cut); err != nil {
		t.Fatal(err)
	}
	e.must(201, "POST", "/admin/v1/roles", tok, map[string]string{"name": "later", "description": "x"}, nil)
	var page struct {
		Items []struct {
			Type     string `json:"type"`
			TargetID string `json:"target_id"`
		} `json:"items"`
	}
	targets := func(q string) []string {
		e.must(200, "GET", "/admin/v1/audit?type=role.created&"+q, tok, nil, &page)
		var out []string
		for _, it := range page.Items {
			out = append(out, it.TargetID)
		}
		return out
	}
	at := cut.UTC().Format(time.RFC3339Nano)
	if got := targets("since=" + url.QueryEscape(at)); strings.Join(got, ",") != "later" {
		t.Errorf("since %s: %v", at, got)
	}
	if got := targets("until=" + url.QueryEscape(at)); strings.Join(got, ",") != "timed" {
		t.Errorf("until %s: %v", at, got)
	}
	st, b := e.call("GET", "/admin/v1/audit?since=yesterday", tok, nil)
	wantProblem(t, "since=yesterday", st, b, 400, "invalid_request")
}

// TestAccountPage_AppsInTheBrowser: the account page's roles, credits and
// allowed apps in headless Chromium, and "revoke access" clicked there.
func TestAccountPage_AppsInTheBrowser(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("reader@example.com")
	web, _ := e.mustClient(clients.Spec{Name: "Photo Printer", RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"}})
	if _, err := e.db.Pool.Exec(context.Background(), `INSERT INTO oauth2_consents (user_id, client_id, scopes, audiences)
		VALUES ($1, $2, '{openid,profile}', ARRAY[$3])`, u.ID, web, e.URL); err != nil {
		t.Fatal(err)
	}
	ops, opsSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	st, _, out := e.postForm("/oauth2/token", ops, opsSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
	if st != http.StatusOK {
		t.Fatalf("admin token: %d %v", st, out)
	}
	if rec := e.callAPI("POST", "/admin/v1/users/"+u.ID+"/credits/grant", out["access_token"].(string),
		`{"amount":25,"reference":"welcome","description":"Welcome credits"}`); rec.Code != http.StatusCreated {
		t.Fatalf("grant: %d %s", rec.Code, rec.Body)
	}
	b := newConsoleBrowser(t)
	b.open(e.URL + "/account")
	b.fill("email", u.Email, "password", secUserPass)
	if st := b.submit("/login"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	b.mustSee("Roles and credits", "Credit balance: 25", "grant: Welcome credits", "Apps you allowed", "Photo Printer", "openid profile")
	b.shot("account-apps")
	b.submit("/account/apps/revoke", web)
	b.mustSee("The app's access was revoked.", "You have not allowed any app yet.")
	if n := e.count(`SELECT count(*) FROM oauth2_consents WHERE user_id = $1`, u.ID); n != 0 {
		t.Errorf("%d consents left", n)
	}
}

// TestConsole_AuditFilterByDay: the console's audit log takes a range of
// UTC days; a malformed date is said, not guessed.
func TestConsole_AuditFilterByDay(t *testing.T) {
	e := newSecEnv(t)
	root := e.mustUser("root@example.com", "admin")
	b, _ := e.loggedIn(root.Email)
	if _, err := e.accts.CreateRole(context.Background(), audit.Event{ActorType: audit.ActorAdmin, ActorID: root.ID}, "dated", "x"); err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	if _, page := b.get(e.URL + "/admin/audit?type=role.created&from=" + today + "&to=" + today); !strings.Contains(page, "<code>dated</code>") {
		t.Errorf("today's events missing:\n%s", page)
	}
	if _, page := b.get(e.URL + "/admin/audit?type=role.created&from=" + tomorrow); strings.Contains(page, "<code>dated</code>") || !strings.Contains(page, "No events match.") {
		t.Errorf("tomorrow shows today's events:\n%s", page)
	}
	if resp, page := b.get(e.URL + "/admin/audit?from=03/12/2026"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "YYYY-MM-DD") {
		t.Errorf("malformed date: %d", resp.StatusCode)
	}
}
