package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// adminClient is the admin API's view of a client.
type adminClient struct {
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret"`
	Name          string   `json:"name"`
	RedirectURIs  []string `json:"redirect_uris"`
	GrantTypes    []string `json:"grant_types"`
	ResponseTypes []string `json:"response_types"`
	Scopes        []string `json:"scopes"`
}

// ccStatus is the token endpoint's status for a client_credentials request.
func (e *adminEnv) ccStatus(id, secret string) int {
	e.t.Helper()
	st, _ := e.tokenEndpoint("/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}})
	return st
}

func TestAdminAPI_ClientLifecycle(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.adminToken

	var c adminClient
	e.must(201, "POST", "/admin/v1/clients", tok, map[string]any{
		"client_id": "billing", "name": "Billing", "grant_types": []string{"client_credentials"}, "scopes": []string{"introspect"},
	}, &c)
	if c.ClientID != "billing" || len(c.ClientSecret) < 43 {
		t.Fatalf("create: %+v (want the id and a ≥256-bit secret)", c)
	}
	first := c.ClientSecret
	if st := e.ccStatus("billing", first); st != http.StatusOK {
		t.Fatalf("the new secret does not work: %d", st)
	}
	st, b := e.call("POST", "/admin/v1/clients", tok, map[string]any{"client_id": "billing", "name": "again", "grant_types": []string{"client_credentials"}})
	wantProblem(t, "duplicate id", st, b, 409, "client_exists")
	st, b = e.call("POST", "/admin/v1/clients", tok, map[string]any{"name": "x", "grant_types": []string{"telepathy"}})
	wantProblem(t, "unknown grant", st, b, 400, "invalid_request")

	// Reads never show a secret again.
	st, b = e.call("GET", "/admin/v1/clients/billing", tok, nil)
	if st != 200 || containsAny(string(b), first, `"client_secret":`, "secret_hash") {
		t.Fatalf("GET client: %d %s", st, b)
	}
	var list struct{ Items []adminClient }
	e.must(200, "GET", "/admin/v1/clients", tok, nil, &list)
	ids := []string{}
	for _, it := range list.Items {
		ids = append(ids, it.ClientID)
		if it.ClientSecret != "" {
			t.Fatal("list shows a secret")
		}
	}
	if !slices.Contains(ids, "billing") || !slices.Contains(ids, e.appID) {
		t.Fatalf("list: %v", ids)
	}

	// Update: only the fields sent change.
	c = adminClient{}
	e.must(200, "PATCH", "/admin/v1/clients/billing", tok, map[string]any{
		"redirect_uris": []string{"https://billing.example/cb"},
		"grant_types":   []string{"authorization_code", "refresh_token", "client_credentials"},
		"scopes":        []string{"introspect", "credits:read"},
	}, &c)
	if c.Name != "Billing" || !slices.Equal(c.RedirectURIs, []string{"https://billing.example/cb"}) ||
		!slices.Equal(c.Scopes, []string{"introspect", "credits:read"}) || !slices.Equal(c.ResponseTypes, []string{"code"}) ||
		c.ClientSecret != "" {
		t.Fatalf("after PATCH: %+v", c)
	}
	if st := e.ccStatus("billing", first); st != http.StatusOK {
		t.Fatalf("an update must keep the secret: %d", st)
	}
	st, b = e.call("PATCH", "/admin/v1/clients/billing", tok, map[string]any{"redirect_uris": []string{"http://evil.example/cb"}})
	wantProblem(t, "non-loopback http redirect", st, b, 400, "invalid_request")
	st, b = e.call("PATCH", "/admin/v1/clients/billing", tok, map[string]any{"client_id": "other"})
	wantProblem(t, "id change", st, b, 400, "invalid_request")
	st, b = e.call("PATCH", "/admin/v1/clients/nope", tok, map[string]any{"name": "x"})
	wantProblem(t, "unknown client", st, b, 404, "client_not_found")

	// Rotation: the old secret dies at once, the new one works.
	var rot struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	e.must(200, "POST", "/admin/v1/clients/billing/secret", tok, nil, &rot)
	if rot.ClientID != "billing" || len(rot.ClientSecret) < 43 || rot.ClientSecret == first {
		t.Fatalf("rotate: %+v", rot)
	}
	if st := e.ccStatus("billing", first); st != http.StatusUnauthorized {
		t.Fatalf("old secret after rotation: %d, want 401", st)
	}
	if st := e.ccStatus("billing", rot.ClientSecret); st != http.StatusOK {
		t.Fatalf("new secret after rotation: %d", st)
	}

	e.must(204, "DELETE", "/admin/v1/clients/billing", tok, nil, nil)
	st, b = e.call("GET", "/admin/v1/clients/billing", tok, nil)
	wantProblem(t, "deleted client", st, b, 404, "client_not_found")
	if st := e.ccStatus("billing", rot.ClientSecret); st != http.StatusUnauthorized {
		t.Fatalf("deleted client's secret: %d, want 401", st)
	}
	st, b = e.call("DELETE", "/admin/v1/clients/billing", tok, nil)
	wantProblem(t, "second delete", st, b, 404, "client_not_found")
}

func TestAdminAPI_Keys(t *testing.T) {
	e := newAdminEnv(t)
	type key struct{ KID, Alg, State string }
	var before, after struct{ Items []key }
	e.must(200, "GET", "/admin/v1/keys", e.adminToken, nil, &before)
	next := map[string]string{}
	for _, k := range before.Items {
		if k.State == "next" {
			next[k.Alg] = k.KID
		}
	}
	if len(next) != 2 || len(before.Items) != 4 {
		t.Fatalf("keys of a new deployment: %v", before.Items)
	}
	// A next key younger than the JWKS cache lifetime only takes over later
	// (keys.Manager.Rotate). Age the keys so that this rotation is immediate;
	// the trigger bumps updated_at, so the server reloads them.
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE signing_keys SET created_at = created_at - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	e.must(200, "POST", "/admin/v1/keys/rotate", e.adminToken, nil, &after)
	states := map[string]string{}
	for _, k := range after.Items {
		states[k.KID] = k.State
	}
	if states[next["ES256"]] != "active" || states[next["RS256"]] != "active" || len(after.Items) != 6 {
		t.Fatalf("after rotation: %v (the next keys %v should be active, with new next keys)", after.Items, next)
	}
	// The old token still verifies (its key stays published); new tokens use the new key.
	e.must(200, "GET", "/admin/v1/keys", e.adminToken, nil, nil)
	fresh, _ := e.passwordToken(adminEmail, adminPass, "admin")
	if kid := jwtHeader(t, fresh)["kid"]; kid != next["ES256"] {
		t.Fatalf("new access token signed by %v, want %s", kid, next["ES256"])
	}
	e.must(200, "GET", "/admin/v1/keys", fresh, nil, nil)
}

func containsAny(s string, subs ...string) bool {
	return slices.ContainsFunc(subs, func(sub string) bool { return strings.Contains(s, sub) })
}

// TestAdminAPI_ChargeCapsShownAndAudited: a charging client's caps are in
// its admin view and in the audit events of its registration and of every
// change to them, so an administrator can see what a service may take and
// who allowed it.
func TestAdminAPI_ChargeCapsShownAndAudited(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.adminToken
	type capsView struct {
		PerSpend   int64 `json:"charge_max_per_spend"`
		PerUserDay int64 `json:"charge_max_per_user_day"`
	}
	before := e.lastAuditID()
	var c capsView
	e.must(201, "POST", "/admin/v1/clients", tok, map[string]any{"client_id": "shop", "name": "Shop",
		"grant_types": []string{"client_credentials"}, "scopes": []string{"credits:charge"},
		"charge_max_per_spend": 25, "charge_max_per_user_day": 100}, &c)
	if c != (capsView{25, 100}) {
		t.Errorf("create answer: caps %+v", c)
	}
	c = capsView{}
	e.must(200, "GET", "/admin/v1/clients/shop", tok, nil, &c)
	if c != (capsView{25, 100}) {
		t.Errorf("admin view: caps %+v", c)
	}
	e.must(200, "PATCH", "/admin/v1/clients/shop", tok, map[string]any{"charge_max_per_user_day": 500}, &c)
	if c != (capsView{25, 500}) {
		t.Errorf("after PATCH: caps %+v", c)
	}
	got := e.auditSince(before)
	if len(got) != 2 || got[0].Type != "client.created" || got[1].Type != "client.updated" {
		t.Fatalf("audit events %+v", got)
	}
	for i, want := range []string{`"charge_max_per_spend": 25, "charge_max_per_user_day": 100`, `"charge_max_per_spend": 25, "charge_max_per_user_day": 500`} {
		if !strings.Contains(got[i].Details, want) {
			t.Errorf("%s: details %s, want the caps (%s)", got[i].Type, got[i].Details, want)
		}
	}
}
