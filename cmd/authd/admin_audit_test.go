package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/accounts"
)

// auditRow is an audit_events row as stored.
type auditRow struct {
	Type, ActorType, ActorID, TargetType, TargetID, Outcome, RequestID, IP, Details string
}

func (e *adminEnv) lastAuditID() int64 {
	e.t.Helper()
	var id int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM audit_events`).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *adminEnv) auditSince(id int64) []auditRow {
	e.t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT type, actor_type, actor_id, target_type, target_id, outcome,
		request_id, ip, details::text FROM audit_events WHERE id > $1 ORDER BY id`, id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.Type, &r.ActorType, &r.ActorID, &r.TargetType, &r.TargetID, &r.Outcome, &r.RequestID, &r.IP, &r.Details); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestAdminAPI_AuditTrail(t *testing.T) {
	e := newAdminEnv(t)
	tok := e.adminToken
	victim := e.mustUser("victim@example.com", userPass)
	var secrets []string // everything that must never reach the audit log
	secrets = append(secrets, adminPass, userPass, tok, e.appSecret)

	var client adminClient
	var rotated struct {
		ClientSecret string `json:"client_secret"`
	}
	type step struct {
		name                       string
		do                         func()
		typ, targetType, targetID  string
		wantDetail, unwantedDetail string
	}
	steps := []step{
		{"create role", func() { e.must(201, "POST", "/admin/v1/roles", tok, map[string]string{"name": "editor"}, nil) },
			"role.created", "role", "editor", "", ""},
		{"add role", func() { e.must(200, "PUT", "/admin/v1/users/"+victim.ID+"/roles/editor", tok, nil, nil) },
			"user.role_added", "user", victim.ID, `"role": "editor"`, ""},
		{"remove role", func() { e.must(200, "DELETE", "/admin/v1/users/"+victim.ID+"/roles/editor", tok, nil, nil) },
			"user.role_removed", "user", victim.ID, `"role": "editor"`, ""},
		{"delete role", func() { e.must(204, "DELETE", "/admin/v1/roles/editor", tok, nil, nil) },
			"role.deleted", "role", "editor", "", ""},
		{"disable user", func() { e.must(200, "POST", "/admin/v1/users/"+victim.ID+"/disable", tok, nil, nil) },
			"user.disabled", "user", victim.ID, `"revoke_sessions": true`, ""},
		{"enable user", func() { e.must(200, "POST", "/admin/v1/users/"+victim.ID+"/enable", tok, nil, nil) },
			"user.enabled", "user", victim.ID, "", ""},
		{"create client", func() {
			e.must(201, "POST", "/admin/v1/clients", tok, map[string]any{"client_id": "svc", "name": "Service",
				"grant_types": []string{"client_credentials"}, "scopes": []string{"introspect"}}, &client)
			secrets = append(secrets, client.ClientSecret)
		}, "client.created", "client", "svc", `"name": "Service"`, "secret_hash"},
		{"update client", func() {
			e.must(200, "PATCH", "/admin/v1/clients/svc", tok, map[string]any{"scopes": []string{"introspect", "credits:read"}}, nil)
		}, "client.updated", "client", "svc", `"changed": ["scopes"]`, ""},
		{"rotate client secret", func() {
			e.must(200, "POST", "/admin/v1/clients/svc/secret", tok, nil, &rotated)
			secrets = append(secrets, rotated.ClientSecret)
		}, "client.secret_rotated", "client", "svc", "", ""},
		{"delete client", func() { e.must(204, "DELETE", "/admin/v1/clients/svc", tok, nil, nil) },
			"client.deleted", "client", "svc", "", ""},
		{"rotate keys", func() { e.must(200, "POST", "/admin/v1/keys/rotate", tok, nil, nil) },
			"keys.rotated", "signing_keys", "", "", ""},
		{"delete user", func() { e.must(200, "DELETE", "/admin/v1/users/"+victim.ID, tok, nil, nil) },
			"user.deleted", "user", victim.ID, `"outcome": "deleted"`, ""},
	}
	for _, s := range steps {
		before := e.lastAuditID()
		s.do()
		got := e.auditSince(before)
		if len(got) != 1 {
			t.Fatalf("%s: %d audit events, want exactly 1: %+v", s.name, len(got), got)
		}
		ev := got[0]
		if ev.Type != s.typ || ev.ActorType != "admin" || ev.ActorID != e.adminID || ev.TargetType != s.targetType ||
			ev.TargetID != s.targetID || ev.Outcome != "success" || ev.RequestID == "" || ev.IP != "127.0.0.1" {
			t.Fatalf("%s: event %+v, want %s by admin %s on %s %q", s.name, ev, s.typ, e.adminID, s.targetType, s.targetID)
		}
		if !strings.Contains(ev.Details, s.wantDetail) || (s.unwantedDetail != "" && strings.Contains(ev.Details, s.unwantedDetail)) {
			t.Fatalf("%s: details %s", s.name, ev.Details)
		}
	}

	t.Run("ReadsAndRefusedChangesRecordNothing", func(t *testing.T) {
		before := e.lastAuditID()
		e.must(200, "GET", "/admin/v1/users", tok, nil, nil)
		e.must(200, "GET", "/admin/v1/clients", tok, nil, nil)
		e.must(200, "GET", "/admin/v1/audit", tok, nil, nil)
		st, b := e.call("DELETE", "/admin/v1/roles/admin", tok, nil)
		wantProblem(t, "built-in role", st, b, 409, "role_builtin")
		st, b = e.call("PUT", "/admin/v1/users/"+e.adminID+"/roles/ghost", tok, nil)
		wantProblem(t, "unknown role", st, b, 404, "role_not_found")
		if got := e.auditSince(before); len(got) != 0 {
			t.Fatalf("reads and refusals wrote %+v", got)
		}
	})

	t.Run("NoSecretsInTheAuditLog", func(t *testing.T) {
		var all string
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(a::text, E'\n'), '') FROM audit_events a`).Scan(&all); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if s == "" {
				t.Fatal("a secret of the scenario is empty; the check would be vacuous")
			}
			if strings.Contains(all, s) {
				t.Fatalf("the audit log contains a secret (%d chars)", len(s))
			}
		}
	})

	t.Run("ListingFiltersAndPages", func(t *testing.T) {
		var page accounts.AuditPage
		e.must(200, "GET", "/admin/v1/audit?type=user.role_added&actor="+e.adminID, tok, nil, &page)
		if len(page.Items) != 1 || page.Items[0].TargetID != victim.ID {
			t.Fatalf("filter by type and actor: %+v", page.Items)
		}
		e.must(200, "GET", "/admin/v1/audit?target=svc", tok, nil, &page)
		if len(page.Items) != 4 || page.Items[0].Type != "client.deleted" || page.Items[3].Type != "client.created" {
			t.Fatalf("filter by target, newest first: %+v", page.Items)
		}
		seen := 0
		path := "/admin/v1/audit?actor=" + e.adminID + "&limit=5"
		for range 10 {
			e.must(200, "GET", path, tok, nil, &page)
			seen += len(page.Items)
			if page.NextCursor == nil {
				break
			}
			path = "/admin/v1/audit?actor=" + e.adminID + "&limit=5&cursor=" + url.QueryEscape(*page.NextCursor)
		}
		// The steps, and the admin's password-grant login that got tok.
		if seen != len(steps)+1 {
			t.Fatalf("paged through %d of the admin's events, want %d", seen, len(steps)+1)
		}
		st, b := e.call("GET", "/admin/v1/audit?cursor=xyz", tok, nil)
		wantProblem(t, "bad cursor", st, b, 400, "invalid_request")
	})
}
