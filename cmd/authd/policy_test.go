package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/openapi"
	"github.com/authd/authd/oauth/clients"
)

// The tests of authd's own API authorization: every route declares a
// policy (audience, caller class, scopes, first-party) and the guard
// enforces it, whatever the token's client, scope or audience.

// policedRoute is one route of authd's own APIs with its policy.
type policedRoute struct {
	Method, Path string
	Policy       authn.Policy
	HasPolicy    bool
}

// isAPIPath reports whether a route template belongs to authd's own APIs.
func isAPIPath(tpl string) bool {
	return strings.HasPrefix(tpl, "/api/v1/") || strings.HasPrefix(tpl, "/admin/v1/") || tpl == "/userinfo"
}

// apiRoutes walks the real router for every route under authd's own APIs.
func (e *secEnv) apiRoutes() []policedRoute {
	e.tb.Helper()
	var out []policedRoute
	err := e.app.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil || !isAPIPath(tpl) {
			return nil
		}
		pol, ok := e.app.policies.Lookup(route)
		methods, err := route.GetMethods()
		if err != nil {
			// Every method, so not registered through authn.Router, which
			// names one: a bare Handle or PathPrefix under the APIs.
			out = append(out, policedRoute{Method: "", Path: tpl, Policy: pol, HasPolicy: ok})
			return nil
		}
		for _, m := range methods {
			out = append(out, policedRoute{Method: m, Path: tpl, Policy: pol, HasPolicy: ok})
		}
		return nil
	})
	if err != nil {
		e.tb.Fatal(err)
	}
	if len(out) < 35 {
		e.tb.Fatalf("only %d API routes found: is everything mounted?", len(out))
	}
	return out
}

// fill replaces the path variables of a route template with harmless values.
func fill(tpl, userID string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(tpl, func(v string) string {
		if v == "{id}" {
			return userID
		}
		return "x"
	})
}

func (e *secEnv) callAPI(method, path, token string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.serve(req)
}

func TestPolicy_EveryAPIRouteDeclaresOne(t *testing.T) {
	e := newSecEnv(t)
	for _, r := range e.apiRoutes() {
		if r.Method == "" {
			t.Errorf("%s is served for every method: register it through authn.Router, with its method and policy", r.Path)
			continue
		}
		if !r.HasPolicy {
			t.Errorf("%s %s has no declared policy: register it through authn.Router", r.Method, r.Path)
		}
		if r.HasPolicy && !r.Policy.Public && r.Policy.Callers == 0 {
			t.Errorf("%s %s: a policy that admits no caller class", r.Method, r.Path)
		}
	}
}

// TestPolicy_OpenAPIShowsEachOperationsPolicy: the documents say what the
// router enforces: the scopes (alternatives), the caller classes and
// whether only first-party clients may call.
func TestPolicy_OpenAPIShowsEachOperationsPolicy(t *testing.T) {
	e := newSecEnv(t)
	docs := map[string]map[string]any{
		"/api/v1":   loadDoc(t, "public", openapi.Public()),
		"/admin/v1": loadDoc(t, "admin", openapi.Admin()),
	}
	for _, r := range e.apiRoutes() {
		if r.Path == "/userinfo" {
			continue // OIDC's, documented by discovery
		}
		prefix := "/api/v1"
		if strings.HasPrefix(r.Path, "/admin/v1/") {
			prefix = "/admin/v1"
		}
		item, _ := docs[prefix]["paths"].(map[string]any)[strings.TrimPrefix(r.Path, prefix)].(map[string]any)
		op, _ := item[strings.ToLower(r.Method)].(map[string]any)
		if op == nil {
			t.Errorf("%s %s is not documented", r.Method, r.Path)
			continue
		}
		var scopes []string
		for _, req := range op["security"].([]any) {
			for _, s := range req.(map[string]any)["bearerAuth"].([]any) {
				scopes = append(scopes, s.(string))
			}
		}
		want := r.Policy.Scopes
		if r.Policy.Callers&authn.Admin != 0 && len(want) == 0 {
			want = []string{"admin"}
		}
		if r.Policy.Public {
			want = nil
		}
		if !slices.Equal(scopes, want) {
			t.Errorf("%s %s: documented scopes %v, the router enforces %v", r.Method, r.Path, scopes, want)
		}
		callers, _ := op["x-authd-callers"].(string)
		if wantCallers := r.Policy.Callers.String(); !r.Policy.Public && callers != wantCallers {
			t.Errorf("%s %s: x-authd-callers %q, the router admits %q", r.Method, r.Path, callers, wantCallers)
		}
		if fp, _ := op["x-authd-first-party"].(bool); fp != r.Policy.FirstParty {
			t.Errorf("%s %s: x-authd-first-party %v, the router says %v", r.Method, r.Path, fp, r.Policy.FirstParty)
		}
	}
}

// allScopesClient is a first-party client that may ask for every scope
// and for a resource server's audience.
func (e *secEnv) allScopesClient() (id, secret string) {
	return e.mustClient(clients.Spec{Name: "everything", FirstParty: true,
		GrantTypes: []string{"password", "client_credentials"}, Audience: []string{"https://notes.example", e.URL},
		Scopes: []string{"openid", "profile", "email", "roles", "admin", "account", "credits:read", "credits:spend",
			"credits:charge", "credits:grant", "introspect"}})
}

// TestPolicy_ForeignAudienceRefusedEverywhere: a token minted for a resource
// server, however powerful its scopes and its user, is refused by every
// route of authd's own APIs with 401 invalid_token; the same request with
// a token for authd's audience gets past authentication (the control that
// makes the test fail if the audience check is removed).
func TestPolicy_ForeignAudienceRefusedEverywhere(t *testing.T) {
	e := newSecEnv(t)
	admin := e.mustUser("root@example.com", "admin")
	id, secret := e.allScopesClient()
	all := "openid profile email roles admin account credits:read credits:spend"
	tokenFor := func(aud string) string {
		st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"password"},
			"username": {admin.Email}, "password": {secUserPass}, "scope": {all}, "audience": {aud}})
		if st != http.StatusOK {
			t.Fatalf("password grant for %s: %d %v", aud, st, out)
		}
		return out["access_token"].(string)
	}
	foreign, ours := tokenFor("https://notes.example"), tokenFor(e.URL)
	if aud := toJSON(jwtClaims(t, foreign)["aud"]); aud != `["https://notes.example"]` {
		t.Fatalf("foreign token aud = %s", aud)
	}
	// The service flavour too: client credentials for the resource server.
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"},
		"scope": {"admin credits:charge credits:grant"}, "audience": {"https://notes.example"}})
	if st != http.StatusOK {
		t.Fatalf("client credentials: %d %v", st, out)
	}
	foreignService := out["access_token"].(string)

	before := e.snapshot()
	for _, r := range e.apiRoutes() {
		if r.Policy.Public {
			continue
		}
		path := fill(r.Path, admin.ID)
		for _, tok := range []string{foreign, foreignService} {
			rec := e.callAPI(r.Method, path, tok, "{}")
			if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s %s with a token for another audience: %d %q", r.Method, r.Path, rec.Code, rec.Header().Get("WWW-Authenticate"))
			}
		}
		if r.Method == http.MethodGet {
			if rec := e.callAPI(r.Method, path, ours, ""); rec.Code == http.StatusUnauthorized {
				t.Errorf("%s %s with authd's own audience: 401 %s", r.Method, r.Path, rec.Body)
			}
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("foreign-audience requests changed state:\n%s\n%s", before, after)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestPolicy_ThirdPartyTokenCannotTouchTheAccount: a third-party app the
// user logged into (scopes openid, then profile) can neither read nor
// change the account beyond what its scopes say, nor list or end sessions,
// and cannot even be registered with the account scope.
func TestPolicy_ThirdPartyTokenCannotTouchTheAccount(t *testing.T) {
	e := newSecEnv(t)
	victim := e.mustUser("victim@example.com", "admin")
	web, webSecret := e.webClient()
	b := e.browser()
	code, verifier := e.codeFor(b, web, victim.Email, url.Values{"scope": {"openid"}})
	st, out := e.exchange(web, webSecret, code, verifier)
	if st != http.StatusOK {
		t.Fatalf("code exchange: %d %v", st, out)
	}
	openidOnly := out["access_token"].(string)
	code, verifier = e.codeFor(b, web, victim.Email, url.Values{"scope": {"openid profile email"}})
	_, out = e.exchange(web, webSecret, code, verifier)
	withProfile := out["access_token"].(string)

	before := e.snapshot()
	for _, c := range accountChanges() {
		for name, tok := range map[string]string{"openid": openidOnly, "profile": withProfile} {
			if rec := e.callAPI(c.method, c.path, tok, c.body); rec.Code != http.StatusForbidden ||
				!strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Errorf("%s %s with a third-party %s token: %d %s", c.method, c.path, name, rec.Code, rec.Body)
			}
		}
	}
	if rec := e.callAPI("GET", "/api/v1/me", openidOnly, ""); rec.Code != http.StatusForbidden {
		t.Errorf("GET /me with an openid-only token: %d", rec.Code)
	}
	if rec := e.callAPI("GET", "/api/v1/me", withProfile, ""); rec.Code != http.StatusOK {
		t.Errorf("GET /me with profile: %d %s", rec.Code, rec.Body)
	}
	// Nor the account's credits: those need the credits scopes.
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/credits", ""},
		{"GET", "/api/v1/credits/transactions", ""},
		{"POST", "/api/v1/credits/spend", `{"amount":1,"reference":"r","description":"x"}`},
	} {
		for name, tok := range map[string]string{"openid": openidOnly, "profile": withProfile} {
			if rec := e.callAPI(c.method, c.path, tok, c.body); rec.Code != http.StatusForbidden {
				t.Errorf("%s %s with a third-party %s token: %d %s", c.method, c.path, name, rec.Code, rec.Body)
			}
		}
	}
	// The admin API needs scope admin, whatever the user's roles.
	if rec := e.callAPI("GET", "/admin/v1/users", withProfile, ""); rec.Code != http.StatusForbidden {
		t.Errorf("admin API with a third-party token of an admin: %d", rec.Code)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("third-party requests changed state:\n%s\n%s", before, after)
	}
	// The account scope cannot be registered on a third-party client.
	_, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "sneaky",
		RedirectURIs: []string{secRedirect}, Scopes: []string{"openid", "account"}})
	if err == nil || !strings.Contains(err.Error(), "first-party") {
		t.Errorf("registering a third-party client with scope account: %v", err)
	}
}

// accountChanges are the requests the account scope guards: each would
// change the account or read or end its sessions.
func accountChanges() []struct{ method, path, body string } {
	return []struct{ method, path, body string }{
		{"PATCH", "/api/v1/me", `{"email":"attacker@evil.example"}`},
		{"PATCH", "/api/v1/me", `{"name":"pwned"}`},
		{"POST", "/api/v1/me/password", `{"current_password":"` + secUserPass + `","new_password":"attacker-chosen-pass-1"}`},
		{"POST", "/api/v1/me/email/verify", `{}`},
		{"GET", "/api/v1/me/sessions", ""},
		{"DELETE", "/api/v1/me/sessions/00000000-0000-4000-8000-000000000000", ""},
	}
}

// TestPolicy_FirstPartyTokenNeedsTheAccountScope: being first party is not
// enough. A first-party app's token from a login just now (so auth_time
// would pass the recent-login check) but without scope account cannot
// change the account, list or end sessions, and with openid alone cannot
// read the profile. (The third-party test cannot show this: its client is
// refused by the first-party check as well.)
func TestPolicy_FirstPartyTokenNeedsTheAccountScope(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("fp-scopes@example.com")
	id, secret := e.firstParty()
	if tok := e.passwordToken(id, secret, u.Email, "openid account")["access_token"].(string); e.callAPI("GET", "/api/v1/me/sessions", tok, "").Code != http.StatusOK {
		t.Fatal("control: a first-party token with scope account cannot list sessions")
	}
	tokens := map[string]string{
		"openid":                           e.passwordToken(id, secret, u.Email, "openid")["access_token"].(string),
		"openid profile email":             e.passwordToken(id, secret, u.Email, "openid profile email")["access_token"].(string),
		"credits:read credits:spend roles": e.passwordToken(id, secret, u.Email, "credits:read credits:spend roles")["access_token"].(string),
	}
	before := e.snapshot()
	for _, c := range accountChanges() {
		for scope, tok := range tokens {
			if rec := e.callAPI(c.method, c.path, tok, c.body); rec.Code != http.StatusForbidden ||
				!strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
				t.Errorf("%s %s with a first-party token of scope %q: %d %s", c.method, c.path, scope, rec.Code, rec.Body)
			}
		}
	}
	if rec := e.callAPI("GET", "/api/v1/me", tokens["openid"], ""); rec.Code != http.StatusForbidden {
		t.Errorf("GET /me with a first-party openid-only token: %d %s", rec.Code, rec.Body)
	}
	if after := e.snapshot(); after != before {
		t.Errorf("requests without scope account changed state:\n%s\n%s", before, after)
	}
}

// TestPolicy_UserinfoNeedsAnOpenIDUserToken: /userinfo answers an access
// token carrying openid (OIDC Core §5.3) issued for a user. The same user's
// token without openid, whatever else it holds, and a service's token are
// refused with an RFC 6750 challenge; no token at all gets the bare one.
func TestPolicy_UserinfoNeedsAnOpenIDUserToken(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("userinfo@example.com")
	id, secret := e.allScopesClient()
	withOpenID := e.passwordToken(id, secret, u.Email, "openid")["access_token"].(string)
	without := e.passwordToken(id, secret, u.Email, "profile email roles account admin")["access_token"].(string)
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"openid admin"}})
	if st != http.StatusOK {
		t.Fatalf("client credentials: %d %v", st, out)
	}
	service := out["access_token"].(string)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		if rec := e.callAPI(method, "/userinfo", withOpenID, ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), u.ID) {
			t.Errorf("%s /userinfo with openid: %d %s", method, rec.Code, rec.Body)
		}
		for name, tok := range map[string]string{"a user token without openid": without, "a service token": service} {
			rec := e.callAPI(method, "/userinfo", tok, "")
			if rec.Code != http.StatusForbidden || !strings.Contains(rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) ||
				strings.Contains(rec.Body.String(), u.Email) {
				t.Errorf("%s /userinfo with %s: %d %q %s", method, name, rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
			}
		}
		if rec := e.callAPI(method, "/userinfo", "", ""); rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") != `Bearer realm="authd"` {
			t.Errorf("%s /userinfo without a token: %d %q", method, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// TestPolicy_FirstPartyCheckedAtEveryCall: the account routes ask the
// client registry at each call, so a client that loses its first-party
// flag loses the account API at once, even with tokens it already holds.
func TestPolicy_FirstPartyCheckedAtEveryCall(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("owner@example.com")
	id, secret := e.allScopesClient()
	tok := e.passwordToken(id, secret, u.Email, "openid account")["access_token"].(string)
	if rec := e.callAPI("GET", "/api/v1/me/sessions", tok, ""); rec.Code != http.StatusOK {
		t.Fatalf("first-party token: %d %s", rec.Code, rec.Body)
	}
	c, err := e.app.store.Client(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c.FirstParty = false
	if err := e.app.store.UpdateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if rec := e.callAPI("GET", "/api/v1/me/sessions", tok, ""); rec.Code != http.StatusForbidden {
		t.Errorf("after the client lost first-party: %d %s", rec.Code, rec.Body)
	}
}

// TestPolicy_ChargingServiceCannotMint: credits:charge spends a user's
// credits and nothing else; minting needs credits:grant and refunds need an
// admin.
func TestPolicy_ChargingServiceCannotMint(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("payer@example.com")
	svc, svcSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"credits:charge"}})
	st, _, out := e.postForm("/oauth2/token", svc, svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}})
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, out)
	}
	tok := out["access_token"].(string)
	body := `{"amount":1000000,"reference":"free-money","description":"x"}`
	for _, path := range []string{"/api/v1/users/" + u.ID + "/credits/grant", "/admin/v1/users/" + u.ID + "/credits/grant",
		"/admin/v1/users/" + u.ID + "/credits/refund", "/admin/v1/users/" + u.ID + "/credits/adjust"} {
		if rec := e.callAPI("POST", path, tok, body); rec.Code != http.StatusForbidden {
			t.Errorf("charging service POST %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if n := e.count(`SELECT count(*) FROM ledger_transactions`); n != 0 {
		t.Errorf("%d ledger transactions written", n)
	}
	// Nor does a user's own token holding credits:grant (granted by a
	// client that may ask for it), not even into the user's own account.
	id, secret := e.allScopesClient()
	userTok := e.passwordToken(id, secret, u.Email, "openid credits:grant credits:spend")["access_token"].(string)
	if rec := e.callAPI("POST", "/api/v1/users/"+u.ID+"/credits/grant", userTok, body); rec.Code != http.StatusForbidden {
		t.Errorf("a user's token with credits:grant minting into its own account: %d %s", rec.Code, rec.Body)
	}
	if n := e.count(`SELECT count(*) FROM ledger_transactions`); n != 0 {
		t.Errorf("%d ledger transactions written", n)
	}
	// It may charge (here: 409, the user has nothing), which proves the token works.
	if rec := e.callAPI("POST", "/api/v1/users/"+u.ID+"/credits/spend", tok, `{"amount":1,"reference":"r1","description":"x"}`); rec.Code != http.StatusConflict {
		t.Errorf("charge: %d %s", rec.Code, rec.Body)
	}
}

// TestCORS_OnlyOnJSONEndpoints: an allowed origin gets CORS headers on the
// JSON APIs, never on hosted pages, and never with credentials.
func TestCORS_OnlyOnJSONEndpoints(t *testing.T) {
	const origin = "https://app.example.com"
	e := newSecEnv(t, "AUTHD_CORS_ORIGINS="+origin)
	check := func(method, path string, want bool) {
		req := httptest.NewRequest(method, path, nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "GET")
		}
		rec := e.serve(req)
		got := rec.Header().Get("Access-Control-Allow-Origin") != ""
		if got != want {
			t.Errorf("%s %s: CORS headers %v, want %v", method, path, got, want)
		}
		if c := rec.Header().Get("Access-Control-Allow-Credentials"); c != "" {
			t.Errorf("%s %s: Access-Control-Allow-Credentials %q", method, path, c)
		}
	}
	hosted := []string{"/login", "/register", "/account", "/consent", "/oauth2/auth", "/password/forgot", "/verify-email", "/",
		"/static/webauthn.js", "/nowhere"}
	// Every other route the router serves, found by walking it, so a new
	// page is covered without being listed here.
	seen := map[string]bool{}
	for _, r := range e.routes() {
		if !jsonEndpoint(r.Path) && !seen[r.Path] {
			seen[r.Path] = true
			hosted = append(hosted, fillVars(r.Path, "x"))
		}
	}
	for _, p := range []string{"/admin", "/device", "/account/mfa", "/oauth2/logout"} {
		if !seen[p] {
			t.Errorf("the router walk did not find the page %s", p)
		}
	}
	for _, p := range hosted {
		check(http.MethodGet, p, false)
		check(http.MethodOptions, p, false)
	}
	for _, p := range []string{"/api/v1/me", "/api/v1/credits", "/admin/v1/users", "/.well-known/openid-configuration",
		"/.well-known/jwks.json", "/userinfo", "/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"} {
		check(http.MethodGet, p, true)
		check(http.MethodOptions, p, true)
	}
}

// jsonEndpoint reports whether a route template is one of the JSON
// endpoints a browser app on another origin may call (the test's own list,
// not the middleware's).
func jsonEndpoint(tpl string) bool {
	for _, p := range []string{"/api/v1/", "/admin/v1/", "/.well-known/"} {
		if strings.HasPrefix(tpl, p) {
			return true
		}
	}
	return slices.Contains([]string{"/oauth2/token", "/oauth2/revoke", "/oauth2/introspect", "/userinfo"}, tpl)
}

// TestAuthorize_LoopbackAnyPortOnlyForPublicClients: RFC 8252 §7.3's "any
// port on a loopback IP" is for native apps; a confidential client's
// redirect URI matches exactly, and a mismatch is never redirected to.
func TestAuthorize_LoopbackAnyPortOnlyForPublicClients(t *testing.T) {
	e := newSecEnv(t)
	conf, _ := e.webClient()
	native, _ := e.mustClient(clients.Spec{Public: true, RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile", "offline_access"}})
	_, challenge := secPKCE()
	otherPort := url.Values{"redirect_uri": {"http://127.0.0.1:7777/cb"}}

	b := e.browser()
	resp, page := b.get(secAuthURL(e.URL, conf, challenge, otherPort))
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusBadRequest || strings.Contains(loc, "7777") {
		t.Errorf("confidential client, other loopback port: %d Location=%q\n%s", resp.StatusCode, loc, page)
	}
	// Accepted: the browser is sent on to log in.
	if resp, page := b.get(secAuthURL(e.URL, native, challenge, otherPort)); resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/login"`) {
		t.Errorf("public client, other loopback port: %d\n%s", resp.StatusCode, page)
	}
	if resp, page := b.get(secAuthURL(e.URL, conf, challenge, nil)); resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/login"`) {
		t.Errorf("confidential client, registered URI: %d\n%s", resp.StatusCode, page)
	}
}

// consentShown reports whether authorizing authURL as an already logged-in
// browser stops at the consent page (and returns it).
func consentShown(t *testing.T, b *secBrowser, authURL string) (bool, string) {
	t.Helper()
	resp, page := b.get(authURL)
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/consent"`) {
		return true, page
	}
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), secRedirect) {
		t.Fatalf("neither consent nor a redirect to the client: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	return false, page
}

// TestConsent_PublicClientsAskEveryTimeAndAudiencesAreCovered: remembered
// consent approves a confidential client silently (the control), never a
// public one (RFC 8252 §8.6); it covers only the audiences the page showed.
func TestConsent_PublicClientsAskEveryTimeAndAudiencesAreCovered(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("consenting@example.com")
	conf, _ := e.mustClient(clients.Spec{RedirectURIs: []string{secRedirect}, Audience: []string{"https://notes.example", e.URL},
		Scopes: []string{"openid", "profile", "offline_access"}})
	native, _ := e.mustClient(clients.Spec{Public: true, RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "profile", "offline_access"}})
	b := e.browser()
	_, challenge := secPKCE()
	for _, id := range []string{conf, native} {
		e.authorize(b, secAuthURL(e.URL, id, challenge, nil), u.Email) // logs in and consents
	}
	if shown, _ := consentShown(t, b, secAuthURL(e.URL, conf, challenge, nil)); shown {
		t.Error("confidential client: remembered consent was not used")
	}
	if shown, _ := consentShown(t, b, secAuthURL(e.URL, native, challenge, nil)); !shown {
		t.Error("public client: approved silently from remembered consent")
	}
	withAud := url.Values{"audience": {"https://notes.example"}}
	shown, page := consentShown(t, b, secAuthURL(e.URL, conf, challenge, withAud))
	if !shown {
		t.Fatal("a new audience was approved by consent given for authd only")
	}
	if !strings.Contains(page, "https://notes.example") {
		t.Errorf("the consent page does not name the audience:\n%s", page)
	}
	e.authorize(b, secAuthURL(e.URL, conf, challenge, withAud), u.Email)
	if shown, _ := consentShown(t, b, secAuthURL(e.URL, conf, challenge, withAud)); shown {
		t.Error("consent for the audience was not remembered")
	}
}

// TestConsent_AccountScopeSaidPlainly: the account scope is shown on a
// consent page only to first-party public apps (a confidential first-party
// app is not asked); the page says in words what it allows.
func TestConsent_AccountScopeSaidPlainly(t *testing.T) {
	e := newSecEnv(t)
	u := e.mustUser("plain-words@example.com")
	native, _ := e.mustClient(clients.Spec{Name: "authd desktop", Public: true, FirstParty: true,
		RedirectURIs: []string{secRedirect}, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid", "account"}})
	b := e.browser()
	_, challenge := secPKCE()
	resp, page := b.get(secAuthURL(e.URL, native, challenge, url.Values{"scope": {"openid account"}}))
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/login"`) {
		resp, page = b.login(e.URL, page, u.Email)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/consent"`) {
		t.Fatalf("no consent page: %d\n%s", resp.StatusCode, page)
	}
	for _, words := range []string{"email address", "password", "end your signed-in sessions"} {
		if !strings.Contains(page, words) {
			t.Errorf("the consent page for scope account does not say %q:\n%s", words, page)
		}
	}
}
