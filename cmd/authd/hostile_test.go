package main

// The hostile input sweep: every route of the application,
// found by walking the router, gets malformed and oversized input. Every
// answer must be a 4xx (never a 5xx; reads may answer 2xx) that explains
// itself in the endpoint's format, carries no stack trace, SQL or secret,
// and leaves the database as it was (refusals that are audited or counted by
// design are outside the snapshot; see secEnv.snapshot).

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type hostileCase struct {
	name string
	// query is appended to the URL; body and contentType form the body.
	query       string
	body        string
	contentType string
	// chunked hides the body's length (no Content-Length).
	chunked bool
	// pathVar replaces every {var} of the route (only routes with vars).
	pathVar string
	header  http.Header
	// malformed cases must be refused with a 4xx even by a route that
	// reads nothing but its body.
	malformed bool
}

const (
	sqlInjection  = `' OR '1'='1' --`
	htmlInjection = `<script>alert(1)</script>`
	tmplInjection = `{{.CSRF}}{{template "layout.html" .}}${7*7}`
)

func hostileCases() []hostileCase {
	huge := strings.Repeat("a", 1<<20+64)
	invalidUTF8 := "\xff\xfe\xc3\x28\xed\xa0\x80"
	// Each JSON payload also carries a field no endpoint accepts (or gives
	// amount a type no endpoint accepts), so no variant is valid input.
	return []hostileCase{
		{name: "BadJSON", body: `{"email":"a@example.com","amount":1,`, contentType: "application/json", malformed: true},
		{name: "JSONArray", body: `["not","an","object"]`, contentType: "application/json", malformed: true},
		{name: "JSONTrailingGarbage", body: `{"amount":"x"}}]`, contentType: "application/json", malformed: true},
		{name: "XMLBody", body: `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`, contentType: "application/xml", malformed: true},
		{name: "BinaryNoContentType", body: "\x00\x01\x02{{\x00", malformed: true},
		{name: "HugeBody", body: `{"name":"` + huge + `"}`, contentType: "application/json", malformed: true},
		{name: "HugeBodyChunked", body: "name=" + huge, contentType: "application/x-www-form-urlencoded", chunked: true, malformed: true},
		{name: "InvalidUTF8JSON", body: `{"email":"` + invalidUTF8 + `@example.com","password":"` + invalidUTF8 + `","name":"` + invalidUTF8 + `","amount":"` + invalidUTF8 + `"}`, contentType: "application/json", malformed: true},
		{name: "InvalidUTF8Form", body: "grant_type=%FF%FE&client_id=%C3%28&email=%FF%40example.com&password=%ED%A0%80&token=%FF&name=%FF", contentType: "application/x-www-form-urlencoded"},
		{name: "InvalidUTF8Query", query: "client_id=%FF%FE&return_to=%C3%28&email=%FF&cursor=%ED%A0%80&limit=%FF"},
		{name: "SQLInjectionJSON", body: `{"email":"` + sqlInjection + `@example.com","password":"` + sqlInjection + `","name":"Robert'); DROP TABLE users;--","amount":"1; DROP TABLE ledger_entries","reference":"x'||pg_sleep(5)||'","'; DROP TABLE users;--":1}`, contentType: "application/json", malformed: true},
		{name: "SQLInjectionForm", body: url.Values{"grant_type": {"password"}, "username": {sqlInjection}, "password": {sqlInjection}, "client_id": {sqlInjection}, "client_secret": {sqlInjection}, "token": {sqlInjection}, "scope": {"openid" + sqlInjection}, "email": {sqlInjection}, "return_to": {"/oauth2/auth?client_id=" + url.QueryEscape(sqlInjection)}}.Encode(), contentType: "application/x-www-form-urlencoded"},
		{name: "SQLInjectionQuery", query: url.Values{"q": {sqlInjection}, "email": {sqlInjection}, "cursor": {sqlInjection}, "limit": {"1 OR 1=1"}, "client_id": {sqlInjection}, "type": {sqlInjection}, "actor": {sqlInjection}, "token": {sqlInjection}}.Encode()},
		{name: "HTMLTemplateInjectionJSON", body: `{"email":"` + htmlInjection + `@example.com","name":"` + strings.ReplaceAll(tmplInjection, `"`, `\"`) + `","reference":"<img src=x onerror=alert(1)>","<script>":1}`, contentType: "application/json", malformed: true},
		{name: "HTMLTemplateInjectionQuery", query: url.Values{"return_to": {"javascript:alert(1)"}, "error": {htmlInjection}, "state": {htmlInjection}, "client_id": {htmlInjection}, "redirect_uri": {"javascript:alert(1)"}, "email": {htmlInjection}, "token": {tmplInjection}, "id_token_hint": {htmlInjection}}.Encode()},
		{name: "HTMLInjectionForm", body: url.Values{"email": {htmlInjection}, "name": {tmplInjection}, "return_to": {"javascript:alert(1)"}, "post_logout_redirect_uri": {"javascript:alert(1)"}, "state": {htmlInjection}}.Encode(), contentType: "application/x-www-form-urlencoded"},
		{name: "NegativeNumbers", body: `{"amount":-1,"reference":"neg-1","description":"negative","expires_in":-1}`, contentType: "application/json", query: "limit=-1&cursor=-1&max_age=-1", malformed: true},
		{name: "OverflowingNumbers", body: `{"amount":9223372036854775808,"reference":"ovf-1","description":"overflow"}`, contentType: "application/json", query: "limit=99999999999999999999999&max_age=99999999999999999999", malformed: true},
		{name: "FloatAmount", body: `{"amount":1e400,"reference":"float-1","description":"float"}`, contentType: "application/json", malformed: true},
		{name: "DuplicatedParams", body: "grant_type=client_credentials&grant_type=password&client_id=a&client_id=b&token=a&token=b&email=a%40example.com&email=b%40example.com", contentType: "application/x-www-form-urlencoded", query: "limit=1&limit=1000&client_id=a&client_id=b&response_type=code&response_type=token"},
		{name: "DuplicatedJSONKeys", body: `{"amount":1,"amount":-1,"reference":"d","reference":"e","email":"a@example.com","email":"b@example.com"}`, contentType: "application/json", malformed: true},
		{name: "QueryAndBody", query: "grant_type=client_credentials&client_id=x&client_secret=y&token=z&email=q%40example.com", body: "grant_type=password&username=a&password=b&token=w", contentType: "application/x-www-form-urlencoded"},
		{name: "PathSQLInjection", pathVar: url.PathEscape(sqlInjection)},
		{name: "PathTraversal", pathVar: "..%2F..%2F..%2Fetc%2Fpasswd"},
		{name: "PathNULAndInvalidUTF8", pathVar: "%00%FF%FE"},
		{name: "PathHuge", pathVar: strings.Repeat("9", 4000)},
		{name: "HugeCookies", header: http.Header{"Cookie": {"authd_session=" + strings.Repeat("s", 12000) + "; authd_csrf=" + strings.Repeat("c", 12000)}}},
		{name: "HostileHeaders", header: http.Header{"Authorization": {"Bearer " + htmlInjection + "." + sqlInjection + "." + invalidUTF8}, "X-Request-Id": {"a\r\nb" + htmlInjection}, "Origin": {"null"}}},
	}
}

// noBodyAccepted lists routes that by contract take no request body and
// act when called, so a hostile body cannot make them fail; they are still
// checked for 5xx, error format and leaks, but not for being refused or
// changing nothing.
var noBodyAccepted = map[string]bool{
	"POST /admin/v1/keys/rotate": true,
	// The bearer token in the Authorization header is the request; the
	// body matters only without one (RFC 6750 §2.2).
	"POST /userinfo": true,
}

func TestHostileInput_EveryEndpoint(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	admin := e.mustUser("hostile-admin@example.com", "admin")
	fp, fpSecret := e.firstParty()
	token := e.passwordToken(fp, fpSecret, admin.Email, "openid profile roles admin credits:read credits:spend")["access_token"].(string)
	cookie, _, err := e.accts.CreateSession(context.Background(), admin.ID, "hostile test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	routes := e.routes()
	for _, rt := range routes {
		for _, c := range hostileCases() {
			hasVars := strings.Contains(rt.Path, "{")
			if c.pathVar != "" && !hasVars {
				continue
			}
			readsBody := rt.Method != http.MethodGet && rt.Method != http.MethodHead && rt.Method != http.MethodDelete
			if !readsBody && c.body != "" && !strings.HasPrefix(c.name, "HugeBody") {
				continue // GET bodies are ignored by every route: test their queries
			}
			t.Run(rt.Method+strings.ReplaceAll(rt.Path, "/", "_")+"/"+c.name, func(t *testing.T) {
				pathVar := "00000000-0000-0000-0000-000000000000"
				if c.pathVar != "" {
					pathVar = c.pathVar
				}
				target := e.URL + fillVars(rt.Path, pathVar)
				if c.query != "" {
					target += "?" + c.query
				}
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
					if c.chunked {
						body = io.MultiReader(body) // hides the length from NewRequest
					}
				}
				req, err := http.NewRequest(rt.Method, target, body)
				if err != nil {
					t.Fatal(err)
				}
				if c.contentType != "" {
					req.Header.Set("Content-Type", c.contentType)
				}
				req.Header.Set("Authorization", "Bearer "+token)
				req.AddCookie(&http.Cookie{Name: "authd_session", Value: cookie})
				for k, v := range c.header {
					req.Header[k] = v
				}
				before := e.snapshot()
				rec := e.serve(req)
				st, b := rec.Code, rec.Body.Bytes()
				if st >= 500 {
					t.Fatalf("status %d: %s", st, b)
				}
				if st >= 400 {
					if err := secDescribeError(st, rec.Header(), b); err != nil {
						t.Errorf("status %d: %v", st, err)
					}
				}
				if m := secLeakRE.Find(b); m != nil {
					t.Errorf("the response leaks %q: %s", m, b)
				}
				if bytes.Contains(b, []byte(token)) || bytes.Contains(b, []byte(cookie)) || bytes.Contains(b, []byte(fpSecret)) {
					t.Errorf("the response echoes a credential: %s", b)
				}
				if strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") && (bytes.Contains(b, []byte(htmlInjection)) || bytes.Contains(b, []byte("javascript:alert"))) {
					t.Errorf("HTML response carries the injected markup unescaped: %s", b)
				}
				key := rt.Method + " " + rt.Path
				if noBodyAccepted[key] {
					return
				}
				if after := e.snapshot(); after != before {
					t.Errorf("state changed (status %d %s):\nbefore %s\nafter  %s", st, b, before, after)
				}
				reshown := st == http.StatusOK && bytes.Contains(b, []byte(`name="csrf_token"`))
				if readsBody && c.malformed && st < 400 && !reshown {
					t.Errorf("malformed input accepted: %d %s", st, b)
				}
			})
		}
	}
}

// TestHostileInput_HugeHeaders: headers past the server's limit are refused
// by the HTTP server itself, for every route.
func TestHostileInput_HugeHeaders(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	for _, rt := range e.routes() {
		req, _ := http.NewRequest(rt.Method, e.URL+fillVars(rt.Path, "x"), nil)
		req.Header.Set("X-Padding", strings.Repeat("h", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", rt.Method, rt.Path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s %s: status %d, want 431", rt.Method, rt.Path, resp.StatusCode)
		}
	}
}

// TestHostileInput_StoredInjectionIsInert: injection strings that are valid
// data (a display name) are stored verbatim, change no other row, and come
// back escaped on every page that shows them.
func TestHostileInput_StoredInjectionIsInert(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	u := e.mustUser("inert@example.com")
	fp, fpSecret := e.firstParty()
	token := e.passwordToken(fp, fpSecret, u.Email, "openid profile account")["access_token"].(string)
	name := htmlInjection + sqlInjection + tmplInjection
	users := e.count(`SELECT count(*) FROM users`)
	req, _ := http.NewRequest(http.MethodPatch, e.URL+"/api/v1/me", strings.NewReader(`{"name":`+jsonString(name)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if rec := e.serve(req); rec.Code != http.StatusOK {
		t.Fatalf("PATCH /api/v1/me: %d %s", rec.Code, rec.Body)
	}
	if got := e.count(`SELECT count(*) FROM users`); got != users {
		t.Fatalf("users %d -> %d", users, got)
	}
	stored, err := e.accts.User(context.Background(), u.ID)
	if err != nil || stored.Name != name {
		t.Fatalf("stored name %q, %v", stored.Name, err)
	}
	b := e.browser()
	_, page := b.get(e.URL + "/login")
	b.login(e.URL, page, u.Email)
	_, page = b.get(e.URL + "/account")
	if strings.Contains(page, htmlInjection) || !strings.Contains(page, "&lt;script&gt;") {
		t.Errorf("the account page does not escape the name:\n%s", page)
	}
	if strings.Contains(page, "7*7}") && !strings.Contains(page, "${7*7}") {
		t.Errorf("the template injection was evaluated:\n%s", page)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
