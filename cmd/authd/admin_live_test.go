package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/authd/authd/accounts"
)

// accountPage is the status of GET /account with a browser session cookie:
// 200 while the session lives, a redirect to /login once it is dead.
func (e *adminEnv) accountPage(session string) int {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/account", nil)
	req.AddCookie(&http.Cookie{Name: "authd_session", Value: session})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *adminEnv) session(userID string) string {
	e.t.Helper()
	tok, _, err := e.accts.CreateSession(context.Background(), userID, "test browser", "127.0.0.1")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *adminEnv) passwordGrantStatus(email, password string) int {
	e.t.Helper()
	st, _ := e.tokenEndpoint("/oauth2/token", e.appID, e.appSecret,
		url.Values{"grant_type": {"password"}, "username": {email}, "password": {password}, "scope": {"openid"}})
	return st
}

func TestAdminAPI_LiveRoles(t *testing.T) {
	e := newAdminEnv(t)
	e.must(201, "POST", "/admin/v1/roles", e.adminToken, map[string]string{"name": "editor"}, nil)
	carol := e.mustUser("carol@example.com", userPass)
	at1, rt1 := e.passwordToken("carol@example.com", userPass, "openid roles offline_access")
	if r := rolesClaim(jwtClaims(t, at1)); !slices.Equal(r, []string{"user"}) {
		t.Fatalf("roles at login: %v", r)
	}

	t.Run("AddedRoleShowsAtNextRefreshAndIntrospection", func(t *testing.T) {
		e.must(200, "PUT", "/admin/v1/users/"+carol.ID+"/roles/editor", e.adminToken, nil, nil)
		// The token minted at login, before the change: introspection reads
		// roles live. (A refresh retires it, so ask first.)
		in := e.introspect(at1)
		if in["active"] != true || !slices.Contains(rolesClaim(in), "editor") {
			t.Fatalf("introspection of the login token: %v, want live roles with editor", in)
		}
		st, out := e.refresh(rt1)
		if st != http.StatusOK {
			t.Fatalf("refresh after adding a role: %d %v (adding must revoke nothing)", st, out)
		}
		at2, _ := out["access_token"].(string)
		if r := rolesClaim(jwtClaims(t, at2)); !slices.Contains(r, "editor") {
			t.Fatalf("refreshed access token roles %v, want editor", r)
		}
		if idt, _ := out["id_token"].(string); idt == "" || !slices.Contains(rolesClaim(jwtClaims(t, idt)), "editor") {
			t.Fatalf("refreshed ID token (scope roles) lacks editor: %q", idt)
		}
		rt1, at1 = out["refresh_token"].(string), at2
	})

	t.Run("RemovedRoleRevokesRefreshTokens", func(t *testing.T) {
		e.must(200, "DELETE", "/admin/v1/users/"+carol.ID+"/roles/editor", e.adminToken, nil, nil)
		if st, out := e.refresh(rt1); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("refresh after role removal: %d %v, want invalid_grant", st, out)
		}
		in := e.introspect(at1)
		if in["active"] == true && slices.Contains(rolesClaim(in), "editor") {
			t.Fatalf("introspection still shows editor: %v", in)
		}
		if st, _ := e.call("GET", "/api/v1/me", at1, nil); st != http.StatusUnauthorized {
			t.Fatalf("access token after role removal: %d, want 401", st)
		}
	})

	t.Run("RevokeSessionsFalseKeepsTokens", func(t *testing.T) {
		_, rt := e.passwordToken("carol@example.com", userPass, "openid roles offline_access")
		e.must(200, "PUT", "/admin/v1/users/"+carol.ID+"/roles/editor", e.adminToken, nil, nil)
		e.must(200, "DELETE", "/admin/v1/users/"+carol.ID+"/roles/editor?revoke_sessions=false", e.adminToken, nil, nil)
		st, out := e.refresh(rt)
		if st != http.StatusOK {
			t.Fatalf("refresh after removal with revoke_sessions=false: %d %v", st, out)
		}
		at, _ := out["access_token"].(string)
		if r := rolesClaim(jwtClaims(t, at)); slices.Contains(r, "editor") {
			t.Fatalf("roles after removal %v still hold editor", r)
		}
	})
}

func TestAdminAPI_DisableKillsSessionsAndTokens(t *testing.T) {
	e := newAdminEnv(t)
	dave := e.mustUser("dave@example.com", userPass)
	at, rt := e.passwordToken("dave@example.com", userPass, "openid offline_access")
	sess := e.session(dave.ID)
	if st := e.accountPage(sess); st != http.StatusOK {
		t.Fatalf("account page with a live session: %d", st)
	}

	e.must(200, "POST", "/admin/v1/users/"+dave.ID+"/disable", e.adminToken, nil, nil)
	if st := e.accountPage(sess); st != http.StatusSeeOther {
		t.Fatalf("session of a disabled user: %d, want a redirect to /login", st)
	}
	if st, out := e.refresh(rt); st != http.StatusBadRequest {
		t.Fatalf("refresh of a disabled user: %d %v", st, out)
	}
	if st, _ := e.call("GET", "/api/v1/me", at, nil); st != http.StatusUnauthorized {
		t.Fatalf("access token of a disabled user: %d", st)
	}
	if in := e.introspect(at); in["active"] != false {
		t.Fatalf("introspection of a disabled user's token: %v", in)
	}
	if st := e.passwordGrantStatus("dave@example.com", userPass); st != http.StatusBadRequest {
		t.Fatalf("login of a disabled user: %d", st)
	}

	// Enabling brings back the account, not what the disable revoked.
	e.must(200, "POST", "/admin/v1/users/"+dave.ID+"/enable", e.adminToken, nil, nil)
	if st := e.accountPage(sess); st != http.StatusSeeOther {
		t.Fatalf("revoked session after enable: %d", st)
	}
	if st, _ := e.refresh(rt); st != http.StatusBadRequest {
		t.Fatalf("revoked refresh token after enable: %d", st)
	}
	if st := e.passwordGrantStatus("dave@example.com", userPass); st != http.StatusOK {
		t.Fatalf("login after enable: %d", st)
	}

	t.Run("RevokeSessionsFalseSuspends", func(t *testing.T) {
		_, rt := e.passwordToken("dave@example.com", userPass, "openid offline_access")
		sess := e.session(dave.ID)
		e.must(200, "POST", "/admin/v1/users/"+dave.ID+"/disable?revoke_sessions=false", e.adminToken, nil, nil)
		if st := e.accountPage(sess); st != http.StatusSeeOther {
			t.Fatalf("session while disabled: %d", st)
		}
		if st, _ := e.refresh(rt); st != http.StatusBadRequest {
			t.Fatalf("refresh while disabled: %d", st)
		}
		e.must(200, "POST", "/admin/v1/users/"+dave.ID+"/enable", e.adminToken, nil, nil)
		if st := e.accountPage(sess); st != http.StatusOK {
			t.Fatalf("unrevoked session after enable: %d", st)
		}
	})
	st, b := e.call("POST", "/admin/v1/users/"+dave.ID+"/disable?revoke_sessions=maybe", e.adminToken, nil)
	wantProblem(t, "bad revoke_sessions", st, b, 400, "invalid_request")
}

func TestAdminAPI_DeleteUser(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()

	t.Run("WithoutLedgerHistoryDeleted", func(t *testing.T) {
		erin := e.mustUser("erin@example.com", userPass)
		_, rt := e.passwordToken("erin@example.com", userPass, "openid offline_access")
		sess := e.session(erin.ID)
		var res accounts.DeleteResult
		e.must(200, "DELETE", "/admin/v1/users/"+erin.ID, e.adminToken, nil, &res)
		if res.Outcome != accounts.OutcomeDeleted {
			t.Fatalf("outcome %q", res.Outcome)
		}
		st, b := e.call("GET", "/admin/v1/users/"+erin.ID, e.adminToken, nil)
		wantProblem(t, "deleted user", st, b, 404, "user_not_found")
		if st, _ := e.refresh(rt); st != http.StatusBadRequest {
			t.Fatalf("refresh of a deleted user: %d", st)
		}
		if st := e.accountPage(sess); st != http.StatusSeeOther {
			t.Fatalf("session of a deleted user: %d", st)
		}
		if n := e.count(`SELECT count(*) FROM ledger_accounts WHERE user_id = $1`, erin.ID); n != 0 {
			t.Fatalf("empty ledger account left behind: %d", n)
		}
	})

	t.Run("WithLedgerHistoryAnonymised", func(t *testing.T) {
		frank := e.mustUser("frank@example.com", userPass)
		e.must(201, "POST", "/admin/v1/users/"+frank.ID+"/credits/grant", e.adminToken,
			map[string]any{"amount": 10, "reference": "welcome"}, nil)
		_, rt := e.passwordToken("frank@example.com", userPass, "openid offline_access")
		var res accounts.DeleteResult
		e.must(200, "DELETE", "/admin/v1/users/"+frank.ID, e.adminToken, nil, &res)
		if res.Outcome != accounts.OutcomeAnonymised {
			t.Fatalf("outcome %q", res.Outcome)
		}
		var u accounts.User
		e.must(200, "GET", "/admin/v1/users/"+frank.ID, e.adminToken, nil, &u)
		if u.Email != "deleted-"+frank.ID+"@deleted.invalid" || u.Name != "" || !u.Disabled || len(u.Roles) != 0 {
			t.Fatalf("anonymised user: %+v", u)
		}
		if st, _ := e.refresh(rt); st != http.StatusBadRequest {
			t.Fatalf("refresh of a deleted user: %d", st)
		}
		if st := e.passwordGrantStatus("frank@example.com", userPass); st != http.StatusBadRequest {
			t.Fatalf("login of a deleted user: %d", st)
		}
		var bal struct{ Balance int64 }
		e.must(200, "GET", "/admin/v1/users/"+frank.ID+"/credits", e.adminToken, nil, &bal)
		if bal.Balance != 10 {
			t.Fatalf("ledger balance after anonymisation: %d", bal.Balance)
		}
		var rep struct{ OK bool }
		e.must(200, "GET", "/admin/v1/ledger/verify", e.adminToken, nil, &rep)
		if !rep.OK {
			t.Fatal("ledger verification fails after anonymisation")
		}
		// The address is free again.
		if _, err := e.accts.CreateUser(ctx, accounts.NewUser{Email: "frank@example.com", Password: userPass}, nil); err != nil {
			t.Fatalf("re-register the freed email: %v", err)
		}
	})
	st, b := e.call("DELETE", "/admin/v1/users/00000000-0000-0000-0000-000000000000", e.adminToken, nil)
	wantProblem(t, "unknown user", st, b, 404, "user_not_found")
}
