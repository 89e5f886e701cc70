package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/internal/authn"
	"github.com/authd/authd/oauth/clients"
)

func authURL(e *env, params url.Values) string {
	base := url.Values{"response_type": {"code"}, "redirect_uri": {redirectURI}, "scope": {"openid"},
		"state": {randString()}}
	for k, v := range params {
		base[k] = v
	}
	return e.issuer + "/oauth2/auth?" + base.Encode()
}

func TestAuthorize_Errors(t *testing.T) {
	e := newEnv(t)
	web, _ := e.webClient()
	spa, _ := e.mustClient(clients.Spec{Name: "SPA", Public: true, RedirectURIs: []string{redirectURI},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline_access"}})
	_, challenge := pkce()

	t.Run("ErrWrongRedirectURI", func(t *testing.T) {
		resp, body := e.browser().get(authURL(e, url.Values{"client_id": {web.ID}, "redirect_uri": {"http://127.0.0.1:9/evil"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(body, "invalid_request") {
			t.Errorf("%d Location=%q %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})
	t.Run("ErrMissingPKCEPublicClient", func(t *testing.T) {
		resp, body := e.browser().get(authURL(e, url.Values{"client_id": {spa.ID}}))
		q := redirectQuery(t, resp, body)
		if q.Get("error") != "invalid_request" || q.Get("iss") != e.issuer {
			t.Errorf("%v", q)
		}
	})
	t.Run("ErrPlainPKCEPublicClient", func(t *testing.T) {
		resp, body := e.browser().get(authURL(e, url.Values{"client_id": {spa.ID}, "code_challenge": {strings.Repeat("a", 43)},
			"code_challenge_method": {"plain"}}))
		if q := redirectQuery(t, resp, body); q.Get("error") != "invalid_request" {
			t.Errorf("%v", q)
		}
	})
	t.Run("ErrMissingState", func(t *testing.T) {
		u := authURL(e, url.Values{"client_id": {web.ID}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}})
		u = strings.Replace(u, "state=", "x=", 1)
		resp, body := e.browser().get(u)
		if q := redirectQuery(t, resp, body); q.Get("error") != "invalid_state" {
			t.Errorf("%v", q)
		}
	})
	t.Run("ErrPromptNoneWithoutSession", func(t *testing.T) {
		resp, body := e.browser().get(authURL(e, url.Values{"client_id": {web.ID}, "prompt": {"none"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		if q := redirectQuery(t, resp, body); q.Get("error") != "login_required" {
			t.Errorf("%v", q)
		}
	})
	t.Run("ErrConsentDenied", func(t *testing.T) {
		b := e.browser()
		_, page := b.get(authURL(e, url.Values{"client_id": {web.ID}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		_, page = b.login(e.issuer, page, userEmail, userPassword)
		resp, body := b.consent(e.issuer, page, "deny")
		if q := redirectQuery(t, resp, body); q.Get("error") != "access_denied" || q.Get("iss") != e.issuer {
			t.Errorf("%v", q)
		}
	})
	t.Run("ErrBadPassword", func(t *testing.T) {
		b := e.browser()
		_, page := b.get(authURL(e, url.Values{"client_id": {web.ID}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		resp, body := b.login(e.issuer, page, userEmail, "wrong")
		resp2, body2 := b.login(e.issuer, page, "nobody@example.com", "wrong")
		if resp.StatusCode != 401 || resp2.StatusCode != 401 || !strings.Contains(body, "Incorrect email or password") ||
			!strings.Contains(body2, "Incorrect email or password") {
			t.Errorf("%d %d", resp.StatusCode, resp2.StatusCode)
		}
	})
	t.Run("ErrLoginWithoutCSRF", func(t *testing.T) {
		resp, _ := e.browser().post(e.issuer+"/login", url.Values{"email": {userEmail}, "password": {userPassword}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%d", resp.StatusCode)
		}
	})
	t.Run("OpenRedirectRefused", func(t *testing.T) {
		for _, rt := range []string{"https://evil.example/", "//evil.example/oauth2/auth", "/\\evil.example", "/account/../oauth2/authx"} {
			b := e.browser()
			_, page := b.get(e.issuer + "/login?return_to=" + url.QueryEscape(rt))
			resp, _ := b.login(e.issuer, page, userEmail, userPassword)
			if u := resp.Request.URL; u.Host != strings.TrimPrefix(e.issuer, "http://") || u.Path != "/account" {
				t.Errorf("return_to %q -> %s", rt, u)
			}
		}
	})
}

func TestToken_CodeErrors(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()

	t.Run("ErrReusedCodeRevokesTokens", func(t *testing.T) {
		verifier, challenge := pkce()
		q := e.authorize(e.browser(), authURL(e, url.Values{"client_id": {web.ID}, "scope": {"openid offline_access"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
		st, first := e.tokenRequest(web.ID, secret, form)
		if st != 200 {
			t.Fatalf("%d %v", st, first)
		}
		st, second := e.tokenRequest(web.ID, secret, form)
		if st != 400 || second["error"] != "invalid_grant" {
			t.Errorf("second use: %d %v", st, second)
		}
		for _, k := range []string{"access_token", "refresh_token"} {
			if in := e.introspect(web.ID, secret, first[k].(string)); in["active"] != false {
				t.Errorf("%s of the first exchange survived code reuse", k)
			}
		}
	})
	t.Run("ErrWrongVerifier", func(t *testing.T) {
		_, challenge := pkce()
		q := e.authorize(e.browser(), authURL(e, url.Values{"client_id": {web.ID}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {strings.Repeat("x", 43)}}
		if st, out := e.tokenRequest(web.ID, secret, form); st != 400 || out["error"] != "invalid_grant" {
			t.Errorf("%d %v", st, out)
		}
		// No downgrade: retrying without a verifier fails too.
		form.Del("code_verifier")
		if st, out := e.tokenRequest(web.ID, secret, form); st != 400 {
			t.Errorf("retry without verifier: %d %v", st, out)
		}
	})
	t.Run("ErrExpiredCode", func(t *testing.T) {
		verifier, challenge := pkce()
		q := e.authorize(e.browser(), authURL(e, url.Values{"client_id": {web.ID}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		// Expiry lives in the stored session; age it instead of sleeping.
		if _, err := e.db.Pool.Exec(context.Background(), `UPDATE oauth2_code SET session_data =
			jsonb_set(session_data, '{id_token,expires_at,authorize_code}', '"2001-01-01T00:00:00Z"')`); err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
		if st, out := e.tokenRequest(web.ID, secret, form); st != 400 || out["error"] != "invalid_grant" {
			t.Errorf("%d %v", st, out)
		}
	})
	t.Run("ErrWrongClientSecret", func(t *testing.T) {
		verifier, challenge := pkce()
		q := e.authorize(e.browser(), authURL(e, url.Values{"client_id": {web.ID}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
		if st, out := e.tokenRequest(web.ID, secret+"x", form); st != 401 || out["error"] != "invalid_client" {
			t.Errorf("%d %v", st, out)
		}
		// The code is still good for the real client.
		if st, out := e.tokenRequest(web.ID, secret, form); st != 200 {
			t.Errorf("after a failed attempt: %d %v", st, out)
		}
	})
	t.Run("ErrPasswordGrantThirdParty", func(t *testing.T) {
		st, out := e.tokenRequest(web.ID, secret, url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {userPassword}})
		if st != 400 || (out["error"] != "unauthorized_client" && out["error"] != "invalid_grant") {
			t.Errorf("%d %v", st, out)
		}
	})
}

func TestPasswordGrant_FirstParty(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "x", GrantTypes: []string{"password"}}); err == nil {
		t.Fatal("third-party password client accepted")
	}
	c, secret := e.mustClient(clients.Spec{FirstParty: true, GrantTypes: []string{"password", "refresh_token"},
		Scopes: []string{"openid", "offline_access"}})
	st, out := e.tokenRequest(c.ID, secret, url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {"nope"}})
	if st != 400 || out["error"] != "invalid_grant" {
		t.Errorf("bad password: %d %v", st, out)
	}
	st, out = e.tokenRequest(c.ID, secret, url.Values{"grant_type": {"password"}, "username": {userEmail}, "password": {userPassword}, "scope": {"offline_access"}})
	if st != 200 {
		t.Fatalf("%d %v", st, out)
	}
	if at := verifyWithJWKS(t, e, out["access_token"].(string)); at["sub"] != e.userID {
		t.Errorf("%v", at)
	}
}

// TestVerifyAccessToken_Rejects covers the bearer check of authd's own APIs
// and introspection for tokens that are not ours.
func TestVerifyAccessToken_Rejects(t *testing.T) {
	e := newEnv(t)
	web, secret := e.webClient()
	foreign := foreignToken(t, e)
	if _, err := e.prov.VerifyAccessToken(context.Background(), foreign); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("unknown key: %v", err)
	}
	if in := e.introspect(web.ID, secret, foreign); in["active"] != false {
		t.Errorf("introspection of a foreign token: %v", in)
	}
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+foreign)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("userinfo with foreign token: %d", resp.StatusCode)
	}
	for _, bad := range []string{"", "x.y.z", unsignedAssertion("a", e.issuer)} {
		if _, err := e.prov.VerifyAccessToken(context.Background(), bad); !errors.Is(err, authn.ErrInvalidToken) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Disabling the user kills their tokens at once (roles read live).
	tok := e.codeFlow(web.ID, secret, "openid")
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE users SET disabled = true WHERE id = $1`, e.userID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.prov.VerifyAccessToken(context.Background(), tok["access_token"].(string)); !errors.Is(err, authn.ErrInvalidToken) {
		t.Errorf("disabled user: %v", err)
	}
}
