package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/oauth/clients"
)

func s256Challenge() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	sum := sha256.Sum256([]byte(base64.RawURLEncoding.EncodeToString(b)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// The per-client PAR flag is set and shown by the admin API and the CLI.
func TestPAR_ClientFlagInAdminAPIAndCLI(t *testing.T) {
	e := newAdminEnv(t)
	var c map[string]any
	e.must(201, "POST", "/admin/v1/clients", e.adminToken, map[string]any{"name": "web",
		"redirect_uris": []string{"https://app.example/cb"}, "scopes": []string{"openid"}}, &c)
	id, _ := c["client_id"].(string)
	if c["require_pushed_authorization_requests"] != false {
		t.Fatalf("created: %v", c)
	}
	e.must(200, "PATCH", "/admin/v1/clients/"+id, e.adminToken, map[string]any{"require_pushed_authorization_requests": true}, &c)
	e.must(200, "GET", "/admin/v1/clients/"+id, e.adminToken, nil, &c)
	if c["require_pushed_authorization_requests"] != true {
		t.Fatalf("after PATCH: %v", c)
	}

	out, err := runCLI(t, map[string]string{"AUTHD_DATABASE_URL": e.db.URL}, "", "client", "create", "--output", "json",
		"--name", "tv", "--redirect-uri", "https://tv.example/cb", "--scope", "openid", "--require-par")
	if err != nil {
		t.Fatal(err)
	}
	var cli map[string]any
	if err := json.Unmarshal([]byte(out), &cli); err != nil || cli["require_pushed_authorization_requests"] != true {
		t.Fatalf("CLI output %q: %v", out, err)
	}
}

// AUTHD_REQUIRE_PAR=true is advertised in discovery and refuses a plain
// authorization request of a client that does not set the flag itself.
func TestPAR_RequiredGlobally(t *testing.T) {
	e := newAdminEnv(t, "AUTHD_REQUIRE_PAR=true")
	_, body := get(t, e.ts.URL+"/.well-known/openid-configuration")
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["require_pushed_authorization_requests"] != true || doc["pushed_authorization_request_endpoint"] != e.ts.URL+"/oauth2/par" {
		t.Fatalf("discovery: %v %v", doc["require_pushed_authorization_requests"], doc["pushed_authorization_request_endpoint"])
	}
	id, secret := mustClient(t, e.db.URL, clients.Spec{Name: "web", FirstParty: true,
		RedirectURIs: []string{"http://127.0.0.1:9/cb"}, Scopes: []string{"openid"}})
	params := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"http://127.0.0.1:9/cb"},
		"scope": {"openid"}, "state": {"state-123456789"}, "code_challenge": {s256Challenge()}, "code_challenge_method": {"S256"}}

	b := browser(t)
	postLogin(t, b, e.ts.URL, adminEmail, adminPass)
	resp, err := b.Get(e.ts.URL + "/oauth2/auth?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("code") != "" {
		t.Fatalf("plain request: %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
	}

	params.Del("client_id")
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/oauth2/par", strings.NewReader(params.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	presp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var pushed map[string]any
	_ = json.NewDecoder(presp.Body).Decode(&pushed)
	presp.Body.Close()
	uri, _ := pushed["request_uri"].(string)
	if presp.StatusCode != http.StatusCreated || uri == "" {
		t.Fatalf("push: %d %v", presp.StatusCode, pushed)
	}
	resp, err = b.Get(e.ts.URL + "/oauth2/auth?" + url.Values{"client_id": {id}, "request_uri": {uri}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("pushed request: %d Location=%q", resp.StatusCode, resp.Header.Get("Location"))
	}

}
