package resource_test

import (
	"github.com/authd/authd/internal/testkit"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authd/authd/resource"
)

func TestVerifier_RequireAuthentication(t *testing.T) {
	f := newFakeIssuer(t)
	key := newECKey(t, "k1")
	f.publish(key)
	c := testkit.NewClock(time.Now())
	v := mustVerifier(t, f, c, func(cfg *resource.Config) { cfg.Realm = "notes" })
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mfa := v.Require(v.RequireAuthentication(resource.StepUp{ACRValues: []string{"urn:authd:acr:mfa"}})(ok))
	fresh := v.Require(v.RequireAuthentication(resource.StepUp{ACRValues: []string{"urn:authd:acr:mfa"}, MaxAge: 5 * time.Minute})(ok))
	token := func(acr string, authAge time.Duration) string {
		cl := f.claims(c.Now())
		if acr != "" {
			cl["acr"] = acr
		}
		cl["auth_time"] = c.Now().Add(-authAge).Unix()
		return sign(t, key, "at+jwt", cl)
	}
	tests := []struct {
		name    string
		h       http.Handler
		token   string
		status  int
		wwwAuth string
	}{
		{"OK_MFA", mfa, token("urn:authd:acr:mfa", time.Hour), 204, ""},
		{"OK_MFARecent", fresh, token("urn:authd:acr:mfa", time.Minute), 204, ""},
		{"ErrPasswordOnly", mfa, token("urn:authd:acr:pwd", time.Minute), 401,
			`Bearer realm="notes", error="insufficient_user_authentication", error_description="a stronger or more recent login is required", acr_values="urn:authd:acr:mfa"`},
		{"ErrNoACR", mfa, token("", time.Minute), 401,
			`Bearer realm="notes", error="insufficient_user_authentication", error_description="a stronger or more recent login is required", acr_values="urn:authd:acr:mfa"`},
		{"ErrTooOld", fresh, token("urn:authd:acr:mfa", time.Hour), 401,
			`Bearer realm="notes", error="insufficient_user_authentication", error_description="a stronger or more recent login is required", acr_values="urn:authd:acr:mfa", max_age=300`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/notes", nil)
			req.Header.Set("Authorization", "Bearer "+tt.token)
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("WWW-Authenticate") != tt.wwwAuth {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"), tt.status, tt.wwwAuth)
			}
			if tt.status == 401 && rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}
