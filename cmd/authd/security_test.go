package main

// OAuth security checklist, part 1: the authorization-code flow. Each test
// is named after the RFC 9700 (OAuth 2.0 Security BCP) section, or the RFC /
// OIDC requirement, it checks, and runs against the assembled application
// (buildApp on loopback HTTP). Unit-level versions of several live in
// oauth/negative_test.go, oauth/refresh_test.go and
// storage/fositestore/fosite_test.go; these prove the wiring keeps them.
// The other parts: security_tokens_test.go, security_jwt_test.go,
// security_browser_test.go.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/oauth/clients"
)

// noFollow is a client that returns every redirect to the test.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func getNoFollow(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := noFollow.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

// RFC 9700 §4.1 (insufficient redirect URI validation) and §4.11.2 (the
// authorization server as open redirector): redirect URIs match exactly, a
// bad one is never redirected to, and no endpoint redirects off-site.
func TestRFC9700_4_1_RedirectURIExactMatching(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	const registered = "https://app.example.com/cb"
	id, _ := e.mustClient(clients.Spec{RedirectURIs: []string{registered}, Scopes: []string{"openid"}})
	_, challenge := secPKCE()
	for _, bad := range []string{
		"https://app.example.com/cb/evil", "https://app.example.com/cbx", "https://app.example.com/cb?x=1",
		"https://app.example.com/cb#x", "https://app.example.com/CB", "https://APP.example.com/cb",
		"https://app.example.com:444/cb", "http://app.example.com/cb", "https://app.example.com.evil.example/cb",
		"https://app.example.com@evil.example/cb", "https://evil.example/cb", "//evil.example/cb",
		"https://app.example.com/cb/../evil", "https://app.example.com/%63b", "javascript:alert(1)",
		"data:text/html,<script>alert(1)</script>", "https://app.example.com/cb\r\nLocation: https://evil.example",
	} {
		t.Run(bad, func(t *testing.T) {
			resp, body := getNoFollow(t, secAuthURL(e.URL, id, challenge, url.Values{"redirect_uri": {bad}}))
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Fatalf("redirected to %q for redirect_uri %q", loc, bad)
			}
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Fatalf("status %d for redirect_uri %q: %s", resp.StatusCode, bad, body)
			}
		})
	}
	t.Run("RegisteredURIStillRedirects", func(t *testing.T) {
		// A sanity check that the refusals above were about the URI: the
		// exact URI with an unsupported scope is redirected with the error.
		resp, _ := getNoFollow(t, secAuthURL(e.URL, id, challenge, url.Values{"redirect_uri": {registered}, "scope": {"openid admin"}}))
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, registered+"?") || !strings.Contains(loc, "error=") {
			t.Fatalf("status %d Location %q", resp.StatusCode, loc)
		}
	})
	t.Run("RegistrationRefusesDangerousURIs", func(t *testing.T) {
		for _, u := range []string{"javascript:alert(1)", "data:text/html,x", "https://app.example.com/cb#frag", "http://app.example.com/cb", "/relative"} {
			if _, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "x", RedirectURIs: []string{u}}); err == nil {
				t.Errorf("client registered with redirect URI %q", u)
			}
		}
	})
	t.Run("LoginReturnToIsNoOpenRedirect", func(t *testing.T) {
		e.mustUser("redirect@example.com")
		for _, target := range []string{"https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)", "/oauth2/auth/../../evil"} {
			b := e.browser()
			_, page := b.get(e.URL + "/login?return_to=" + url.QueryEscape(target))
			f := secHidden(page)
			f.Set("return_to", target) // as if the attacker crafted the form too
			f.Set("email", "redirect@example.com")
			f.Set("password", secUserPass)
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/login", strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, _ := b.do(req)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/account" {
				t.Errorf("return_to %q: status %d Location %q, want 303 /account", target, resp.StatusCode, loc)
			}
		}
	})
	t.Run("LogoutRedirectMustBeRegistered", func(t *testing.T) {
		resp, _ := getNoFollow(t, e.URL+"/oauth2/logout?client_id="+url.QueryEscape(id)+"&post_logout_redirect_uri="+url.QueryEscape("https://evil.example/"))
		if loc := resp.Header.Get("Location"); loc != "" || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d Location %q", resp.StatusCode, loc)
		}
	})
}

// RFC 9700 §4.8 (PKCE downgrade): every authorization request needs an S256
// challenge, and a code issued with one can never be redeemed without the
// verifier, not even after a first attempt without it (fosite PR #883).
func TestRFC9700_4_8_PKCEDowngrade(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, secret := e.webClient()
	e.mustUser("pkce@example.com")
	b := e.browser()
	// Log in once so the authorization requests below reach the PKCE check
	// with a session, as an attacker's would.
	e.codeFor(b, id, "pkce@example.com", nil)

	for name, q := range map[string]url.Values{
		"NoChallenge":   {"code_challenge": {""}, "code_challenge_method": {""}},
		"PlainMethod":   {"code_challenge_method": {"plain"}},
		"NoMethod":      {"code_challenge_method": {""}},
		"UnknownMethod": {"code_challenge_method": {"S512"}},
	} {
		t.Run("Authorize"+name, func(t *testing.T) {
			_, challenge := secPKCE()
			resp, page := b.get(secAuthURL(e.URL, id, challenge, q))
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if loc == nil || loc.Query().Get("error") == "" || loc.Query().Get("code") != "" {
				t.Fatalf("status %d Location %q: %s", resp.StatusCode, resp.Header.Get("Location"), page)
			}
		})
	}
	t.Run("TokenWithoutVerifierThenWithIt", func(t *testing.T) {
		code, verifier := e.codeFor(b, id, "pkce@example.com", nil)
		if st, out := e.exchange(id, secret, code, ""); st != http.StatusBadRequest {
			t.Fatalf("without verifier: %d %v", st, out)
		}
		if st, out := e.exchange(id, secret, code, verifier); st == http.StatusOK {
			t.Fatalf("the code was redeemed after a verifier-less attempt: %v", out)
		}
	})
	t.Run("WrongVerifier", func(t *testing.T) {
		code, _ := e.codeFor(b, id, "pkce@example.com", nil)
		other, _ := secPKCE()
		if st, out := e.exchange(id, secret, code, other); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("wrong verifier: %d %v", st, out)
		}
	})
	t.Run("RightVerifier", func(t *testing.T) {
		code, verifier := e.codeFor(b, id, "pkce@example.com", nil)
		if st, out := e.exchange(id, secret, code, verifier); st != http.StatusOK {
			t.Fatalf("right verifier: %d %v", st, out)
		}
	})
}

// RFC 9700 §4.5 (authorization code injection): a code is bound to the
// client it was issued to, to its PKCE verifier and to its redirect URI.
func TestRFC9700_4_5_CodeInjection(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	idA, secretA := e.webClient()
	idB, secretB := e.webClient()
	e.mustUser("inject@example.com")
	b := e.browser()

	t.Run("OtherClient", func(t *testing.T) {
		code, verifier := e.codeFor(b, idA, "inject@example.com", nil)
		if st, out := e.exchange(idB, secretB, code, verifier); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("client B redeemed A's code: %d %v", st, out)
		}
	})
	t.Run("OtherFlowsVerifier", func(t *testing.T) {
		code, _ := e.codeFor(b, idA, "inject@example.com", nil)
		_, otherVerifier := e.codeFor(b, idA, "inject@example.com", nil)
		if st, out := e.exchange(idA, secretA, code, otherVerifier); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("code redeemed with another flow's verifier: %d %v", st, out)
		}
	})
	t.Run("OtherRedirectURI", func(t *testing.T) {
		code, verifier := e.codeFor(b, idA, "inject@example.com", nil)
		st, _, out := e.postForm("/oauth2/token", idA, secretA, url.Values{"grant_type": {"authorization_code"},
			"code": {code}, "redirect_uri": {"http://127.0.0.1:9/other"}, "code_verifier": {verifier}})
		if st != http.StatusBadRequest {
			t.Fatalf("code redeemed with another redirect_uri: %d %v", st, out)
		}
	})
	t.Run("ForgedCode", func(t *testing.T) {
		code, verifier := e.codeFor(b, idA, "inject@example.com", nil)
		parts := strings.SplitN(code, ".", 2)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("forged-signature-forged-signature"))
		if st, out := e.exchange(idA, secretA, forged, verifier); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Fatalf("forged code: %d %v", st, out)
		}
	})
}

// RFC 6749 §4.1.2 and RFC 9700 §4.5: a code used twice is refused, and the
// tokens issued for it are revoked.
func TestRFC6749_4_1_2_CodeReplayRevokesTokens(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, secret := e.webClient()
	e.mustUser("replay@example.com")
	code, verifier := e.codeFor(e.browser(), id, "replay@example.com", nil)
	st, first := e.exchange(id, secret, code, verifier)
	if st != http.StatusOK {
		t.Fatalf("first exchange: %d %v", st, first)
	}
	if st, out := e.exchange(id, secret, code, verifier); st != http.StatusBadRequest || out["error"] != "invalid_grant" {
		t.Fatalf("replay: %d %v", st, out)
	}
	if e.active(id, secret, first["access_token"].(string)) {
		t.Error("access token from the replayed code is still active")
	}
	if e.active(id, secret, first["refresh_token"].(string)) {
		t.Error("refresh token from the replayed code is still active")
	}
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}})
	if st != http.StatusBadRequest {
		t.Errorf("refresh after replay: %d %v", st, out)
	}
}

// RFC 9207 and RFC 9700 §4.4 (mix-up): every authorization response, success
// or error, carries iss, and discovery says so.
func TestRFC9700_4_4_MixUpIssInAuthorizationResponse(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, _ := e.webClient()
	e.mustUser("mixup@example.com")
	b := e.browser()
	_, challenge := secPKCE()
	loc := e.authorize(b, secAuthURL(e.URL, id, challenge, nil), "mixup@example.com")
	if loc.Query().Get("iss") != e.URL || loc.Query().Get("code") == "" {
		t.Errorf("success response %s: iss must be %s", loc, e.URL)
	}
	// An error redirect: a scope the client may not ask for.
	resp, _ := b.get(secAuthURL(e.URL, id, challenge, url.Values{"scope": {"openid admin"}}))
	el, _ := url.Parse(resp.Header.Get("Location"))
	if el == nil || el.Query().Get("error") == "" || el.Query().Get("iss") != e.URL {
		t.Errorf("error response %q: iss must be %s", resp.Header.Get("Location"), e.URL)
	}
	// The user denies consent.
	resp, page := b.get(secAuthURL(e.URL, id, challenge, url.Values{"prompt": {"consent"}}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/consent"`) {
		t.Fatalf("no consent page: %d", resp.StatusCode)
	}
	f := secHidden(page)
	f.Set("decision", "deny")
	resp, _ = b.post(e.URL+"/consent", f)
	dl, _ := url.Parse(resp.Header.Get("Location"))
	if dl == nil || dl.Query().Get("error") != "access_denied" || dl.Query().Get("iss") != e.URL {
		t.Errorf("denial %q: want access_denied with iss", resp.Header.Get("Location"))
	}
	var disc map[string]any
	_, body := get(t, e.URL+"/.well-known/openid-configuration")
	_ = json.Unmarshal([]byte(body), &disc)
	if disc["authorization_response_iss_parameter_supported"] != true || disc["issuer"] != e.URL {
		t.Errorf("discovery: %v", disc)
	}
}

// RFC 9700 §4.7 (CSRF on the redirect) and OIDC Core §3.1.2.1/§15.5.2:
// state comes back unchanged, low-entropy state is refused, and the nonce is
// bound into the ID token.
func TestRFC9700_4_7_StateAndNonce(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	id, secret := e.webClient()
	e.mustUser("state@example.com")
	b := e.browser()
	state := "st<&>'\"=+/ " + secRand()
	nonce := "n-" + secRand()
	verifier, challenge := secPKCE()
	loc := e.authorize(b, secAuthURL(e.URL, id, challenge, url.Values{"state": {state}, "nonce": {nonce}}), "state@example.com")
	if got := loc.Query().Get("state"); got != state {
		t.Errorf("state came back as %q, want %q", got, state)
	}
	st, tok := e.exchange(id, secret, loc.Query().Get("code"), verifier)
	if st != http.StatusOK {
		t.Fatalf("exchange: %d %v", st, tok)
	}
	if claims := jwtClaims(t, tok["id_token"].(string)); claims["nonce"] != nonce {
		t.Errorf("id_token nonce %v, want %q", claims["nonce"], nonce)
	}
	for _, weak := range []string{"", "abc"} {
		resp, _ := b.get(secAuthURL(e.URL, id, challenge, url.Values{"state": {weak}}))
		l, _ := url.Parse(resp.Header.Get("Location"))
		if l == nil || l.Query().Get("error") == "" || l.Query().Get("code") != "" {
			t.Errorf("state %q: status %d Location %q, want an error", weak, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
