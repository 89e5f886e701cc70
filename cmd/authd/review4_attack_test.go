package main

// Fourth attack review: the account-wide second-factor lock, write health
// and /readyz, console additions and the route-policy audit fixes. Each
// test is what an adversary would try and fails while the hole is open.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/oauth/clients"
)

// TestAttack4_ThirdPartyClientGetsAnAdminToken: a third-party app
// registered with scope admin (a mistake of the operator, or an app that
// asks for "everything") sends an admin to its consent page; the admin
// clicks Allow and the app holds a token that runs the whole admin API
// with the admin's role: create clients, mint credits, disable users. An
// admin's token is an admin's only from authd's own (first-party) apps;
// a service's client-credentials token with scope admin stays the
// operator's automation.
func TestAttack4_ThirdPartyClientGetsAnAdminToken(t *testing.T) {
	e := newSecEnv(t)
	admin := e.mustUser("admin-consents@example.com", "admin")
	victim := e.mustUser("minted-for@example.com")
	app, appSecret := e.mustClient(clients.Spec{Name: "Shiny dashboard", RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "admin"}})
	code, verifier := e.codeFor(e.browser(), app, admin.Email, url.Values{"scope": {"openid admin"}})
	st, out := e.exchange(app, appSecret, code, verifier)
	if st != http.StatusOK {
		t.Fatalf("code exchange: %d %v", st, out)
	}
	tok := out["access_token"].(string)

	before := e.snapshot()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/admin/v1/users", ""},
		{"POST", "/admin/v1/clients", `{"name":"backdoor","grant_types":["client_credentials"],"scopes":["admin"]}`},
		{"POST", "/admin/v1/users/" + victim.ID + "/credits/grant", `{"amount":1000,"reference":"r1","description":"x"}`},
		{"POST", "/api/v1/users/" + victim.ID + "/credits/grant", `{"amount":1000,"reference":"r2","description":"x"}`},
		{"GET", "/api/v1/users/" + victim.ID + "/credits", ""},
	} {
		if rec := e.callAPI(c.method, c.path, tok, c.body); rec.Code != http.StatusForbidden {
			t.Errorf("%s %s with a third-party app's admin token: %d %s", c.method, c.path, rec.Code, rec.Body)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("a third-party admin token changed state:\n%s\n%s", before, after)
	}

	// Still admins: the same admin through a first-party app, and a
	// service token with scope admin (automation).
	if rec := e.callAPI("GET", "/admin/v1/users", e.reviewAdminToken(), ""); rec.Code != http.StatusOK {
		t.Errorf("admin API with a first-party admin token: %d %s", rec.Code, rec.Body)
	}
	svc, svcSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"admin"}})
	st, _, out = e.postForm("/oauth2/token", svc, svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
	if st != http.StatusOK {
		t.Fatalf("client credentials: %d %v", st, out)
	}
	if rec := e.callAPI("GET", "/admin/v1/users", out["access_token"].(string), ""); rec.Code != http.StatusOK {
		t.Errorf("admin API with a service's admin token: %d %s", rec.Code, rec.Body)
	}
}

// TestAttack4_ParallelGuessesSlipPastTheFactorLock: whoever holds the
// password guesses second-factor codes. The backoff reads the lock, runs
// the check and only then counts the failure, so guesses sent all at once
// are each checked before any is counted: one burst tries dozens of codes
// where the lock allows one, and a burst per lock period undoes the lock's
// arithmetic. One guess per
// account is in flight at a time; the others are answered "try again".
func TestAttack4_ParallelGuessesSlipPastTheFactorLock(t *testing.T) {
	e := newSecEnv(t)
	const email = "burst@example.com"
	e.mustUser(email)
	owner := e.acctClient("10.44.0.1")
	owner.login(email, secUserPass)
	secret, used, _ := mfaEnrol(t, owner)
	wrong := mfaWrongCode(t, secret, used)
	p := e.acctClient("10.44.0.2")
	if st, next := mfaPassword(p, "/account", email); st != http.StatusSeeOther || next != "/login/mfa" {
		t.Fatalf("password: %d %q", st, next)
	}
	// Many guesses happened already (from many addresses): the next failure
	// locks the account's second factor for the longest time.
	if _, err := e.db.Pool.Exec(context.Background(), `INSERT INTO login_failures (email, client, failures, updated_at)
		VALUES ($1, '', 20, now())`, "2fa "+email); err != nil {
		t.Fatal(err)
	}
	_, page := p.do(http.MethodGet, "/login/mfa", nil)
	form := secHidden(page)
	form.Set("method", "totp")
	form.Set("code", wrong)
	const n = 40
	start := make(chan struct{})
	results := make(chan int, n)
	for range n {
		go func() {
			req := httptest.NewRequest(http.MethodPost, e.URL+"/login/mfa", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range p.cookies {
				req.AddCookie(&http.Cookie{Name: k, Value: v})
			}
			<-start
			results <- e.serve(req).Code
		}()
	}
	close(start)
	checked := 0
	for range n {
		switch code := <-results; code {
		case http.StatusUnauthorized: // the code was checked and was wrong
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a guess answered %d", code)
		}
	}
	// The first failure locks the factor for minutes: no other guess of the
	// burst may be checked.
	if checked != 1 {
		t.Fatalf("%d codes checked in one burst on the brink of the lock, want 1", checked)
	}
}
