package main

// Fuzz targets over the assembled application, driven
// in-process through buildApp's handler. `go test` runs the seeds (f.Add and
// testdata/fuzz/<Name>); `go test -fuzz=FuzzX ./cmd/authd` explores. Each
// asserts an invariant beyond "no panic": never a 5xx, never success
// without credentials, errors in the endpoint's format.

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	josev4 "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/oauth/clients"
)

const fuzzClient = "fuzz-client"

// fuzzEnv is the application with a fixed, known confidential client, so
// seeds can name it.
func fuzzEnv(f *testing.F) *secEnv {
	e := newSecEnv(f)
	e.mustClient(clients.Spec{ID: fuzzClient, RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
		Scopes:     []string{"openid", "profile", "offline_access", "introspect"}})
	return e
}

// checkOAuthError asserts an OAuth error response: a 4xx JSON object with
// an error code, not cacheable.
func checkOAuthError(t *testing.T, rec interface {
	Result() *http.Response
}, body []byte) {
	t.Helper()
	resp := rec.Result()
	if resp.StatusCode >= 500 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.StatusCode < 400 {
		t.Fatalf("success without valid credentials: %d %s", resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m["error"] == nil {
		t.Fatalf("status %d without an OAuth error object: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("error response cacheable: %q", resp.Header.Get("Cache-Control"))
	}
	if m := secLeakRE.Find(body); m != nil {
		t.Fatalf("leaks %q: %s", m, body)
	}
}

// FuzzTokenEndpoint: any form, content type and Authorization header at
// /oauth2/token gets an OAuth error, never a 5xx and never tokens (the
// client's secret is random per run, so no input can know it).
func FuzzTokenEndpoint(f *testing.F) {
	e := fuzzEnv(f)
	for _, s := range []struct{ body, ct, auth string }{
		{"grant_type=client_credentials", "application/x-www-form-urlencoded", "Basic ZnV6ei1jbGllbnQ6d3Jvbmc="},
		{"grant_type=client_credentials&client_id=fuzz-client&client_secret=x", "application/x-www-form-urlencoded", ""},
		{"grant_type=authorization_code&code=ory_ac_x.y&code_verifier=abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb", "application/x-www-form-urlencoded", "Basic ZnV6ei1jbGllbnQ6eA=="},
		{"grant_type=refresh_token&refresh_token=ory_rt_%FF", "application/x-www-form-urlencoded", "Basic ZnV6ei1jbGllbnQ6eA=="},
		{"grant_type=password&username=a&password=b&grant_type=client_credentials", "application/x-www-form-urlencoded", "Basic Og=="},
		{"grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=e30.e30.", "application/x-www-form-urlencoded", ""},
		{`{"grant_type":"client_credentials"}`, "application/json", "Bearer x"},
		{"--b\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--b--\r\n", "multipart/form-data; boundary=b", "Basic %%%"},
		{"%zz=%", "application/x-www-form-urlencoded; charset=utf-16", "Basic " + strings.Repeat("A", 300)},
		{"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=x", "application/x-www-form-urlencoded", "Basic ZnV6ei1jbGllbnQ6eA=="},
	} {
		f.Add(s.body, s.ct, s.auth)
	}
	f.Fuzz(func(t *testing.T, body, ct, auth string) {
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := e.serve(req)
		checkOAuthError(t, rec, rec.Body.Bytes())
	})
}

// FuzzClientAssertion: whatever a private_key_jwt client_assertion holds
// (no input can carry a signature by the client's key, which is generated
// per run), the client is not authenticated, and nothing fails as a 5xx.
func FuzzClientAssertion(f *testing.F) {
	e := newSecEnv(f)
	jwks := `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`
	var set josev4.JSONWebKeySet
	if err := json.Unmarshal([]byte(jwks), &set); err != nil {
		f.Fatal(err)
	}
	e.mustClient(clients.Spec{ID: "fuzz-jwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"},
		TokenEndpointAuthMethod: "private_key_jwt", TokenEndpointAuthSigningAlg: "ES256", JWKS: json.RawMessage(jwks)})
	hdr := func(alg string) string { return b64seg(map[string]string{"alg": alg, "typ": "JWT", "kid": "k1"}) }
	claims := b64seg(map[string]any{"iss": "fuzz-jwt", "sub": "fuzz-jwt", "aud": e.URL + "/oauth2/token", "jti": "j1", "exp": 4102444800, "iat": 1700000000})
	for _, s := range []string{
		hdr("none") + "." + claims + ".",
		hdr("HS256") + "." + claims + ".c2ln",
		hdr("ES256") + "." + claims + "." + strings.Repeat("A", 86),
		hdr("RS256") + "." + claims + ".AAAA",
		"e30.e30.e30", "..", "a.b.c.d.e", "", strings.Repeat(".", 1000),
		b64seg(map[string]any{"alg": "ES256", "kid": map[string]any{"x": 1}, "crit": []string{"b64"}, "b64": false}) + "." + claims + ".",
		b64seg(map[string]any{"alg": "ES256", "jwk": set.Keys[0]}) + "." + claims + ".AAAA",
		"eyJhbGciOiJFUzI1NiJ9." + strings.Repeat("eyJ", 300) + ".x",
	} {
		f.Add(s, "fuzz-jwt")
	}
	f.Fuzz(func(t *testing.T, assertion, clientID string) {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
		req, _ := http.NewRequest(http.MethodPost, e.URL+"/oauth2/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := e.serve(req)
		checkOAuthError(t, rec, rec.Body.Bytes())
	})
}

// FuzzAuthorizeRequest: any query at /oauth2/auth (no session) is refused,
// sent to the local login page, or redirected with an error to the exact
// registered redirect URI (with iss) and nowhere else; never a code, never
// a 5xx.
func FuzzAuthorizeRequest(f *testing.F) {
	e := fuzzEnv(f)
	_, challenge := secPKCE()
	valid := url.Values{"response_type": {"code"}, "client_id": {fuzzClient}, "redirect_uri": {secRedirect},
		"scope": {"openid"}, "state": {"state-123456"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	f.Add(valid.Encode())
	for k, v := range map[string]string{"redirect_uri": "https://evil.example/cb", "response_type": "token", "scope": "openid admin",
		"code_challenge_method": "plain", "prompt": "none", "max_age": "-1", "state": "", "client_id": "nope", "request": "e30.e30.",
		"request_uri": "https://evil.example/r", "response_mode": "form_post", "code_challenge": "", "nonce": strings.Repeat("n", 5000)} {
		q := url.Values{}
		for kk, vv := range valid {
			q[kk] = vv
		}
		q.Set(k, v)
		f.Add(q.Encode())
	}
	f.Add("client_id=fuzz-client&client_id=other&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&redirect_uri=https%3A%2F%2Fevil.example")
	f.Add("%ff%fe=%c3%28&client_id=%00")
	f.Add("")
	f.Fuzz(func(t *testing.T, query string) {
		req, err := http.NewRequest(http.MethodGet, e.URL+"/oauth2/auth?"+query, nil)
		if err != nil {
			t.Skip() // not a URL any client could send
		}
		rec := e.serve(req)
		st, body := rec.Code, rec.Body.Bytes()
		if st >= 500 {
			t.Fatalf("status %d: %s", st, body)
		}
		loc := rec.Header().Get("Location")
		switch {
		case st >= 300 && st < 400:
			if strings.HasPrefix(loc, "/login?") {
				return
			}
			// The registered URI exactly, except that a loopback URI
			// matches on any port (RFC 8252 §7.3, fosite's rule).
			u, err := url.Parse(loc)
			if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Path != "/cb" || u.User != nil || u.Fragment != "" {
				t.Fatalf("redirect to %q", loc)
			}
			if u.Query().Get("code") != "" || u.Query().Get("error") == "" || u.Query().Get("iss") != e.URL {
				t.Fatalf("redirect %q: want an error with iss and no code", loc)
			}
		case st >= 400:
			if err := secDescribeError(st, rec.Header(), body); err != nil {
				t.Fatal(err)
			}
		case strings.Contains(string(body), `name="error"`) && strings.Contains(string(body), `action="`+secRedirect+`"`) &&
			!strings.Contains(string(body), `name="code"`):
			// fosite answers response_mode=form_post errors with an
			// auto-posting form to the registered redirect URI.
		default:
			t.Fatalf("status %d without a session: %s", st, body)
		}
	})
}
