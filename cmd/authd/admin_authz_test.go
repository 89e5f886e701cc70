package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// adminState fingerprints everything the admin API can change.
func (e *adminEnv) adminState() string {
	e.t.Helper()
	var s string
	err := e.db.Pool.QueryRow(context.Background(), `SELECT concat_ws('|',
		(SELECT string_agg(name, ',' ORDER BY name) FROM roles),
		(SELECT string_agg(user_id::text || ':' || role, ',' ORDER BY user_id, role) FROM user_roles),
		(SELECT string_agg(id::text || ':' || disabled::text || ':' || email, ',' ORDER BY id) FROM users),
		(SELECT string_agg(id || ':' || encode(coalesce(secret_hash, ''), 'hex') || ':' || array_to_string(scopes, ' '), ',' ORDER BY id) FROM oauth2_clients),
		(SELECT string_agg(kid || ':' || activates_at::text, ',' ORDER BY kid) FROM signing_keys),
		(SELECT count(*) FROM browser_sessions WHERE revoked_at IS NULL),
		(SELECT count(*) FROM oauth2_refresh WHERE active),
		(SELECT string_agg(slug || ':' || enabled::text || ':' || client_secret_sealed, ',' ORDER BY slug) FROM upstream_providers),
		(SELECT count(*) FROM audit_events),
		(SELECT count(*) FROM user_totp))`).Scan(&s)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// attempts tries one of each admin mutation (and a read) with token and
// checks every answer is status with the generic problem, no detail.
func (e *adminEnv) attempts(name, token string, status int, victimID, clientID string) {
	e.t.Helper()
	code := map[int]string{401: "unauthorized", 403: "forbidden"}[status]
	reqs := []struct {
		method, path string
		body         any
	}{
		{"GET", "/admin/v1/users", nil},
		{"GET", "/admin/v1/users/" + victimID, nil},
		{"GET", "/admin/v1/audit", nil},
		{"GET", "/admin/v1/clients", nil},
		{"GET", "/admin/v1/keys", nil},
		{"GET", "/admin/v1/openapi.json", nil},
		{"POST", "/admin/v1/roles", map[string]string{"name": "intruder"}},
		{"DELETE", "/admin/v1/roles/editor", nil},
		{"PUT", "/admin/v1/users/" + victimID + "/roles/admin", nil},
		{"DELETE", "/admin/v1/users/" + victimID + "/roles/editor", nil},
		{"POST", "/admin/v1/users/" + victimID + "/disable", nil},
		{"DELETE", "/admin/v1/users/" + victimID + "/mfa", nil},
		{"DELETE", "/admin/v1/users/" + victimID, nil},
		{"POST", "/admin/v1/clients", map[string]any{"name": "evil", "grant_types": []string{"client_credentials"}, "scopes": []string{"admin"}}},
		{"PATCH", "/admin/v1/clients/" + clientID, map[string]any{"scopes": []string{"admin"}}},
		{"POST", "/admin/v1/clients/" + clientID + "/secret", nil},
		{"DELETE", "/admin/v1/clients/" + clientID, nil},
		{"POST", "/admin/v1/keys/rotate", nil},
		{"GET", "/admin/v1/identity-providers", nil},
		{"GET", "/admin/v1/identity-providers/corp", nil},
		{"POST", "/admin/v1/identity-providers", map[string]any{"slug": "evil", "issuer": "https://evil.example", "client_id": "x", "client_secret": "y", "allow_signup": true}},
		{"PATCH", "/admin/v1/identity-providers/corp", map[string]any{"allow_signup": true, "client_secret": "stolen"}},
		{"DELETE", "/admin/v1/identity-providers/corp", nil},
	}
	for _, r := range reqs {
		st, b := e.call(r.method, r.path, token, r.body)
		wantProblem(e.t, name+": "+r.method+" "+r.path, st, b, status, code)
		// Besides echoing the path (instance), the answer names no user,
		// role or client: only the generic text.
		doc := map[string]any{}
		_ = json.Unmarshal(b, &doc)
		delete(doc, "instance")
		rest, _ := json.Marshal(doc)
		for _, leak := range []string{victimID, clientID, "editor", "intruder", "admin", "role", "scope"} {
			if strings.Contains(string(rest), leak) {
				e.t.Fatalf("%s: %s %s leaks %q: %s", name, r.method, r.path, leak, b)
			}
		}
	}
}

func TestAdminAPI_NonAdminTokensChangeNothing(t *testing.T) {
	e := newAdminEnv(t)
	victim := e.mustUser("victim@example.com", userPass)
	e.must(201, "POST", "/admin/v1/roles", e.adminToken, map[string]string{"name": "editor"}, nil)
	e.must(200, "PUT", "/admin/v1/users/"+victim.ID+"/roles/editor", e.adminToken, nil, nil)
	var svc struct {
		ClientID string `json:"client_id"`
	}
	e.must(201, "POST", "/admin/v1/clients", e.adminToken, map[string]any{"name": "svc", "grant_types": []string{"client_credentials"}}, &svc)
	e.must(201, "POST", "/admin/v1/identity-providers", e.adminToken, map[string]any{"slug": "corp", "issuer": "https://idp.corp.example",
		"client_id": "authd", "client_secret": "corp-secret"}, nil)

	plainUser, _ := e.passwordToken("victim@example.com", userPass, "admin")
	adminNoScope, _ := e.passwordToken(adminEmail, adminPass, "openid roles")
	_, clientNoScope := e.clientToken("introspect")
	revoked, _ := e.passwordToken(adminEmail, adminPass, "admin")
	if st, out := e.tokenEndpoint("/oauth2/revoke", e.appID, e.appSecret, url.Values{"token": {revoked}, "token_type_hint": {"access_token"}}); st != http.StatusOK {
		t.Fatalf("revoke: %d %v", st, out)
	}

	before := e.adminState()
	for _, c := range []struct {
		name, token string
		status      int
	}{
		{"no token", "", 401},
		{"malformed token", "not.a.jwt", 401},
		{"user token without the admin role", plainUser, 403},
		{"admin user token without the admin scope", adminNoScope, 403},
		{"client token without the admin scope", clientNoScope, 403},
		{"revoked admin token", revoked, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := *e
			e.t = t
			e.attempts(c.name, c.token, c.status, victim.ID, svc.ClientID)
		})
	}
	if after := e.adminState(); after != before {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
	}
	// The admin token still works: the failures were about the tokens.
	e.must(200, "GET", "/admin/v1/users/"+victim.ID, e.adminToken, nil, nil)
}

func TestAdminAPI_ExpiredTokenChangesNothing(t *testing.T) {
	e := newAdminEnv(t, "AUTHD_ACCESS_TOKEN_TTL=3s")
	victim := e.mustUser("victim@example.com", userPass)
	token, _ := e.passwordToken(adminEmail, adminPass, "admin")
	e.must(200, "GET", "/admin/v1/roles", token, nil, nil) // valid while fresh
	// Expiry is the only way out for this token: wait for it by polling.
	waitFor(t, "the admin token to expire", 15*time.Second, func() bool {
		st, _ := e.call("GET", "/admin/v1/roles", token, nil)
		return st == http.StatusUnauthorized
	})
	before := e.adminState()
	e.attempts("expired admin token", token, 401, victim.ID, e.appID)
	if after := e.adminState(); after != before {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
	}
}
