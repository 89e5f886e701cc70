package main

// OAuth security checklist, part 2: refresh tokens, client authentication
// and credential leakage (see security_test.go for the conventions).

import (
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
)

// RFC 9700 §4.14.2 (refresh token rotation): reusing a rotated refresh token
// after the reuse window revokes the whole family.
func TestRFC9700_4_14_2_RefreshReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t, "AUTHD_REFRESH_REUSE_WINDOW=0s")
	id, secret := e.webClient()
	e.mustUser("reuse@example.com")
	first := e.tokens(e.browser(), id, secret, "reuse@example.com")
	refresh := func(rt string) (int, map[string]any) {
		st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		return st, out
	}
	st, second := refresh(first["refresh_token"].(string))
	if st != http.StatusOK {
		t.Fatalf("rotation: %d %v", st, second)
	}
	if st, out := refresh(first["refresh_token"].(string)); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", st, out)
	}
	if st, out := refresh(second["refresh_token"].(string)); st != http.StatusBadRequest {
		t.Errorf("the family's newest refresh token still works after reuse: %d %v", st, out)
	}
	if e.active(id, secret, second["access_token"].(string)) {
		t.Error("the family's newest access token is still active after reuse")
	}
}

// RFC 9700 §4.14.2 / RFC 6749 §6: a refresh token works only for the client
// it was issued to, also inside the idempotent-retry window, and a foreign
// client's attempt does not hand out tokens.
func TestRFC9700_4_14_2_RefreshTokenBoundToClient(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	idA, secretA := e.webClient()
	idB, secretB := e.webClient()
	e.mustUser("bound@example.com")
	tok := e.tokens(e.browser(), idA, secretA, "bound@example.com")
	rt := tok["refresh_token"].(string)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	if st, _, out := e.postForm("/oauth2/token", idB, secretB, form); st != http.StatusBadRequest || out["access_token"] != nil {
		t.Fatalf("client B refreshed A's token: %d %v", st, out)
	}
	st, _, rotated := e.postForm("/oauth2/token", idA, secretA, form)
	if st != http.StatusOK {
		t.Fatalf("client A: %d %v", st, rotated)
	}
	// Inside the reuse window A would get the same pair again; B must not.
	if st, _, out := e.postForm("/oauth2/token", idB, secretB, form); st != http.StatusBadRequest || out["access_token"] != nil {
		t.Fatalf("client B got A's cached pair inside the reuse window: %d %v", st, out)
	}
	if st, _, out := e.postForm("/oauth2/token", "", "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {idA}}); st < 400 || out["access_token"] != nil {
		t.Fatalf("unauthenticated refresh as a confidential client: %d %v", st, out)
	}
}

// serveFrom runs req in-process as if sent from ip.
func (e *secEnv) serveFrom(req *http.Request, ip string) *http.Response {
	req.RemoteAddr = ip + ":50000"
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	e.app.handler.ServeHTTP(rec, req)
	return rec.Result()
}

// RFC 9700 §2.5 / RFC 6749 §10.10: failed client authentication is rate
// limited per (address, client_id) at every client-authenticating endpoint;
// a successful authentication is never refused (nobody can lock a client
// out), other addresses and other clients are not affected, and successful
// authentications cost nothing.
func TestRFC9700_2_5_ClientAuthFailuresRateLimited(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, secret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"}})
	post := func(path, ip, sec string, form url.Values) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, sec)
		return e.serveFrom(req, ip)
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	const attacker, bystander = "192.0.2.10", "192.0.2.20"
	failures := 0
	for ; failures < 100; failures++ {
		resp := post("/oauth2/token", attacker, "wrong-"+secRand(), cc)
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			break
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong secret #%d: %d", failures, resp.StatusCode)
		}
	}
	if failures == 0 || failures > 30 {
		t.Fatalf("limited after %d failures, want a small budget (20)", failures)
	}
	if resp := post("/oauth2/token", attacker, secret, cc); resp.StatusCode != http.StatusOK {
		t.Errorf("right secret from a limited address: %d, want 200 (a success is never refused)", resp.StatusCode)
	}
	for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
		if resp := post(path, attacker, "wrong", url.Values{"token": {"x"}}); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("%s: wrong secret from a limited address: %d", path, resp.StatusCode)
		}
		if resp := post(path, attacker, secret, url.Values{"token": {"x"}}); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: right secret from a limited address: %d", path, resp.StatusCode)
		}
	}
	for i := 0; i < 40; i++ {
		if resp := post("/oauth2/token", bystander, secret, cc); resp.StatusCode != http.StatusOK {
			t.Fatalf("successful request #%d from another address: %d", i, resp.StatusCode)
		}
	}
	// Introspection and revocation count failures too.
	for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
		ip := "192.0.2.30"
		if path == "/oauth2/revoke" {
			ip = "192.0.2.31"
		}
		limited := false
		for i := 0; i < 40 && !limited; i++ {
			limited = post(path, ip, "wrong", url.Values{"token": {"x"}}).StatusCode == http.StatusTooManyRequests
		}
		if !limited {
			t.Errorf("%s: failed authentications never limited", path)
		}
	}
}

// RFC 9700 §4.2/§4.3 and RFC 6749 §5.1 (credential leakage): no secret,
// code or token in the server's logs; token responses are not cacheable;
// pages send no Referer.
func TestRFC9700_4_2_CredentialLeakage(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, secret := e.webClient()
	fp, fpSecret := e.firstParty()
	e.mustUser("leak@example.com")
	b := e.browser()
	code, verifier := e.codeFor(b, id, "leak@example.com", nil)
	st, hdr, tok := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {secRedirect}, "code_verifier": {verifier}})
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, tok)
	}
	if hdr.Get("Cache-Control") != "no-store" || hdr.Get("Pragma") != "no-cache" {
		t.Errorf("token response Cache-Control %q Pragma %q", hdr.Get("Cache-Control"), hdr.Get("Pragma"))
	}
	at, rt, idt := tok["access_token"].(string), tok["refresh_token"].(string), tok["id_token"].(string)
	st, hdr, rotated := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if st != http.StatusOK || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("refresh: %d Cache-Control %q", st, hdr.Get("Cache-Control"))
	}
	pw := e.passwordToken(fp, fpSecret, "leak@example.com", "openid admin")
	if _, hdr, _ := e.postForm("/oauth2/introspect", id, secret, url.Values{"token": {rotated["access_token"].(string)}}); hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("introspection Cache-Control %q", hdr.Get("Cache-Control"))
	}
	for _, path := range []string{"/userinfo", "/api/v1/me"} {
		req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+rotated["access_token"].(string))
		resp, _ := b.do(req)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d Cache-Control %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	// Failures log too: a wrong secret, a bad code, a revoked token.
	e.postForm("/oauth2/token", id, "wrong-"+secret, url.Values{"grant_type": {"authorization_code"}, "code": {code}})
	e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"authorization_code"}, "code": {code + "x"}, "code_verifier": {verifier}})
	e.postForm("/oauth2/revoke", id, secret, url.Values{"token": {rotated["refresh_token"].(string)}})
	if resp, err := http.Post(e.URL+"/api/v1/password/forgot", "application/json", strings.NewReader(`{"email":"leak@example.com"}`)); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Errorf("forgot: %v %v", resp, err)
	}

	for _, path := range []string{"/login", "/register", "/password/forgot", "/account", "/oauth2/logout"} {
		resp, _ := b.get(e.URL + path)
		if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q", path, rp)
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "token issued") {
		t.Fatalf("the log capture saw no token issuance; got:\n%.2000s", logs)
	}
	for name, s := range map[string]string{
		"password": secUserPass, "client secret": secret, "first-party secret": fpSecret, "code": code,
		"code verifier": verifier, "access token": at, "refresh token": rt, "id token": idt,
		"rotated access token": rotated["access_token"].(string), "rotated refresh token": rotated["refresh_token"].(string),
		"password-grant token": pw["access_token"].(string), "session cookie": b.cookie(e.URL, "authd_session"),
		"csrf cookie": b.cookie(e.URL, "authd_csrf"),
	} {
		if s == "" {
			t.Errorf("%s: nothing to look for", name)
			continue
		}
		// The signature part alone would do as much harm as the whole token.
		needle := s
		if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i > 16 {
			needle = s[i+1:]
		}
		if strings.Contains(logs, needle) {
			t.Errorf("the %s appears in the server log", name)
		}
	}
}

// RFC 9700 §2.5 / RFC 6819 §5.1.4.2.2 (timing-safe secret comparison): the
// functions that compare client secrets and CSRF tokens use a
// constant-time comparison. (A timing measurement would be flaky; reading
// the code is not.) Fuzzed in storage/fositestore (FuzzSHA256HasherCompare).
func TestRFC9700_2_5_TimingSafeSecretComparison(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ file, recv, fn string }{
		{"../../storage/fositestore/clients.go", "SHA256Hasher", "Compare"},
		{"../../login-ui/ui.go", "UI", "CheckCSRF"},
	} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, c.file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		found, constantTime := false, false
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name != c.fn || fd.Recv == nil || !strings.Contains(types(fd.Recv), c.recv) {
				continue
			}
			found = true
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok {
						name := x.Name + "." + sel.Sel.Name
						constantTime = constantTime || name == "subtle.ConstantTimeCompare" || name == "hmac.Equal"
					}
				}
				if bin, ok := n.(*ast.BinaryExpr); ok && (bin.Op == token.EQL || bin.Op == token.NEQ) {
					if call, ok := bin.X.(*ast.CallExpr); ok {
						if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Equal" {
							if x, ok := sel.X.(*ast.Ident); ok && x.Name == "bytes" {
								t.Errorf("%s.%s compares with bytes.Equal", c.recv, c.fn)
							}
						}
					}
				}
				return true
			})
		}
		if !found {
			t.Fatalf("%s: no method %s.%s", c.file, c.recv, c.fn)
		}
		if !constantTime {
			t.Errorf("%s.%s does not use subtle.ConstantTimeCompare or hmac.Equal", c.recv, c.fn)
		}
	}
	// And it answers correctly.
	h := fositestore.SHA256Hasher{}
	sum, _ := h.Hash(context.Background(), []byte("s3cret"))
	if err := h.Compare(context.Background(), sum, []byte("s3cret")); err != nil {
		t.Errorf("right secret: %v", err)
	}
	if err := h.Compare(context.Background(), sum, []byte("s3creT")); err == nil {
		t.Error("wrong secret accepted")
	}
}

// types renders a receiver list's type names.
func types(fl *ast.FieldList) string {
	var s []string
	for _, f := range fl.List {
		ast.Inspect(f.Type, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				s = append(s, id.Name)
			}
			return true
		})
	}
	return strings.Join(s, " ")
}

// RFC 6749 §3.1/§3.2 (parameters MUST NOT be included more than once) and
// §2.3.1 (credentials only in the body): a repeated parameter, or one in
// both the query and the body, is refused at every OAuth endpoint.
func TestRFC6749_3_1_DuplicatedParametersRefused(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, secret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect", "openid"}})
	post := func(path, query, body string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, e.URL+path+query, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		rec := e.serve(req)
		out := map[string]any{}
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	if st, out := post("/oauth2/token", "", "grant_type=client_credentials"); st != http.StatusOK {
		t.Fatalf("a plain request: %d %v", st, out)
	}
	for _, c := range []struct{ path, query, body string }{
		{"/oauth2/token", "", "grant_type=client_credentials&grant_type=password"},
		{"/oauth2/token", "", "grant_type=client_credentials&scope=openid&scope=introspect"},
		{"/oauth2/token", "?grant_type=client_credentials", "grant_type=client_credentials"},
		{"/oauth2/token", "?client_secret=" + url.QueryEscape(secret), "grant_type=client_credentials&client_secret=" + url.QueryEscape(secret)},
		{"/oauth2/introspect", "", "token=a&token=b"},
		{"/oauth2/revoke", "?token=a", "token=b"},
	} {
		if st, out := post(c.path, c.query, c.body); st != http.StatusBadRequest || out["error"] != "invalid_request" {
			t.Errorf("%s%s %q: %d %v", c.path, c.query, c.body, st, out)
		}
	}
	web, _ := e.webClient()
	_, challenge := secPKCE()
	for _, extra := range []string{"&client_id=" + url.QueryEscape(web), "&redirect_uri=" + url.QueryEscape("https://evil.example/cb"), "&scope=admin"} {
		resp, _ := getNoFollow(t, secAuthURL(e.URL, web, challenge, nil)+extra)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("authorize with a repeated parameter (%s): %d Location %q", extra, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
