package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestAdminAPI_IdentityProviders(t *testing.T) {
	e := newAdminEnv(t)
	const secret = "gh-client-secret-0123456789"
	var gh map[string]any
	e.must(201, "POST", "/admin/v1/identity-providers", e.adminToken, map[string]any{"preset": "github", "client_id": "Iv1.abc",
		"client_secret": secret, "allow_signup": true}, &gh)
	if gh["slug"] != "github" || gh["kind"] != "github" || gh["api_url"] != "https://api.github.com" ||
		gh["callback_url"] != e.ts.URL+"/login/federated/github/callback" {
		t.Fatalf("github preset: %v", gh)
	}
	var google map[string]any
	e.must(201, "POST", "/admin/v1/identity-providers", e.adminToken, map[string]any{"preset": "google", "client_id": "g",
		"client_secret": "google-secret"}, &google)
	if google["issuer"] != "https://accounts.google.com" || google["display_name"] != "Google" {
		t.Fatalf("google preset: %v", google)
	}
	var ms map[string]any
	e.must(201, "POST", "/admin/v1/identity-providers", e.adminToken, map[string]any{"preset": "microsoft", "tenant": "contoso.onmicrosoft.com",
		"client_id": "m", "client_secret": "ms-secret"}, &ms)
	if ms["issuer"] != "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0" {
		t.Fatalf("microsoft preset: %v", ms)
	}

	t.Run("ErrInvalid", func(t *testing.T) {
		for _, c := range []struct {
			field string
			body  map[string]any
		}{
			{"tenant", map[string]any{"preset": "microsoft", "tenant": "common", "client_id": "m", "client_secret": "s"}},
			{"issuer", map[string]any{"slug": "plain", "issuer": "http://idp.example", "client_id": "m", "client_secret": "s"}},
			{"client_secret", map[string]any{"slug": "nosecret", "issuer": "https://idp.example", "client_id": "m"}},
			{"allowed_roles", map[string]any{"slug": "roles", "issuer": "https://idp.example", "client_id": "m", "client_secret": "s",
				"roles_claim": "groups", "allowed_roles": []string{"admin"}}},
			{"slug", map[string]any{"slug": "Bad Slug", "issuer": "https://idp.example", "client_id": "m", "client_secret": "s"}},
			{"preset", map[string]any{"preset": "facebook", "client_id": "m", "client_secret": "s"}},
		} {
			st, b := e.call("POST", "/admin/v1/identity-providers", e.adminToken, c.body)
			if st != http.StatusBadRequest || !strings.Contains(string(b), `"field":"`+c.field+`"`) {
				t.Errorf("%s: %d %s", c.field, st, b)
			}
		}
		if st, _ := e.call("POST", "/admin/v1/identity-providers", e.adminToken, map[string]any{"preset": "github", "client_id": "x", "client_secret": "y"}); st != http.StatusConflict {
			t.Errorf("duplicate slug: %d", st)
		}
	})
	t.Run("SecretSealedNeverShown", func(t *testing.T) {
		for _, path := range []string{"/admin/v1/identity-providers", "/admin/v1/identity-providers/github"} {
			_, b := e.call("GET", path, e.adminToken, nil)
			if strings.Contains(string(b), secret) || strings.Contains(string(b), "client_secret") {
				t.Errorf("%s shows the secret: %s", path, b)
			}
		}
		var sealed string
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT client_secret_sealed FROM upstream_providers WHERE slug = 'github'`).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(sealed, secret) || sealed == "" {
			t.Errorf("stored in clear: %q", sealed)
		}
	})
	t.Run("UpdateAndDelete", func(t *testing.T) {
		var out map[string]any
		e.must(200, "PATCH", "/admin/v1/identity-providers/github", e.adminToken, map[string]any{"enabled": false, "client_secret": "rotated"}, &out)
		if out["enabled"] != false {
			t.Fatalf("patch: %v", out)
		}
		e.must(204, "DELETE", "/admin/v1/identity-providers/"+google["id"].(string), e.adminToken, nil, nil)
		if st, _ := e.call("GET", "/admin/v1/identity-providers/google", e.adminToken, nil); st != http.StatusNotFound {
			t.Fatalf("after delete: %d", st)
		}
		var n int
		_ = e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE type LIKE 'provider.%'`).Scan(&n)
		if n != 5 {
			t.Fatalf("%d provider audit events, want 5 (3 created, 1 updated, 1 deleted)", n)
		}
	})
}
