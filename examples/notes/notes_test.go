package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

const editorPass = "correct horse battery staple"

// TestNotes_AgainstRealAuthd runs the example service against the real
// authd binary: allowed, forbidden (scope and role), and out of credits.
func TestNotes_AgainstRealAuthd(t *testing.T) {
	a := startAuthd(t)
	// An operator's client for the admin API creates the role.
	adm := a.CLI("", "client", "create", "--name", "Ops", "--grant-type", "client_credentials", "--scope", "admin")
	admTok := a.Token(adm["client_id"].(string), adm["client_secret"].(string), url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
	if st, _, out := do(t, "POST", a.URL+"/admin/v1/roles", admTok, map[string]string{"name": "editor", "description": "writes notes"}); st != 201 {
		t.Fatalf("create role: %d %v", st, out)
	}
	editor := a.CLI(editorPass+"\n", "user", "create", "--email", "ed@example.com", "--password-stdin", "--role", "editor", "--verified")["id"].(string)
	rita := a.CLI(editorPass+"\n", "user", "create", "--email", "rita@example.com", "--password-stdin", "--verified")["id"].(string)

	// The service's address is needed to register the app's back-channel
	// logout URI; the handler comes after the clients.
	var handler http.Handler
	notes := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(notes.Close)

	app := a.CLI("", "client", "create", "--name", "Notes app", "--first-party", "--grant-type", "password",
		"--audience", "urn:authd:notes", "--scope", "openid notes:read", "--backchannel-logout-uri", notes.URL+"/backchannel-logout")
	appID, appSecret := app["client_id"].(string), app["client_secret"].(string)
	if app["backchannel_logout_uri"] != notes.URL+"/backchannel-logout" {
		t.Fatalf("client create: %v", app)
	}
	svc := a.CLI("", "client", "create", "--name", "Notes service", "--grant-type", "client_credentials", "--scope", "credits:charge")
	svcID, svcSecret := svc["client_id"].(string), svc["client_secret"].(string)

	// The operator's billing side (its own client, scope credits:grant)
	// mints the editor one credit; the notes service can only charge.
	billing := a.CLI("", "client", "create", "--name", "Billing", "--grant-type", "client_credentials", "--scope", "credits:grant")
	billTok := a.Token(billing["client_id"].(string), billing["client_secret"].(string), url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:grant"}})
	if st, _, out := do(t, "POST", a.URL+"/api/v1/users/"+editor+"/credits/grant", billTok,
		map[string]any{"amount": 1, "reference": "welcome", "description": "welcome credit"}); st != 201 {
		t.Fatalf("grant: %d %v", st, out)
	}

	s, err := New(Config{Issuer: a.URL, ClientID: svcID, ClientSecret: svcSecret, AppClientID: appID})
	if err != nil {
		t.Fatal(err)
	}
	handler = s

	userToken := func(email, scope string) string {
		return a.Token(appID, appSecret, url.Values{"grant_type": {"password"}, "username": {email},
			"password": {editorPass}, "scope": {scope}, "audience": {"urn:authd:notes"}})
	}
	edTok := userToken("ed@example.com", "notes:read")
	chargeTok := a.Token(svcID, svcSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}})
	ritaTok := userToken("rita@example.com", "notes:read")

	t.Run("OK_Read", func(t *testing.T) {
		if st, _, out := do(t, "GET", notes.URL+"/notes", ritaTok, nil); st != 200 || out["items"] == nil {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		if st, h, _ := do(t, "GET", notes.URL+"/notes", "", nil); st != 401 || h.Get("WWW-Authenticate") != `Bearer realm="notes"` {
			t.Fatalf("%d %v", st, h)
		}
	})
	t.Run("ErrReadWithoutScope", func(t *testing.T) {
		tok := userToken("ed@example.com", "openid")
		st, h, _ := do(t, "GET", notes.URL+"/notes", tok, nil)
		want := `Bearer realm="notes", error="insufficient_scope", error_description="the access token lacks scope \"notes:read\"", scope="notes:read"`
		if st != 403 || h.Get("WWW-Authenticate") != want {
			t.Fatalf("%d %s", st, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("ErrWriteWithoutRole", func(t *testing.T) {
		st, h, _ := do(t, "POST", notes.URL+"/notes", ritaTok, map[string]string{"text": "hi"})
		if st != 403 || h.Get("WWW-Authenticate") != `Bearer realm="notes", error="insufficient_scope", error_description="the user needs role editor"` {
			t.Fatalf("%d %s", st, h.Get("WWW-Authenticate"))
		}
	})
	t.Run("OK_WriteCostsOneCredit", func(t *testing.T) {
		st, _, n := do(t, "POST", notes.URL+"/notes", edTok, map[string]string{"text": "first"}, "Idempotency-Key", "k1")
		if st != 201 || n["author"] != editor {
			t.Fatalf("%d %v", st, n)
		}
		// A retry is neither stored nor charged twice.
		st, _, again := do(t, "POST", notes.URL+"/notes", edTok, map[string]string{"text": "first"}, "Idempotency-Key", "k1")
		if st != 200 || again["id"] != n["id"] {
			t.Fatalf("retry: %d %v", st, again)
		}
		if st, _, out := do(t, "GET", a.URL+"/api/v1/users/"+editor+"/credits", chargeTok, nil); st != 200 || out["balance"] != float64(0) {
			t.Fatalf("balance after one note: %d %v", st, out)
		}
	})
	t.Run("ErrOutOfCredits", func(t *testing.T) {
		st, _, out := do(t, "POST", notes.URL+"/notes", edTok, map[string]string{"text": "second"}, "Idempotency-Key", "k2")
		if st != http.StatusPaymentRequired || out["type"] != "urn:notes:problem:insufficient_credits" {
			t.Fatalf("%d %v", st, out)
		}
		if _, _, list := do(t, "GET", notes.URL+"/notes", edTok, nil); len(list["items"].([]any)) != 1 {
			t.Fatalf("a refused note was stored: %v", list)
		}
	})
	t.Run("ErrTokenForAnotherAudience", func(t *testing.T) {
		tok := a.Token(appID, appSecret, url.Values{"grant_type": {"password"}, "username": {"ed@example.com"},
			"password": {editorPass}, "scope": {"notes:read"}})
		if st, _, _ := do(t, "GET", notes.URL+"/notes", tok, nil); st != 401 {
			t.Fatalf("%d", st)
		}
	})
	// Last: it disables Rita. Her token is still within its lifetime, but
	// authd's logout token reaches the service and ends it there.
	t.Run("OK_BackchannelLogoutEndsTokens", func(t *testing.T) {
		if st, _, out := do(t, "POST", a.URL+"/admin/v1/users/"+rita+"/disable?revoke_sessions=false", admTok, nil); st != 200 {
			t.Fatalf("disable: %d %v", st, out)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, _, out := do(t, "GET", notes.URL+"/notes", ritaTok, nil)
			if st == 401 && out["type"] == "urn:notes:problem:logged_out" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the logout never reached the service: %d %v", st, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st, _, _ := do(t, "GET", notes.URL+"/notes", edTok, nil); st != 200 {
			t.Errorf("another user's token: %d", st)
		}
	})
}
