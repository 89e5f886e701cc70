package main

// Fuzz targets for the JSON APIs and the browser session over the assembled
// application (see oauth_fuzz_test.go).

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// fuzzAPIRoutes are the JSON endpoints whose bodies FuzzJSONAPI feeds;
// the fuzzer picks one by index.
var fuzzAPIRoutes = []struct{ method, path string }{
	{http.MethodPost, "/api/v1/register"},
	{http.MethodPost, "/api/v1/credits/spend"},
	{http.MethodPatch, "/api/v1/me"},
	{http.MethodPost, "/api/v1/password/forgot"},
	{http.MethodPost, "/api/v1/password/reset"},
	{http.MethodPost, "/admin/v1/roles"},
	{http.MethodPost, "/admin/v1/clients"},
	{http.MethodPost, "/admin/v1/users/{user}/credits/grant"},
	{http.MethodPost, "/admin/v1/users/{user}/credits/refund"},
	{http.MethodPut, "/admin/v1/users/{user}/roles/{role}"},
}

// FuzzJSONAPI: any body at the register, spend, profile, reset and admin
// endpoints (as an admin holding every scope) is answered without a 5xx; a
// refusal is a problem document with the status it announces, a success
// is JSON.
func FuzzJSONAPI(f *testing.F) {
	e := newSecEnv(f)
	admin := e.mustUser("fuzz-admin@example.com", "admin")
	fp, fpSecret := e.firstParty()
	token := e.passwordToken(fp, fpSecret, admin.Email, "openid profile roles admin credits:read credits:spend")["access_token"].(string)
	for i := range fuzzAPIRoutes {
		for _, b := range []string{
			`{"email":"new@example.com","password":"correct-horse-battery-9","name":"N"}`,
			`{"amount":1,"reference":"r1","description":"d"}`, `{"amount":-1,"reference":"r","description":"d"}`,
			`{"amount":9223372036854775807,"reference":"max","description":"d"}`, `{"amount":1.5,"reference":"f"}`,
			`{"name":"viewer","description":"can view"}`, `{"name":"' OR 1=1 --"}`,
			`{"name":"c","redirect_uris":["javascript:alert(1)"],"grant_types":["implicit"]}`,
			`{"name":"c","redirect_uris":["https://app.example.com/cb"],"scopes":["openid"],"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"RSA"}]}}`,
			`{"token":"x","password":"y"}`, `{"spend_id":"00000000-0000-0000-0000-000000000000","amount":1,"reference":"x"}`,
			`{"email":"\u0000@example.com"}`, `{`, `[]`, `null`, "", `{"a":` + strings.Repeat("[", 5000) + `}`,
		} {
			f.Add(uint8(i), b, "application/json")
		}
	}
	f.Add(uint8(0), "email=a", "application/x-www-form-urlencoded")
	f.Fuzz(func(t *testing.T, which uint8, body, ct string) {
		rt := fuzzAPIRoutes[int(which)%len(fuzzAPIRoutes)]
		path := strings.NewReplacer("{user}", admin.ID, "{role}", "user").Replace(rt.path)
		req, err := http.NewRequest(rt.method, e.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := e.serve(req)
		st, b := rec.Code, rec.Body.Bytes()
		if st >= 500 {
			t.Fatalf("%s %s %q: status %d %s", rt.method, path, body, st, b)
		}
		if st >= 400 {
			var p map[string]any
			if rec.Header().Get("Content-Type") != "application/problem+json" || json.Unmarshal(b, &p) != nil || int(secFloat(p["status"])) != st {
				t.Fatalf("%s %s %q: status %d without a matching problem document: %s", rt.method, path, body, st, b)
			}
			return
		}
		if len(b) > 0 && !json.Valid(b) {
			t.Fatalf("%s %s: %d with a non-JSON body %s", rt.method, path, st, b)
		}
	})
}

// FuzzSessionCookie: whatever the session and CSRF cookies and the posted
// token hold, the account page either shows the real user's account (only
// for the real session) or sends the browser to log in, and a profile
// change without the matching CSRF token is refused; never a 5xx.
func FuzzSessionCookie(f *testing.F) {
	e := newSecEnv(f)
	u := e.mustUser("fuzz-cookie@example.com")
	b := e.browser()
	_, page := b.get(e.URL + "/login")
	b.login(e.URL, page, u.Email)
	session, csrf := b.cookie(e.URL, "authd_session"), b.cookie(e.URL, "authd_csrf")
	_, page = b.get(e.URL + "/account")
	realToken := secHidden(page).Get("csrf_token")
	f.Add(session, csrf, realToken)
	f.Add(session, csrf, "")
	f.Add(session, "", realToken)
	f.Add(session+"x", csrf, realToken)
	f.Add("", csrf, realToken)
	f.Add("' OR '1'='1", "\xff\xfe", "%00")
	f.Add(strings.Repeat("A", 8000), strings.Repeat("B", 8000), strings.Repeat("C", 8000))
	f.Fuzz(func(t *testing.T, sessionCookie, csrfCookie, posted string) {
		cookies := []*http.Cookie{{Name: "authd_session", Value: sessionCookie}, {Name: "authd_csrf", Value: csrfCookie}}
		for _, c := range cookies {
			if c.Valid() != nil {
				return // a browser cannot send it; net/http would rewrite it
			}
		}
		get, _ := http.NewRequest(http.MethodGet, e.URL+"/account", nil)
		for _, c := range cookies {
			get.AddCookie(c)
		}
		rec := e.serve(get)
		switch {
		case rec.Code >= 500:
			t.Fatalf("GET /account: %d", rec.Code)
		case rec.Code == http.StatusOK:
			if sessionCookie != session || !strings.Contains(rec.Body.String(), u.Email) {
				t.Fatalf("GET /account with session cookie %q: 200", sessionCookie)
			}
		case rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/login"):
			t.Fatalf("GET /account: %d Location %q", rec.Code, rec.Header().Get("Location"))
		}
		form := "name=Fuzzed&csrf_token=" + strings.NewReplacer("&", "%26", "=", "%3D", "+", "%2B", "%", "%25").Replace(posted)
		post, _ := http.NewRequest(http.MethodPost, e.URL+"/account/profile", strings.NewReader(form))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, c := range cookies {
			post.AddCookie(c)
		}
		rec = e.serve(post)
		if rec.Code >= 500 {
			t.Fatalf("POST /account/profile: %d", rec.Code)
		}
		legit := sessionCookie == session && csrfCookie == csrf && posted == realToken
		toLogin := rec.Code == http.StatusSeeOther && strings.HasPrefix(rec.Header().Get("Location"), "/login")
		if rec.Code < 400 && !legit && !toLogin {
			t.Fatalf("profile change accepted: session %q csrf %q token %q: %d", sessionCookie, csrfCookie, posted, rec.Code)
		}
	})
}
