package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/storagetest"
)

// adminEnv is the real app on loopback HTTP plus direct handles on its
// database for setting up users and clients and checking what changed.
type adminEnv struct {
	t       *testing.T
	ts      *testServer
	db      *storagetest.DB
	accts   *accounts.Service
	clients *clients.Registry
	// app is a first-party client using the password and refresh grants;
	// it may introspect its own tokens.
	appID, appSecret string
	adminID          string
	adminToken       string
}

const (
	adminEmail = "root@example.com"
	adminPass  = "admin-passw0rd-for-tests"
	userPass   = "user-passw0rd-for-tests"
)

func newAdminEnv(t *testing.T, env ...string) *adminEnv {
	t.Helper()
	db := storagetest.NewDB(t)
	ts := startServer(t, db.URL, env, nil)
	hasher, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := &adminEnv{t: t, ts: ts, db: db,
		accts:   accounts.New(db.Pool, hasher, nil, accounts.Config{}),
		clients: clients.NewRegistry(fositestore.New(db.Pool, fositestore.Options{})),
	}
	app, secret, err := e.clients.CreateClient(context.Background(), clients.Spec{
		Name: "console", FirstParty: true, GrantTypes: []string{"password", "refresh_token"},
		Scopes: []string{"openid", "profile", "roles", "offline_access", "admin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.appID, e.appSecret = app.ID, secret
	e.adminID = e.mustUser(adminEmail, adminPass, "admin").ID
	e.adminToken, _ = e.passwordToken(adminEmail, adminPass, "admin offline_access")
	return e
}

func (e *adminEnv) mustUser(email, password string, roles ...string) *accounts.User {
	e.t.Helper()
	u, err := e.accts.CreateUser(context.Background(), accounts.NewUser{Email: email, Password: password, Roles: roles, Verified: true}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// tokenEndpoint posts form as client id/secret and decodes the answer.
func (e *adminEnv) tokenEndpoint(path, id, secret string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// passwordToken logs the user in through the console client.
func (e *adminEnv) passwordToken(email, password, scope string) (access, refresh string) {
	e.t.Helper()
	st, out := e.tokenEndpoint("/oauth2/token", e.appID, e.appSecret,
		url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}, "scope": {scope}})
	if st != http.StatusOK {
		e.t.Fatalf("password grant for %s: %d %v", email, st, out)
	}
	access, _ = out["access_token"].(string)
	refresh, _ = out["refresh_token"].(string)
	return access, refresh
}

// refresh redeems a refresh token; it returns the status and the answer.
func (e *adminEnv) refresh(rt string) (int, map[string]any) {
	e.t.Helper()
	return e.tokenEndpoint("/oauth2/token", e.appID, e.appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// introspect asks about token as the client it was issued to.
func (e *adminEnv) introspect(token string) map[string]any {
	e.t.Helper()
	st, out := e.tokenEndpoint("/oauth2/introspect", e.appID, e.appSecret, url.Values{"token": {token}})
	if st != http.StatusOK {
		e.t.Fatalf("introspect: %d %v", st, out)
	}
	return out
}

// clientToken is a client_credentials token of a new service client.
func (e *adminEnv) clientToken(scopes ...string) (clientID, token string) {
	e.t.Helper()
	c, secret, err := e.clients.CreateClient(context.Background(), clients.Spec{
		Name: "automation", GrantTypes: []string{"client_credentials"}, Scopes: scopes})
	if err != nil {
		e.t.Fatal(err)
	}
	st, out := e.tokenEndpoint("/oauth2/token", c.ID, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Join(scopes, " ")}})
	if st != http.StatusOK {
		e.t.Fatalf("client_credentials: %d %v", st, out)
	}
	token, _ = out["access_token"].(string)
	return c.ID, token
}

// call sends an API request with a bearer token ("" for none) and a JSON
// body (nil for none).
func (e *adminEnv) call(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must is call that fails the test unless the status is want, decoding
// the answer into out (when not nil).
func (e *adminEnv) must(want int, method, path, token string, body, out any) {
	e.t.Helper()
	st, b := e.call(method, path, token, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// wantProblem checks a problem+json answer and its type suffix.
func wantProblem(t *testing.T, what string, st int, b []byte, status int, code string) {
	t.Helper()
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if st != status || json.Unmarshal(b, &p) != nil || p.Status != status || p.Type != "urn:authd:problem:"+code {
		t.Fatalf("%s: got %d %s, want %d %s", what, st, b, status, code)
	}
}

// jwtClaims decodes a JWT's payload without verifying it (the server did).
func jwtClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// jwtHeader decodes a JWT's header.
func jwtHeader(t *testing.T, jwt string) map[string]any {
	t.Helper()
	h, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// rolesClaim reads a roles claim (JWT or introspection).
func rolesClaim(m map[string]any) []string {
	raw, _ := m["roles"].([]any)
	out := []string{}
	for _, r := range raw {
		s, _ := r.(string)
		out = append(out, s)
	}
	return out
}

func (e *adminEnv) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func TestAdminAPI_AdminManagesRolesAndUsers(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.adminToken
	alice := e.mustUser("alice@example.com", userPass)
	bob := e.mustUser("bob@example.com", userPass)

	var role accounts.Role
	e.must(201, "POST", "/admin/v1/roles", tok, map[string]string{"name": "editor", "description": "Edits things"}, &role)
	if role.Name != "editor" || role.Builtin {
		t.Fatalf("created role %+v", role)
	}
	st, b := e.call("POST", "/admin/v1/roles", tok, map[string]string{"name": "editor"})
	wantProblem(t, "duplicate role", st, b, 409, "role_exists")
	st, b = e.call("POST", "/admin/v1/roles", tok, map[string]string{"name": "Bad Name"})
	wantProblem(t, "invalid role name", st, b, 400, "invalid_request")

	var ur struct {
		ID    string   `json:"id"`
		Roles []string `json:"roles"`
	}
	e.must(200, "PUT", "/admin/v1/users/"+alice.ID+"/roles/editor", tok, nil, &ur)
	if !slices.Equal(ur.Roles, []string{"editor", "user"}) {
		t.Fatalf("roles after PUT: %v", ur.Roles)
	}
	st, b = e.call("PUT", "/admin/v1/users/"+alice.ID+"/roles/nope", tok, nil)
	wantProblem(t, "unknown role", st, b, 404, "role_not_found")
	st, b = e.call("PUT", "/admin/v1/users/00000000-0000-0000-0000-000000000000/roles/editor", tok, nil)
	wantProblem(t, "unknown user", st, b, 404, "user_not_found")
	st, b = e.call("DELETE", "/admin/v1/roles/editor", tok, nil)
	wantProblem(t, "role in use", st, b, 409, "role_in_use")
	st, b = e.call("DELETE", "/admin/v1/roles/admin", tok, nil)
	wantProblem(t, "built-in role", st, b, 409, "role_builtin")

	var roles struct{ Items []accounts.Role }
	e.must(200, "GET", "/admin/v1/roles", tok, nil, &roles)
	names := []string{}
	for _, r := range roles.Items {
		names = append(names, r.Name)
		if r.Name == "editor" && r.Users != 1 {
			t.Fatalf("editor held by %d users, want 1", r.Users)
		}
	}
	if !slices.Equal(names, []string{"admin", "editor", "user"}) {
		t.Fatalf("roles %v", names)
	}

	var got accounts.User
	e.must(200, "GET", "/admin/v1/users/"+alice.ID, tok, nil, &got)
	if got.Email != "alice@example.com" || !slices.Contains(got.Roles, "editor") {
		t.Fatalf("GET user: %+v", got)
	}
	st, b = e.call("GET", "/admin/v1/users/not-a-uuid", tok, nil)
	wantProblem(t, "malformed id", st, b, 404, "user_not_found")

	var page accounts.UserPage
	e.must(200, "GET", "/admin/v1/users?role=editor", tok, nil, &page)
	if len(page.Items) != 1 || page.Items[0].ID != alice.ID || page.NextCursor != nil {
		t.Fatalf("filter by role: %+v", page)
	}
	e.must(200, "GET", "/admin/v1/users?q=BO", tok, nil, &page)
	if len(page.Items) != 1 || page.Items[0].ID != bob.ID {
		t.Fatalf("search: %+v", page)
	}
	e.must(200, "GET", "/admin/v1/users?q=%25", tok, nil, &page) // a literal %, not a wildcard
	if len(page.Items) != 0 {
		t.Fatalf("search for a literal %%: %d users", len(page.Items))
	}
	// Three users (root, alice, bob), one per page, newest first.
	seen := []string{}
	path := "/admin/v1/users?limit=1"
	for range 4 {
		e.must(200, "GET", path, tok, nil, &page)
		for _, u := range page.Items {
			seen = append(seen, u.Email)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/admin/v1/users?limit=1&cursor=" + url.QueryEscape(*page.NextCursor)
	}
	if !slices.Equal(seen, []string{"bob@example.com", "alice@example.com", adminEmail}) {
		t.Fatalf("paged listing: %v", seen)
	}
	st, b = e.call("GET", "/admin/v1/users?cursor=garbage!", tok, nil)
	wantProblem(t, "bad cursor", st, b, 400, "invalid_request")
	st, b = e.call("GET", "/admin/v1/users?limit=0", tok, nil)
	wantProblem(t, "bad limit", st, b, 400, "invalid_request")

	e.must(200, "DELETE", "/admin/v1/users/"+alice.ID+"/roles/editor", tok, nil, &ur)
	if !slices.Equal(ur.Roles, []string{"user"}) {
		t.Fatalf("roles after DELETE: %v", ur.Roles)
	}
	e.must(204, "DELETE", "/admin/v1/roles/editor", tok, nil, nil)
	st, b = e.call("DELETE", "/admin/v1/roles/editor", tok, nil)
	wantProblem(t, "deleted role", st, b, 404, "role_not_found")

	e.must(200, "POST", "/admin/v1/users/"+bob.ID+"/disable", tok, nil, &got)
	if !got.Disabled {
		t.Fatal("disable did not disable")
	}
	e.must(200, "GET", "/admin/v1/users?disabled=true", tok, nil, &page)
	if len(page.Items) != 1 || page.Items[0].ID != bob.ID {
		t.Fatalf("disabled filter: %+v", page)
	}
	e.must(200, "POST", "/admin/v1/users/"+bob.ID+"/enable", tok, nil, &got)
	if got.Disabled {
		t.Fatal("enable did not enable")
	}
}

func TestAdminAPI_ClientCredentialsAdminToken(t *testing.T) {
	e := newAdminEnv(t)
	clientID, tok := e.clientToken("admin")
	e.must(201, "POST", "/admin/v1/roles", tok, map[string]string{"name": "ops"}, nil)
	var ev accounts.AuditPage
	e.must(200, "GET", "/admin/v1/audit?type=role.created", tok, nil, &ev)
	if len(ev.Items) != 1 || ev.Items[0].ActorType != "client" || ev.Items[0].ActorID != clientID {
		t.Fatalf("automation's event: %+v", ev.Items)
	}
}
