package accounts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/internal/ratelimit"
)

// tokenVerifier is a function-field fake of authn.Verifier: the bearer token
// is the user id, with auth_time unknown; "<id>+recent" carries a login
// that just happened.
type tokenVerifier struct{}

func (tokenVerifier) VerifyAccessToken(_ context.Context, tok string) (*authn.Principal, error) {
	aud := []string{testAudience}
	if tok == "client" {
		return &authn.Principal{Subject: "svc", ClientID: "svc", Audience: aud, Scopes: []string{"account"}}, nil
	}
	var at time.Time
	if id, ok := strings.CutSuffix(tok, "+recent"); ok {
		tok, at = id, time.Now()
	}
	return &authn.Principal{Subject: tok, UserID: tok, ClientID: "first", Audience: aud, Scopes: []string{"profile", "account"}, AuthTime: at}, nil
}

// testAudience is the API audience every test token carries.
const testAudience = "https://authd.test"

// firstParty says every client is first party: these tests are about the
// handlers; the policies are tested against the real server.
type firstParty struct{}

func (firstParty) IsFirstParty(context.Context, string) (bool, error) { return true, nil }

var _ authn.Verifier = tokenVerifier{}

func MustAPI(t *testing.T, cfg accounts.Config, hcfg accounts.HandlerConfig) (*httptest.Server, *accounts.Service) {
	t.Helper()
	s, _ := MustServiceCfg(t, cfg)
	h := accounts.NewHandler(s, zap.NewNop(), hcfg)
	r := mux.NewRouter()
	api := authn.NewRouter(r.PathPrefix("/api/v1").Subrouter(),
		&authn.Guard{Verifier: tokenVerifier{}, Audience: testAudience, Clients: firstParty{}}, authn.NewTable())
	h.MountPublicAPI(api)
	h.MountUserAPI(api)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, s
}

func call(t *testing.T, method, url, bearer string, body any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestAPI_Register(t *testing.T) {
	srv, _ := MustAPI(t, accounts.Config{}, accounts.HandlerConfig{})
	resp, body := call(t, "POST", srv.URL+"/api/v1/register", "", map[string]string{"email": "Api@Example.com", "password": "tulip-garden-42", "name": "Api"})
	var u map[string]any
	_ = json.Unmarshal(body, &u)
	if resp.StatusCode != 201 || u["id"] == "" || u["email"] != "api@example.com" || u["email_verified"] != false {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, tc := range []struct {
		name   string
		body   map[string]string
		status int
		field  string
	}{
		{"ErrDuplicate", map[string]string{"email": "api@example.com", "password": "tulip-garden-42"}, 409, "email"},
		{"ErrCommonPassword", map[string]string{"email": "b@example.com", "password": "iloveyou123"}, 400, "password"},
		{"ErrEmail", map[string]string{"email": "b@", "password": "tulip-garden-42"}, 400, "email"},
		{"ErrUnknownField", map[string]string{"email": "b@example.com", "password": "tulip-garden-42", "admin": "true"}, 400, "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, "POST", srv.URL+"/api/v1/register", "", tc.body)
			var p map[string]any
			_ = json.Unmarshal(body, &p)
			if resp.StatusCode != tc.status || p["field"] != tc.field || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}
	t.Run("ErrClientCredentialsWithoutIssuer", func(t *testing.T) {
		resp, body := call(t, "POST", srv.URL+"/api/v1/register", "", map[string]string{"email": "c@example.com", "password": "tulip-garden-42", "client_id": "x"})
		if resp.StatusCode != 400 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestAPI_ForgotIsIdenticalForUnknownEmail(t *testing.T) {
	srv, s := MustAPI(t, accounts.Config{}, accounts.HandlerConfig{})
	if _, err := s.Register(context.Background(), accounts.Registration{Email: "known@example.com", Password: "tulip-garden-42"}); err != nil {
		t.Fatal(err)
	}
	r1, b1 := call(t, "POST", srv.URL+"/api/v1/password/forgot", "", map[string]string{"email": "known@example.com"})
	r2, b2 := call(t, "POST", srv.URL+"/api/v1/password/forgot", "", map[string]string{"email": "unknown@example.com"})
	if r1.StatusCode != 202 || r1.StatusCode != r2.StatusCode || !bytes.Equal(b1, b2) {
		t.Fatalf("known: %d %s; unknown: %d %s", r1.StatusCode, b1, r2.StatusCode, b2)
	}
	for _, h := range []string{"Content-Type", "Cache-Control"} {
		if r1.Header.Get(h) != r2.Header.Get(h) {
			t.Errorf("%s differs", h)
		}
	}
}

func TestAPI_RateLimited(t *testing.T) {
	lim := ratelimit.New(ratelimit.Config{Every: time.Hour, Burst: 2})
	srv, _ := MustAPI(t, accounts.Config{}, accounts.HandlerConfig{Limits: accounts.Limits{Forgot: lim}})
	for i := 0; i < 2; i++ {
		if resp, body := call(t, "POST", srv.URL+"/api/v1/password/forgot", "", map[string]string{"email": "x@example.com"}); resp.StatusCode != 202 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	resp, body := call(t, "POST", srv.URL+"/api/v1/password/forgot", "", map[string]string{"email": "x@example.com"})
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %s Retry-After=%q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
}

func TestAPI_Me(t *testing.T) {
	srv, s := MustAPI(t, accounts.Config{}, accounts.HandlerConfig{})
	ctx := context.Background()
	u, _ := s.Register(ctx, accounts.Registration{Email: "me@example.com", Password: "tulip-garden-42"})
	_, sess, _ := s.CreateSession(ctx, u.ID, "Firefox", "127.0.0.1")
	if resp, body := call(t, "GET", srv.URL+"/api/v1/me", "client", nil); resp.StatusCode != 403 {
		t.Fatalf("client-only token: %d %s", resp.StatusCode, body)
	}
	resp, body := call(t, "PATCH", srv.URL+"/api/v1/me", u.ID, map[string]string{"name": "Me Myself", "email": "me2@example.com", "current_password": "tulip-garden-42"})
	var got accounts.User
	_ = json.Unmarshal(body, &got)
	if resp.StatusCode != 200 || got.Name != "Me Myself" || got.Email != "me@example.com" || got.PendingEmail != "me2@example.com" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", srv.URL+"/api/v1/me/sessions", u.ID, nil)
	var list accounts.SessionList
	_ = json.Unmarshal(body, &list)
	if resp.StatusCode != 200 || len(list.Items) != 1 || list.Items[0].ID != sess.ID || list.Items[0].UserAgent != "Firefox" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "DELETE", srv.URL+"/api/v1/me/sessions/"+sess.ID, u.ID, nil); resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, _ := call(t, "DELETE", srv.URL+"/api/v1/me/sessions/"+sess.ID, u.ID, nil); resp.StatusCode != 404 {
		t.Fatalf("second delete: %d", resp.StatusCode)
	}
	resp, body = call(t, "POST", srv.URL+"/api/v1/me/password", u.ID, map[string]string{"current_password": "nope", "new_password": "meadow-lantern-7"})
	if resp.StatusCode != 400 || !bytes.Contains(body, []byte(`"current_password"`)) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", srv.URL+"/api/v1/me/password", u.ID, map[string]string{"current_password": "tulip-garden-42", "new_password": "meadow-lantern-7"}); resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
