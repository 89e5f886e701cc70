package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/authd/authd/internal/testkit"
)

// consoleBrowser is headless Chromium driving the console, with the
// test's helpers bound to it.
type consoleBrowser struct {
	t   *testing.T
	ctx context.Context
}

func newConsoleBrowser(t *testing.T) *consoleBrowser {
	t.Helper()
	ctx := testkit.Chromium(t, 120*time.Second)
	return &consoleBrowser{t: t, ctx: ctx}
}

// open navigates and returns the final HTTP status.
func (b *consoleBrowser) open(u string) int64 {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(u))
	if err != nil {
		b.t.Fatalf("open %s: %v", u, err)
	}
	return resp.Status
}

// fill sets the values of inputs by id (setValue).
func (b *consoleBrowser) fill(fields ...string) {
	b.t.Helper()
	for i := 0; i+1 < len(fields); i += 2 {
		if err := chromedp.Do(b.ctx, setValue(fields[i], fields[i+1])); err != nil {
			b.t.Fatalf("fill %s: %v", fields[i], err)
		}
	}
}

func (b *consoleBrowser) choose(id, value string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.SetValue(chromedp.ID(id), value)); err != nil {
		b.t.Fatalf("choose %s=%s: %v", id, value, err)
	}
}

// submit clicks the button of the form posting to action (the first one
// matching extra, e.g. a hidden input's value) and returns the resulting
// page's status.
func (b *consoleBrowser) submit(action string, extra ...string) int64 {
	b.t.Helper()
	sel := `form[action="` + action + `"]`
	if len(extra) > 0 {
		sel = `form[action="` + action + `"]:has(input[value="` + extra[0] + `"])`
	}
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.CSS(sel+` button[type=submit]`)))
	if err != nil {
		b.t.Fatalf("submit %s: %v", sel, err)
	}
	return resp.Status
}

func (b *consoleBrowser) text() string {
	b.t.Helper()
	var s string
	var err error
	for i := 0; i < 5; i++ {
		if s, err = chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS("body"))); err == nil || !strings.Contains(err.Error(), "No node with given id") {
			break
		}
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *consoleBrowser) mustSee(want ...string) {
	b.t.Helper()
	got := b.text()
	for _, w := range want {
		if !strings.Contains(got, w) {
			b.t.Fatalf("page lacks %q:\n%s", w, got)
		}
	}
}

func (b *consoleBrowser) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return loc
}

// shot saves the page at desktop width and at 390 px (a phone) under
// testdata/screenshots at the repository root (gitignored).
func (b *consoleBrowser) shot(name string) {
	b.t.Helper()
	dir := filepath.Join("..", "..", "testdata", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for _, v := range []struct {
		suffix string
		width  int64
	}{{"", 1100}, {"-390", 390}} {
		if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(v.width, 844)); err != nil {
			b.t.Fatal(err)
		}
		png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatalf("screenshot %s: %v", name, err)
		}
		if over := b.overflowing(); len(over) > 0 {
			b.t.Errorf("%s at %d px: content wider than its box: %v", name, v.width, over)
		}
		if err := os.WriteFile(filepath.Join(dir, name+v.suffix+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	if err := chromedp.Do(b.ctx, chromedp.EmulateViewport(1100, 900)); err != nil {
		b.t.Fatal(err)
	}
}

// TestConsole_AdminTasksInTheBrowser drives the console as an administrator
// and checks each task's effect through the admin API, the token endpoint
// or the database: a role added in the console is in the user's next
// refreshed token, a grant moves the balance, ending a session, disabling
// and removing a role kill what they should, a role in use is not deleted,
// sensitive actions ask for the password once the login is not recent, the
// audit log shows what happened, keys rotate, an unused role is deleted,
// and users are anonymised (with credit history) or deleted.
func TestConsole_AdminTasksInTheBrowser(t *testing.T) {
	e := newSecEnv(t)
	ctx := context.Background()
	admin := e.mustUser("admin@example.com", "admin")
	alice := e.mustUser("alice@example.com", "user")
	for _, email := range []string{"bob@example.com", "carol@example.com"} {
		e.mustUser(email, "user")
	}
	if _, err := e.db.Pool.Exec(ctx, `UPDATE users SET name = 'Alice Liddell' WHERE id = $1`, alice.ID); err != nil {
		t.Fatal(err)
	}
	appID, appSecret := e.firstParty()
	adminToken := e.passwordToken(appID, appSecret, "admin@example.com", "admin")["access_token"].(string)
	refresh := e.passwordToken(appID, appSecret, "alice@example.com", "openid roles offline_access")["refresh_token"].(string)
	aliceBrowserTok, aliceSess, err := e.accts.CreateSession(ctx, alice.ID, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "10.1.2.3")
	if err != nil || aliceBrowserTok == "" {
		t.Fatal(err)
	}
	// refreshRoles refreshes alice's token and returns the roles of the new
	// access token, or nil when the refresh is refused.
	refreshRoles := func() []string {
		t.Helper()
		st, _, out := e.postForm("/oauth2/token", appID, appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
		if st != http.StatusOK {
			return nil
		}
		refresh = out["refresh_token"].(string)
		return rolesClaim(jwtClaims(t, out["access_token"].(string)))
	}
	userPage := "/admin/users/" + alice.ID

	b := newConsoleBrowser(t)

	// Anonymous: the console sends to the login page, which comes back.
	b.open(e.URL + "/admin/users")
	if loc := b.location(); !strings.Contains(loc, "/login?return_to=%2Fadmin%2Fusers") {
		t.Fatalf("anonymous console visit went to %s", loc)
	}
	b.fill("email", "admin@example.com", "password", secUserPass)
	if st := b.submit("/login"); st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	if loc := b.location(); loc != e.URL+"/admin/users" {
		t.Fatalf("after login: %s", loc)
	}
	b.mustSee("Users", "alice@example.com", "bob@example.com", "admin@example.com")
	b.shot("console-users")

	// Roles: create one with a description.
	b.open(e.URL + "/admin/roles")
	b.fill("role-name", "editor", "role-description", "May edit notes")
	b.submit("/admin/roles")
	b.mustSee("The role was created.", "editor", "May edit notes")

	// Users: search by name, filter by role and status.
	b.open(e.URL + "/admin/users")
	b.fill("q", "liddell")
	b.submit("/admin/users")
	if got := b.text(); !strings.Contains(got, "alice@example.com") || strings.Contains(got, "bob@example.com") {
		t.Fatalf("search by name:\n%s", got)
	}
	b.open(e.URL + "/admin/users")
	b.choose("role", "admin")
	b.submit("/admin/users")
	if got := b.text(); !strings.Contains(got, "admin@example.com") || strings.Contains(got, "alice@example.com") {
		t.Fatalf("filter by role:\n%s", got)
	}

	// A role added in the console is in the user's next refreshed token.
	b.open(e.URL + userPage)
	b.mustSee("alice@example.com", "Alice Liddell", "Firefox on Linux")
	b.choose("add-role", "editor")
	b.submit(userPage + "/roles/add")
	b.mustSee("The role was added.")
	if roles := refreshRoles(); strings.Join(roles, ",") != "editor,user" {
		t.Fatalf("roles in the refreshed token: %v", roles)
	}

	// A role in use is not deleted, with a clear message.
	b.open(e.URL + "/admin/roles")
	if st := b.submit("/admin/roles/editor/delete"); st != http.StatusConflict {
		t.Fatalf("delete a role in use: %d", st)
	}
	b.mustSee("still assigned to users")
	b.shot("console-roles")

	// Credits: a small grant needs no password.
	b.open(e.URL + userPage)
	b.fill("amount", "50", "reference", "welcome-1", "description", "Welcome bonus")
	b.submit(userPage + "/credits/grant")
	b.mustSee("The credits were granted.", "Welcome bonus")
	st, bal := e.apiCall(http.MethodGet, "/admin/v1/users/"+alice.ID+"/credits", adminToken, nil)
	if st != http.StatusOK || bal["balance"] != float64(50) {
		t.Fatalf("balance through the admin API: %d %v", st, bal)
	}

	// Once the login is not recent, a large grant asks for the password.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE browser_sessions SET auth_time = now() - interval '1 hour' WHERE user_id = $1`, admin.ID); err != nil {
		t.Fatal(err)
	}
	b.open(e.URL + userPage)
	b.fill("amount", "5000", "reference", "big-1")
	if st := b.submit(userPage + "/credits/grant"); st != http.StatusForbidden {
		t.Fatalf("large grant without password: %d", st)
	}
	b.mustSee("needs your password")
	b.fill("amount", "5000", "reference", "big-1", "grant_password", "wrong-password-123")
	if st := b.submit(userPage + "/credits/grant"); st != http.StatusForbidden {
		t.Fatalf("large grant with a wrong password: %d", st)
	}
	b.fill("amount", "5000", "reference", "big-1", "grant_password", secUserPass)
	b.submit(userPage + "/credits/grant")
	b.mustSee("The credits were granted.")
	if _, bal = e.apiCall(http.MethodGet, "/admin/v1/users/"+alice.ID+"/credits", adminToken, nil); bal["balance"] != float64(5050) {
		t.Fatalf("balance after the confirmed grant: %v", bal)
	}

	// Refund part of a spend; never more than is left of it.
	aliceToken := e.passwordToken(appID, appSecret, "alice@example.com", "credits:spend")["access_token"].(string)
	if st, out := e.apiCall(http.MethodPost, "/api/v1/credits/spend", aliceToken, map[string]any{"amount": 30, "reference": "order-1"}); st != http.StatusCreated {
		t.Fatalf("spend: %d %v", st, out)
	}
	b.open(e.URL + userPage)
	b.fill("refund_amount", "10", "refund_reference", "refund-1", "refund_description", "Late delivery")
	b.submit(userPage + "/credits/refund")
	b.mustSee("The credits were refunded.", "Late delivery")
	b.fill("refund_amount", "100", "refund_reference", "refund-2")
	if st := b.submit(userPage + "/credits/refund"); st != http.StatusConflict {
		t.Fatalf("refund beyond the spend: %d", st)
	}
	b.mustSee("Only 20 credits of this spend are left to refund.")
	if _, bal = e.apiCall(http.MethodGet, "/admin/v1/users/"+alice.ID+"/credits", adminToken, nil); bal["balance"] != float64(5030) {
		t.Fatalf("balance after spend and refund: %v", bal)
	}
	b.open(e.URL + userPage)
	b.shot("console-user")

	// Ending a session.
	b.submit(userPage+"/sessions/end", aliceSess.ID)
	b.mustSee("The session was ended.")
	if _, _, err := e.accts.SessionByToken(ctx, aliceBrowserTok); err == nil {
		t.Fatal("the ended session still works")
	}

	// Disable kills the refresh token; enable lets the user log in again.
	b.submit(userPage + "/disable")
	b.mustSee("The user is disabled")
	if roles := refreshRoles(); roles != nil {
		t.Fatal("a disabled user's refresh token still works")
	}
	b.submit(userPage + "/enable")
	b.mustSee("The user is enabled.")
	refresh = e.passwordToken(appID, appSecret, "alice@example.com", "openid roles offline_access")["refresh_token"].(string)

	// Removing a role revokes the user's tokens at once.
	b.submit(userPage+"/roles/remove", "editor")
	b.mustSee("The role was removed")
	if roles := refreshRoles(); roles != nil {
		t.Fatalf("refresh after the role was removed: %v", roles)
	}
	if st, out := e.apiCall(http.MethodGet, "/admin/v1/users/"+alice.ID, adminToken, nil); st != http.StatusOK || len(out["roles"].([]any)) != 1 {
		t.Fatalf("user through the admin API: %d %v", st, out)
	}

	// Once no one holds it, the role is deleted.
	b.open(e.URL + "/admin/roles")
	b.submit("/admin/roles/editor/delete")
	b.mustSee("The role was deleted.")
	if st, out := e.apiCall(http.MethodGet, "/admin/v1/roles", adminToken, nil); st != http.StatusOK || strings.Contains(fmt.Sprint(out), "editor") {
		t.Fatalf("roles through the admin API after the delete: %d %v", st, out)
	}

	// The audit log shows the console's changes, by target and by action.
	b.open(e.URL + "/admin/audit?" + url.Values{"target": {alice.ID}}.Encode())
	b.mustSee("user.role_added", "user.role_removed", "user.disabled", "user.enabled", "user.session_ended", "credits.granted", "credits.refunded")
	b.shot("console-audit")
	b.open(e.URL + "/admin/audit")
	b.fill("type", "role.created")
	b.submit("/admin/audit")
	if got := b.text(); !strings.Contains(got, "role.created") || strings.Contains(got, "user.role_added") {
		t.Fatalf("filter by action:\n%s", got)
	}
	b.fill("type", "", "actor", admin.ID)
	b.submit("/admin/audit")
	b.mustSee("user.role_added", "role.created")

	// Keys: rotation asks for the password, then rotates.
	activeKeys := func() string {
		t.Helper()
		st, out := e.apiCall(http.MethodGet, "/admin/v1/keys", adminToken, nil)
		if st != http.StatusOK {
			t.Fatalf("keys through the admin API: %d", st)
		}
		var kids []string
		for _, k := range out["items"].([]any) {
			if k := k.(map[string]any); k["state"] == "active" {
				kids = append(kids, k["kid"].(string))
			}
		}
		return strings.Join(kids, ",")
	}
	before := activeKeys()
	// A next key younger than the JWKS cache lifetime takes over only later
	// (keys.Manager.Rotate): age the keys so this rotation is immediate.
	if _, err := e.db.Pool.Exec(ctx, `UPDATE signing_keys SET created_at = created_at - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	b.open(e.URL + "/admin/keys")
	b.mustSee("active", "next")
	if st := b.submit("/admin/keys/rotate"); st != http.StatusForbidden {
		t.Fatalf("rotate without password: %d", st)
	}
	b.fill("rotate_password", secUserPass)
	b.submit("/admin/keys/rotate")
	b.mustSee("The keys were rotated")
	b.shot("console-keys")
	if after := activeKeys(); after == before {
		t.Fatalf("the active keys did not change: %s", after)
	}

	// Delete asks for the password; a user with credit history is anonymised.
	b.open(e.URL + userPage)
	if st := b.submit(userPage + "/delete"); st != http.StatusForbidden {
		t.Fatalf("delete without password: %d", st)
	}
	b.fill("delete_password", secUserPass)
	b.submit(userPage + "/delete")
	b.mustSee("anonymised and disabled")
	if st, out := e.apiCall(http.MethodGet, "/admin/v1/users/"+alice.ID, adminToken, nil); st != http.StatusOK ||
		!strings.HasPrefix(out["email"].(string), "deleted-") || out["disabled"] != true {
		t.Fatalf("deleted user through the admin API: %d %v", st, out)
	}
	// A user without credit history is deleted outright.
	bob := e.userID("bob@example.com")
	b.open(e.URL + "/admin/users/" + bob)
	b.fill("delete_password", secUserPass)
	b.submit("/admin/users/" + bob + "/delete")
	b.mustSee("The user was deleted.")
	if st, _ := e.apiCall(http.MethodGet, "/admin/v1/users/"+bob, adminToken, nil); st != http.StatusNotFound {
		t.Fatalf("deleted user through the admin API: %d", st)
	}
}

// overflowIn lists what sticks out at the current width: the page wider
// than the window, or a table cell or fact whose content is wider than the
// cell (cut off or drawn under its neighbour).
const overflowIn = `(() => {
	const out = [];
	if (document.documentElement.scrollWidth > window.innerWidth + 1) {
		out.push("page " + document.documentElement.scrollWidth + "px");
	}
	for (const el of document.querySelectorAll("td, th, dd")) {
		if (el.scrollWidth > el.clientWidth + 1) {
			out.push(el.tagName.toLowerCase() + " " + JSON.stringify(el.textContent.trim().slice(0, 40)));
		}
	}
	return out;
})()`

func (b *consoleBrowser) overflowing() []string {
	b.t.Helper()
	over, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](overflowIn))
	if err != nil {
		b.t.Fatalf("measure overflow: %v", err)
	}
	return over
}

func (b *consoleBrowser) click(sel string) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.t.Fatalf("click %s: %v", sel, err)
	}
}

func (b *consoleBrowser) textOf(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// TestConsole_ClientsInTheBrowser registers, edits, re-keys and deletes an
// OAuth client in the console, checking each step through the token
// endpoint and the admin API; the secret is shown once, and the flags
// (second factor, pushed authorization requests) are set there.
func TestConsole_ClientsInTheBrowser(t *testing.T) {
	e := newSecEnv(t)
	e.mustUser("admin@example.com", "admin")
	appID, appSecret := e.firstParty()
	adminToken := e.passwordToken(appID, appSecret, "admin@example.com", "admin")["access_token"].(string)

	b := newConsoleBrowser(t)
	b.open(e.URL + "/admin/clients")
	b.fill("email", "admin@example.com", "password", secUserPass)
	b.submit("/login")
	if loc := b.location(); loc != e.URL+"/admin/clients" {
		t.Fatalf("after login: %s", loc)
	}

	// A refused registration says why and keeps the form.
	b.fill("client-name", "Bad app")
	b.click(`input[name=grant_types][value=password]`)
	if st := b.submit("/admin/clients"); st != http.StatusBadRequest {
		t.Fatalf("password grant for a third-party client: %d", st)
	}
	b.mustSee("Grant types: the password grant is only for first-party clients")
	b.shot("console-clients-error")

	// Register a service: client_credentials only.
	b.open(e.URL + "/admin/clients")
	b.fill("client-name", "Billing <service>", "scopes", "introspect")
	b.click(`input[name=grant_types][value=authorization_code]`)
	b.click(`input[name=grant_types][value=refresh_token]`)
	b.click(`input[name=grant_types][value=client_credentials]`)
	b.click("#require_mfa")
	if st := b.submit("/admin/clients"); st != http.StatusCreated {
		t.Fatalf("create client: %d", st)
	}
	b.mustSee("The client was created.", "Billing <service>")
	id, secret := b.textOf("#client-id"), b.textOf("#client-secret")
	b.shot("console-client-created")
	if st, err := clientCredentialsToken(e.URL, id, secret); err != nil || st != http.StatusOK {
		t.Fatalf("client_credentials with the shown secret: %d %v", st, err)
	}
	b.open(e.URL + "/admin/clients/" + id)
	if strings.Contains(b.text(), secret) {
		t.Fatal("the secret is shown again")
	}

	// Edit: add the code flow with a redirect URI.
	b.click(`input[name=grant_types][value=authorization_code]`)
	b.choose("redirect_uris", "https://billing.example/callback") // SetValue: an empty textarea cannot be cleared
	b.fill("backchannel_logout_uri", "https://billing.example/backchannel-logout")
	b.click("#backchannel_logout_session_required")
	b.click("#require_pushed_authorization_requests")
	b.submit("/admin/clients/" + id)
	b.mustSee("The client was saved.")
	st, out := e.apiCall(http.MethodGet, "/admin/v1/clients/"+id, adminToken, nil)
	if st != http.StatusOK || len(out["redirect_uris"].([]any)) != 1 || out["redirect_uris"].([]any)[0] != "https://billing.example/callback" ||
		len(out["grant_types"].([]any)) != 2 || out["backchannel_logout_uri"] != "https://billing.example/backchannel-logout" ||
		out["backchannel_logout_session_required"] != true || out["require_mfa"] != true || out["require_pushed_authorization_requests"] != true {
		t.Fatalf("client through the admin API: %d %v", st, out)
	}
	b.shot("console-client")
	b.open(e.URL + "/admin/clients")
	b.mustSee("confidential, second factor required, PAR required")
	b.open(e.URL + "/admin/clients/" + id)

	// Rotate the secret: the old one dies, the new one works.
	b.submit("/admin/clients/" + id + "/secret")
	fresh := b.textOf("#client-secret")
	if fresh == secret {
		t.Fatal("rotation showed the old secret")
	}
	if st, _ := clientCredentialsToken(e.URL, id, secret); st != http.StatusUnauthorized {
		t.Fatalf("the old secret after rotation: %d", st)
	}
	if st, err := clientCredentialsToken(e.URL, id, fresh); err != nil || st != http.StatusOK {
		t.Fatalf("the new secret: %d %v", st, err)
	}

	// Delete.
	b.submit("/admin/clients/" + id + "/delete")
	b.mustSee("The client was deleted")
	b.shot("console-clients")
	if st, _ := e.apiCall(http.MethodGet, "/admin/v1/clients/"+id, adminToken, nil); st != http.StatusNotFound {
		t.Fatalf("deleted client through the admin API: %d", st)
	}
	b.open(e.URL + "/admin/audit?" + url.Values{"target": {id}}.Encode())
	b.mustSee("client.created", "client.updated", "client.secret_rotated", "client.deleted")
}

// setValue sets an input's value by id: SetValue, or Clear for "" (which
// SetValue cannot set). Not Clear+SendKeys: SendKeys reads node attributes
// while the DOM events of the clear write them (a data race in chromedp).
func setValue(id, value string) chromedp.Action[chromedp.Void] {
	if value == "" {
		return chromedp.Clear(chromedp.ID(id))
	}
	return chromedp.SetValue(chromedp.ID(id), value)
}

// TestConsole_ResetSecondFactorsInTheBrowser: the user page names the
// user's second factors and which sessions passed one; "reset second
// factors" (the admin API's DELETE /admin/v1/users/{id}/mfa) asks for the
// administrator's password once the login is not recent, then removes every
// factor, ends the user's sessions and is audited as the administrator's.
func TestConsole_ResetSecondFactorsInTheBrowser(t *testing.T) {
	e := newSecEnv(t)
	admin := e.mustUser("admin@example.com", "admin")
	lost := e.mustUser("lost@example.com", "user")
	plain := e.mustUser("plain@example.com", "user")
	c := e.acctClient("10.9.20.1")
	if rec := c.login(lost.Email, secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	secret, _, _ := mfaEnrol(t, c)
	c.logout(t)
	mfaPassword(c, "/account", lost.Email)
	if st, loc, body := mfaStep(c, "totp", mfaCode(t, secret, time.Now().Add(30*time.Second))); st != http.StatusSeeOther || loc != "/account" {
		t.Fatalf("two-step login: %d %q\n%s", st, loc, body)
	}
	factors := func() int {
		return e.count(`SELECT count(*) FROM user_totp WHERE user_id = $1`, lost.ID) +
			e.count(`SELECT count(*) FROM user_recovery_codes WHERE user_id = $1`, lost.ID)
	}

	b := newConsoleBrowser(t)
	userPage := "/admin/users/" + lost.ID
	b.open(e.URL + userPage)
	b.fill("email", admin.Email, "password", secUserPass)
	b.submit("/login")
	b.mustSee("Second factors", "authenticator app", "recovery codes", "two-step login")
	b.shot("console-user-mfa")

	// A user without a factor has nothing to reset.
	b.open(e.URL + "/admin/users/" + plain.ID)
	b.mustSee("Second factors", "None: the password alone opens this account.")
	if strings.Contains(b.text(), "Reset second factors") {
		t.Fatal("a reset is offered for a user without second factors")
	}

	// Once the login is not recent, the reset asks for the password.
	e.ageLogin(admin.ID, time.Hour)
	b.open(e.URL + userPage)
	if st := b.submit(userPage + "/mfa/reset"); st != http.StatusForbidden {
		t.Fatalf("reset without password: %d", st)
	}
	b.mustSee("needs your password")
	if n := factors(); n == 0 {
		t.Fatal("the reset went through without the password")
	}
	b.fill("mfa_password", secUserPass)
	b.submit(userPage + "/mfa/reset")
	b.mustSee("The user's second factors were removed", "None: the password alone opens this account.")
	if n := factors(); n != 0 {
		t.Fatalf("%d factors left after the reset", n)
	}
	if rec, _ := c.do(http.MethodGet, "/account", nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("the user's session survived the reset: %d", rec.Code)
	}
	if n := e.count(`SELECT count(*) FROM audit_events WHERE type = 'user.mfa_reset' AND target_id = $1 AND actor_id = $2`, lost.ID, admin.ID); n != 1 {
		t.Fatalf("audit events of the reset: %d", n)
	}
}
