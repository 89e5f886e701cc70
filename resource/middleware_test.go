package resource_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/resource"
)

func TestVerifier_Require(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	c := testkit.NewClock(time.Now())
	v := mustVerifier(t, f, c, func(cfg *resource.Config) { cfg.Realm = "notes" })
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl := resource.ClaimsFrom(r.Context())
		fmt.Fprintf(w, "%s %s", cl.Subject, strings.Join(cl.Roles, ","))
	})
	read := v.Require(v.RequireScope("notes:read")(ok))
	write := v.Require(v.RequireRole("editor", "admin")(ok))
	admin := v.Require(v.RequireRole("admin")(ok))
	wide := v.Require(v.RequireScope("notes:read", "notes:write")(ok))
	good := sign(t, key, "at+jwt", f.claims(c.Now()))
	expiredClaims := f.claims(c.Now())
	expiredClaims["exp"] = c.Now().Add(-time.Hour).Unix()
	expired := sign(t, key, "at+jwt", expiredClaims)

	tests := []struct {
		name    string
		h       http.Handler
		auth    string
		status  int
		wwwAuth string
	}{
		{"OK_Scope", read, "Bearer " + good, 200, ""},
		{"OK_Role", write, "Bearer " + good, 200, ""},
		{"OK_SchemeCaseInsensitive", read, "bearer " + good, 200, ""},
		{"ErrNoToken", read, "", 401, `Bearer realm="notes"`},
		{"ErrBasicAuth", read, "Basic dXNlcjpwYXNz", 401, `Bearer realm="notes"`},
		{"ErrExpired", read, "Bearer " + expired, 401,
			`Bearer realm="notes", error="invalid_token", error_description="the access token is invalid, expired or revoked"`},
		{"ErrMissingScope", wide, "Bearer " + good, 403,
			`Bearer realm="notes", error="insufficient_scope", error_description="the access token lacks scope \"notes:write\"", scope="notes:read notes:write"`},
		{"ErrMissingRole", admin, "Bearer " + good, 403,
			`Bearer realm="notes", error="insufficient_scope", error_description="the user needs role admin"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/notes", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wwwAuth {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tt.wwwAuth)
			}
			if tt.status == 200 {
				if rec.Body.String() != "user-1 user,editor" {
					t.Errorf("body %q", rec.Body)
				}
				return
			}
			var p map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Header().Get("Content-Type") != "application/problem+json" ||
				p["status"] != float64(tt.status) {
				t.Errorf("problem body %s (%v)", rec.Body, err)
			}
		})
	}
}

func TestVerifier_RequireUnavailable(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	f.srv.Close()
	v := mustVerifier(t, f, testkit.NewClock(time.Now()), nil)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+sign(t, key, "at+jwt", f.claims(time.Now())))
	rec := httptest.NewRecorder()
	v.Require(http.NotFoundHandler()).ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("status %d, WWW-Authenticate %q", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}
