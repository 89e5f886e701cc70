package oauth_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/authd/authd/oauth/clients"
)

// TestToken_PasswordGrantIsAuditedAsLogin: a password-grant login writes
// the same user.login event as the hosted form: the user's on success, an
// anonymous failure for a wrong password.
func TestToken_PasswordGrantIsAuditedAsLogin(t *testing.T) {
	e := newEnv(t)
	c, secret := e.mustClient(clients.Spec{FirstParty: true, GrantTypes: []string{"password", "refresh_token"},
		Scopes: []string{"openid", "offline_access"}})
	type event struct {
		actorType, actorID, outcome, grant string
	}
	events := func() []event {
		t.Helper()
		rows, err := e.db.Pool.Query(context.Background(), `SELECT actor_type, actor_id, outcome, coalesce(details->>'grant_type', '')
			FROM audit_events WHERE type = 'user.login' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []event
		for rows.Next() {
			var ev event
			if err := rows.Scan(&ev.actorType, &ev.actorID, &ev.outcome, &ev.grant); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}

	st, out := e.tokenRequest(c.ID, secret, url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {"wrong password"}})
	if st != 400 || out["error"] != "invalid_grant" {
		t.Fatalf("wrong password: %d %v", st, out)
	}
	st, out = e.tokenRequest(c.ID, secret, url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {userPassword}, "scope": {"openid"}})
	if st != 200 {
		t.Fatalf("login: %d %v", st, out)
	}
	want := []event{{"anonymous", "", "failure", "password"}, {"user", e.userID, "success", "password"}}
	got := events()
	if len(got) != len(want) {
		t.Fatalf("user.login events = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
