package oauth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// TestCodeFlow_RealClients runs the code flow with real clients: go-oidc discovery
// and ID-token verification, x/oauth2 code exchange with PKCE after real
// form posts, refresh, reuse of the old refresh token revoking the family,
// the access token verified against JWKS with go-jose, and introspection
// active -> inactive after revocation.
func TestCodeFlow_RealClients(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	client, secret := e.webClient()

	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	cfg := &oauth2.Config{ClientID: client.ID, ClientSecret: secret, Endpoint: provider.Endpoint(),
		RedirectURL: redirectURI, Scopes: []string{oidc.ScopeOpenID, "profile", "email", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	state, nonce := randString(), randString()
	q := e.authorize(e.browser(), cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)))
	if q.Get("state") != state || q.Get("iss") != e.issuer || q.Get("code") == "" {
		t.Fatalf("authorization response %v", q)
	}

	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: client.ID}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	var idClaims struct {
		Nonce    string   `json:"nonce"`
		Email    string   `json:"email"`
		Roles    []string `json:"roles"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&idClaims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != e.userID || idClaims.Nonce != nonce || idClaims.Email != userEmail || idClaims.AuthTime == 0 ||
		!slices.Equal(idClaims.Roles, []string{"admin", "user"}) {
		t.Errorf("ID token claims: sub=%s %+v", idt.Subject, idClaims)
	}
	if alg := jwsHeader(t, rawID, "alg"); alg != "RS256" {
		t.Errorf("ID token alg %s, want RS256", alg)
	}

	// The access token is an RFC 9068 JWT that verifies against the JWKS.
	at := verifyWithJWKS(t, e, tok.AccessToken)
	if at["sub"] != e.userID || at["client_id"] != client.ID || at["iss"] != e.issuer || at["jti"] == nil {
		t.Errorf("access token claims %v", at)
	}
	if sc, _ := at["scope"].(string); !strings.Contains(sc, "openid") {
		t.Errorf("scope claim %v, want a space-separated string", at["scope"])
	}
	if roles, ok := at["roles"].([]any); !ok || len(roles) != 2 {
		t.Errorf("roles claim %v, want [admin user]", at["roles"])
	}

	// Introspection by the token's own client, with live roles.
	in := e.introspect(client.ID, secret, tok.AccessToken)
	if in["active"] != true || in["sub"] != e.userID || in["token_type"] != "Bearer" || in["roles"] == nil {
		t.Errorf("introspection %v", in)
	}

	// userinfo with the bearer token.
	req, _ := http.NewRequest(http.MethodGet, provider.UserInfoEndpoint(), nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if resp.StatusCode != 200 || ui["sub"] != e.userID || ui["email"] != userEmail {
		t.Errorf("userinfo %d %v", resp.StatusCode, ui)
	}

	// Refresh: a new pair; the old access token is gone.
	st, ref := e.tokenRequest(client.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if st != 200 || ref["refresh_token"] == tok.RefreshToken || ref["id_token"] == nil {
		t.Fatalf("refresh: %d %v", st, ref)
	}
	newRT := ref["refresh_token"].(string)
	newAT := ref["access_token"].(string)
	if e.introspect(client.ID, secret, newAT)["active"] != true {
		t.Error("refreshed access token not active")
	}
	// Reuse after the reuse window: invalid_grant, and the family dies.
	backdateRotations(t, e, 11e9)
	st, reuse := e.tokenRequest(client.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if st != 400 || reuse["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", st, reuse)
	}
	if in := e.introspect(client.ID, secret, newAT); in["active"] != false {
		t.Errorf("access token of a revoked family still active: %v", in)
	}
	st, after := e.tokenRequest(client.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {newRT}})
	if st != 400 || after["error"] != "invalid_grant" {
		t.Errorf("refresh token of a revoked family: %d %v", st, after)
	}
}

// TestRevoke_IntrospectionTurnsInactive: active, then /oauth2/revoke, then
// inactive (and the bearer API check fails too).
func TestRevoke_IntrospectionTurnsInactive(t *testing.T) {
	e := newEnv(t)
	client, secret := e.webClient()
	tok := e.codeFlow(client.ID, secret, "openid offline_access")
	if e.introspect(client.ID, secret, tok["access_token"].(string))["active"] != true {
		t.Fatal("token not active")
	}
	if _, err := e.prov.VerifyAccessToken(context.Background(), tok["access_token"].(string)); err != nil {
		t.Fatalf("VerifyAccessToken: %v", err)
	}
	st, _ := e.postJSON("/oauth2/revoke", client.ID, secret, url.Values{"token": {tok["refresh_token"].(string)}})
	if st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if in := e.introspect(client.ID, secret, tok[k].(string)); in["active"] != false {
			t.Errorf("%s still active after revocation: %v", k, in)
		}
	}
	if _, err := e.prov.VerifyAccessToken(context.Background(), tok["access_token"].(string)); err == nil {
		t.Error("VerifyAccessToken accepted a revoked token")
	}
}

// codeFlow runs login + consent + code exchange with PKCE by hand and
// returns the token response.
func (e *env) codeFlow(clientID, secret, scope string) map[string]any {
	e.t.Helper()
	verifier, challenge := pkce()
	state := randString()
	authURL := e.issuer + "/oauth2/auth?" + url.Values{"response_type": {"code"}, "client_id": {clientID},
		"redirect_uri": {redirectURI}, "scope": {scope}, "state": {state}, "nonce": {randString()},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	q := e.authorize(e.browser(), authURL)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}
	id := clientID
	if secret == "" {
		form.Set("client_id", clientID)
		id = ""
	}
	st, tok := e.tokenRequest(id, secret, form)
	if st != 200 {
		e.t.Fatalf("code exchange: %d %v", st, tok)
	}
	return tok
}

// verifyWithJWKS checks a token's signature against the published JWKS with
// go-jose v4 (a generic JWT library) and returns its claims.
func verifyWithJWKS(t *testing.T, e *env, token string) map[string]any {
	t.Helper()
	resp, err := http.Get(e.issuer + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var set josev4.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	parsed, err := josejwt.ParseSigned(token, []josev4.SignatureAlgorithm{josev4.ES256})
	if err != nil {
		t.Fatalf("parse access token: %v", err)
	}
	h := parsed.Headers[0]
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "at+jwt" {
		t.Errorf("typ %v, want at+jwt", h.ExtraHeaders["typ"])
	}
	keys := set.Key(h.KeyID)
	if len(keys) == 0 {
		t.Fatalf("kid %q not in JWKS", h.KeyID)
	}
	claims := map[string]any{}
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("access token signature: %v", err)
	}
	return claims
}

func jwsHeader(t *testing.T, token, name string) string {
	t.Helper()
	s, err := josev4.ParseSigned(token, []josev4.SignatureAlgorithm{josev4.RS256, josev4.ES256})
	if err != nil {
		t.Fatal(err)
	}
	switch name {
	case "alg":
		return s.Signatures[0].Header.Algorithm
	case "kid":
		return s.Signatures[0].Header.KeyID
	}
	return ""
}

// TestRevoke_RotatedRefreshTokenEndsItsFamily: a client that revokes the
// refresh token it just sent for a refresh (a logout racing a background
// refresh) ends the new pair too; another client's revocation does nothing.
func TestRevoke_RotatedRefreshTokenEndsItsFamily(t *testing.T) {
	e := newEnv(t)
	client, secret := e.webClient()
	other, otherSecret := e.webClient()
	tok := e.codeFlow(client.ID, secret, "openid offline_access")
	old := tok["refresh_token"].(string)
	st, next := e.tokenRequest(client.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {old}})
	if st != 200 {
		t.Fatalf("refresh: %d %v", st, next)
	}
	newRefresh, newAccess := next["refresh_token"].(string), next["access_token"].(string)
	// Another client's revocation is answered like an unknown token's (200,
	// no oracle) and changes nothing.
	if st, out := e.postJSON("/oauth2/revoke", other.ID, otherSecret, url.Values{"token": {old}}); st != 200 {
		t.Errorf("another client revoking the token: %d %v", st, out)
	}
	if in := e.introspect(client.ID, secret, newRefresh); in["active"] != true {
		t.Fatalf("another client's revocation ended the family: %v", in)
	}
	if st, out := e.postJSON("/oauth2/revoke", client.ID, secret, url.Values{"token": {old}}); st != 200 {
		t.Fatalf("revoke the rotated token: %d %v", st, out)
	}
	for name, k := range map[string]string{"new refresh token": newRefresh, "new access token": newAccess} {
		if in := e.introspect(client.ID, secret, k); in["active"] != false {
			t.Errorf("%s still active after its family's old token was revoked: %v", name, in)
		}
	}
}

// TestRefresh_AccessTokenLivesUntilNextRotation: the access token a refresh
// issues (stored in its refresh token's row) is active at introspection and
// for bearer checks until the next refresh, and revoking it ends it at once.
func TestRefresh_AccessTokenLivesUntilNextRotation(t *testing.T) {
	e := newEnv(t)
	client, secret := e.webClient()
	tok := e.codeFlow(client.ID, secret, "offline_access")
	refresh := func(rt string) map[string]any {
		t.Helper()
		st, out := e.tokenRequest(client.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
		if st != 200 {
			t.Fatalf("refresh: %d %v", st, out)
		}
		return out
	}
	live := func(what, at string, want bool) {
		t.Helper()
		if in := e.introspect(client.ID, secret, at); in["active"] != want {
			t.Errorf("%s: introspection %v, want active=%v", what, in, want)
		}
		if _, err := e.prov.VerifyAccessToken(context.Background(), at); (err == nil) != want {
			t.Errorf("%s: VerifyAccessToken error %v, want live=%v", what, err, want)
		}
	}
	first := refresh(tok["refresh_token"].(string))
	at1 := first["access_token"].(string)
	live("first refresh's access token", at1, true)
	live("code exchange's access token", tok["access_token"].(string), false)

	second := refresh(first["refresh_token"].(string))
	live("first refresh's access token after the next refresh", at1, false)
	at2 := second["access_token"].(string)
	live("second refresh's access token", at2, true)

	if st, _ := e.postJSON("/oauth2/revoke", client.ID, secret, url.Values{"token": {at2}, "token_type_hint": {"access_token"}}); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	live("revoked access token", at2, false)
}
