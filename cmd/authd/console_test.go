package main

// The admin console (/admin): who may reach it, CSRF on every form, and
// hostile input. Console routes are found by walking the router, so a new
// console page is covered without editing this file.

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/storagetest"
)

// consoleRoutes are the console's routes: /admin and below, but not the
// JSON admin API.
func (e *secEnv) consoleRoutes() []secRoute {
	e.tb.Helper()
	var out []secRoute
	for _, rt := range e.routes() {
		if (rt.Path == "/admin" || strings.HasPrefix(rt.Path, "/admin/")) && !strings.HasPrefix(rt.Path, "/admin/v1") {
			out = append(out, rt)
		}
	}
	if len(out) < 22 {
		e.tb.Fatalf("only %d console routes found: is the console mounted?", len(out))
	}
	return out
}

// consoleForm is a plausible, complete form for any console POST: were the
// guard missing, each would change something.
func consoleForm(csrf, sessionID string) url.Values {
	return url.Values{"csrf_token": {csrf}, "role": {"admin"}, "session_id": {sessionID}, "amount": {"5"},
		"reference": {"csrf-" + secRand()}, "description": {"x"}, "name": {"intruder"}, "current_password": {secUserPass}}
}

// consoleURL fills a console route template for victim (a user id), a
// client and the deletable role "temp".
func consoleURL(base, tpl, victim, client string) string {
	return base + strings.NewReplacer("{id}", victim, "{client}", client, "{name}", "temp").Replace(tpl)
}

// loggedIn logs email in with a cookie-keeping client and returns it with a
// CSRF token valid for its session.
func (e *secEnv) loggedIn(email string) (*secBrowser, string) {
	e.tb.Helper()
	b := e.browser()
	_, page := b.get(e.URL + "/login")
	if resp, _ := b.login(e.URL, page, email); resp.StatusCode != http.StatusOK {
		e.tb.Fatalf("login %s: %d", email, resp.StatusCode)
	}
	_, page = b.get(e.URL + "/account")
	csrf := secHidden(page).Get("csrf_token")
	if csrf == "" {
		e.tb.Fatalf("no CSRF token on /account for %s", email)
	}
	return b, csrf
}

// TestConsole_NonAdminsRefusedEverywhere walks every console route as a
// logged-in user without the admin role (403, with a valid CSRF token and a
// complete form) and as an anonymous browser (sent to the login page), and
// checks that nothing changed.
func TestConsole_NonAdminsRefusedEverywhere(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	victim := e.mustUser("victim@example.com", "user")
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO roles (name, description) VALUES ('temp', 'deletable')`); err != nil {
		t.Fatal(err)
	}
	e.mustUser("plain@example.com", "user")
	tok, sess, err := e.accts.CreateSession(ctx, victim.ID, "Firefox", "10.0.0.9")
	if err != nil || tok == "" {
		t.Fatal(err)
	}
	client, _ := e.webClient()
	user, csrf := e.loggedIn("plain@example.com")
	anon := e.browser()
	anon.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	before := e.snapshot()
	for _, rt := range e.consoleRoutes() {
		u := consoleURL(e.URL, rt.Path, victim.ID, client)
		var resp *http.Response
		var body string
		if rt.Method == http.MethodPost {
			resp, body = user.post(u, consoleForm(csrf, sess.ID))
		} else {
			req, _ := http.NewRequest(rt.Method, u, nil)
			resp, body = user.do(req)
		}
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("non-admin %s %s: status %d, want 403", rt.Method, rt.Path, resp.StatusCode)
		}
		if rt.Method == http.MethodGet && !strings.Contains(body, "admin role") {
			t.Errorf("non-admin %s %s: the page does not say why", rt.Method, rt.Path)
		}
		if rt.Method == http.MethodPost {
			resp, _ = anon.post(u, consoleForm(csrf, sess.ID))
		} else {
			req, _ := http.NewRequest(rt.Method, u, nil)
			resp, _ = anon.do(req)
		}
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?return_to=%2Fadmin") {
			t.Errorf("anonymous %s %s: status %d to %q, want 303 to the login page", rt.Method, rt.Path, resp.StatusCode, loc)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("refused console requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

// TestConsole_CSRF posts every console form as an administrator without a
// token, with a token of another session, and with garbage: each is refused
// and nothing changes, as with every page the admin opens. The same form
// with the right token works.
func TestConsole_CSRF(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	e.mustUser("admin@example.com", "admin")
	victim := e.mustUser("victim@example.com", "user")
	ctx := context.Background()
	_, sess, err := e.accts.CreateSession(ctx, victim.ID, "Firefox", "10.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	client, _ := e.webClient()
	admin, good := e.loggedIn("admin@example.com")
	_, other := e.loggedIn("admin@example.com") // the same admin in another browser
	// One character changed; a token that already starts with "x" would
	// otherwise stay the right one (about one token in 64 does).
	garbage := "x" + good[1:]
	if good[0] == 'x' {
		garbage = "y" + good[1:]
	}
	before := e.snapshot()
	for _, rt := range e.consoleRoutes() {
		if rt.Method != http.MethodPost {
			// GET and HEAD show pages only.
			req, _ := http.NewRequest(rt.Method, consoleURL(e.URL, rt.Path, victim.ID, client), nil)
			if resp, _ := admin.do(req); resp.StatusCode != http.StatusOK {
				t.Errorf("admin %s %s: %d", rt.Method, rt.Path, resp.StatusCode)
			}
			continue
		}
		u := consoleURL(e.URL, rt.Path, victim.ID, client)
		for name, token := range map[string]string{"missing": "", "other session": other, "garbage": garbage} {
			f := consoleForm(token, sess.ID)
			if token == "" {
				f.Del("csrf_token")
			}
			if resp, _ := admin.post(u, f); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s with %s token: status %d, want 403", rt.Path, name, resp.StatusCode)
			}
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("forged console posts changed state:\nbefore %s\nafter  %s", before, after)
	}
	// The right token passes the same guard: the refusals above were the token's.
	resp, _ := admin.post(e.URL+"/admin/users/"+victim.ID+"/roles/add", url.Values{"csrf_token": {good}, "role": {"admin"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.Join(e.roles(victim.ID), ","), "admin") {
		t.Fatalf("with the right token: status %d, roles %v", resp.StatusCode, e.roles(victim.ID))
	}
}

func (e *secEnv) roles(userID string) []string {
	e.tb.Helper()
	u, err := e.accts.User(context.Background(), userID)
	if err != nil {
		e.tb.Fatal(err)
	}
	return u.Roles
}

// TestConsole_HostileInputEscaped stores names and descriptions that would
// be markup or SQL if handled carelessly, and checks every console page
// shows them as text.
func TestConsole_HostileInputEscaped(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	e.mustUser("admin@example.com", "admin")
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>'; DROP TABLE users; --"`
	victim := e.mustUser("victim@example.com", "user")
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `UPDATE users SET name = $1 WHERE id = $2`, evil, victim.ID); err != nil {
		t.Fatal(err)
	}
	client, _ := e.mustClient(clients.Spec{Name: evil, GrantTypes: []string{"client_credentials"}})
	admin, csrf := e.loggedIn("admin@example.com")
	resp, page := admin.post(e.URL+"/admin/roles", url.Values{"csrf_token": {csrf}, "name": {"ops"}, "description": {evil}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "The role was created") {
		t.Fatalf("create role: %d", resp.StatusCode)
	}
	resp, page = admin.post(e.URL+"/admin/roles", url.Values{"csrf_token": {csrf}, "name": {evil}, "description": {"x"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "A role name starts with") {
		t.Fatalf("hostile role name: %d", resp.StatusCode)
	}
	resp, _ = admin.post(e.URL+"/admin/users/"+victim.ID+"/credits/grant", url.Values{"csrf_token": {csrf},
		"amount": {"7"}, "reference": {evil}, "description": {evil}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("grant with hostile reference: %d", resp.StatusCode)
	}
	for _, path := range []string{"/admin/users?q=" + url.QueryEscape(evil), "/admin/users", "/admin/users/" + victim.ID,
		"/admin/roles", "/admin/audit?type=" + url.QueryEscape(evil), "/admin/audit", "/admin/clients", "/admin/clients/" + client} {
		resp, page := admin.get(e.URL + path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", path, resp.StatusCode)
		}
		if strings.Contains(page, "<script>") || strings.Contains(page, "<img src=x") {
			t.Errorf("%s renders the hostile string as markup", path)
		}
	}
	_, page = admin.get(e.URL + "/admin/users/" + victim.ID)
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the user page does not show the hostile name as text")
	}
	if n := e.count(`SELECT count(*) FROM users`); n != 2 {
		t.Errorf("%d users, want 2", n)
	}
}

// TestConsole_DevBannerPointsAtConsole: make run's banner names the console
// next to the admin login that opens it.
func TestConsole_DevBannerPointsAtConsole(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(devDir, 0o700); err != nil {
		t.Fatal(err)
	}
	banner, issuer := devBanner(t, storagetest.NewDB(t))
	if !strings.Contains(banner, "admin console "+issuer+"/admin ") || !strings.Contains(banner, "admin@localhost / ") {
		t.Fatalf("banner:\n%s", banner)
	}
}

// TestConsole_UsersPagesAndFilters pages through more users than fit one
// page, filters by status, and refuses to let an administrator lock
// themself out.
func TestConsole_UsersPagesAndFilters(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	ctx := context.Background()
	admin := e.mustUser("admin@example.com", "admin")
	var last *accounts.User
	for i := range 30 {
		last = e.mustUser(fmt.Sprintf("user%02d@example.com", i), "user")
	}
	if _, err := e.accts.SetDisabled(ctx, audit.Event{}, last.ID, true, true); err != nil {
		t.Fatal(err)
	}
	b, csrf := e.loggedIn("admin@example.com")
	seen := map[string]bool{}
	next, pages := "/admin/users", 0
	for next != "" {
		pages++
		resp, page := b.get(e.URL + next)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", next, resp.StatusCode)
		}
		for _, m := range regexp.MustCompile(`user\d\d@example\.com`).FindAllString(page, -1) {
			seen[m] = true
		}
		next = ""
		if m := regexp.MustCompile(`<a href="([^"]+)" rel="next">`).FindStringSubmatch(page); m != nil {
			next = html.UnescapeString(m[1])
		}
	}
	if pages != 2 || len(seen) != 30 {
		t.Fatalf("%d pages showed %d of 30 users", pages, len(seen))
	}
	_, page := b.get(e.URL + "/admin/users?status=disabled")
	if !strings.Contains(page, last.Email) || strings.Contains(page, "user00@example.com") {
		t.Fatal("the status filter does not keep only disabled users")
	}
	if resp, _ := b.get(e.URL + "/admin/users?cursor=garbage"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad cursor: %d", resp.StatusCode)
	}

	before := e.snapshot()
	self := e.URL + "/admin/users/" + admin.ID
	for path, f := range map[string]url.Values{
		"/roles/remove": {"role": {"admin"}}, "/disable": {}, "/delete": {"current_password": {secUserPass}},
	} {
		f.Set("csrf_token", csrf)
		if resp, _ := b.post(self+path, f); resp.StatusCode != http.StatusConflict {
			t.Errorf("%s on oneself: %d, want 409", path, resp.StatusCode)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("an administrator locked themself out:\nbefore %s\nafter  %s", before, after)
	}
}
