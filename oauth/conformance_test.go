package oauth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
)

// retrieveError runs a token request through x/oauth2 and returns the
// OAuth error it parsed, failing the test if the request succeeded.
func retrieveError(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an OAuth error from the token endpoint, got %v", err)
	}
	return re
}

func TestToken_BasicClient401CarriesWWWAuthenticate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c, secret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"}})
	cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: "wrong", TokenURL: e.issuer + "/oauth2/token"}

	t.Run("Basic", func(t *testing.T) {
		cc := cc
		cc.AuthStyle = oauth2.AuthStyleInHeader
		_, err := cc.Token(ctx)
		re := retrieveError(t, err)
		if re.Response.StatusCode != http.StatusUnauthorized || re.ErrorCode != "invalid_client" {
			t.Fatalf("%d %s", re.Response.StatusCode, re.ErrorCode)
		}
		if got := re.Response.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="`+e.issuer+`"`) {
			t.Fatalf("WWW-Authenticate %q, want a Basic challenge with realm", got)
		}
	})
	t.Run("OnlyTheRegisteredMethod", func(t *testing.T) {
		// client_secret_basic is registered: the right secret in the body fails.
		cc := cc
		cc.ClientSecret, cc.AuthStyle = secret, oauth2.AuthStyleInParams
		_, err := cc.Token(ctx)
		if re := retrieveError(t, err); re.ErrorCode != "invalid_client" {
			t.Fatalf("%s", re.ErrorCode)
		}
		cc.AuthStyle = oauth2.AuthStyleInHeader
		if _, err := cc.Token(ctx); err != nil {
			t.Fatalf("registered method: %v", err)
		}
	})
	// The other endpoints that authenticate clients answer a failed Basic
	// authentication the same way.
	for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke", "/oauth2/par", "/oauth2/device/auth"} {
		t.Run("Basic"+path, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader("token=x&scope=openid"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(c.ID, "wrong")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(got, `Basic realm="`+e.issuer+`"`) {
				t.Fatalf("%d WWW-Authenticate %q", resp.StatusCode, got)
			}
		})
	}
	t.Run("PostNoChallenge", func(t *testing.T) {
		cc := cc
		cc.AuthStyle = oauth2.AuthStyleInParams
		_, err := cc.Token(ctx)
		re := retrieveError(t, err)
		if re.ErrorCode != "invalid_client" || re.Response.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("%s, WWW-Authenticate %q", re.ErrorCode, re.Response.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestToken_GrantTypeErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	web, webSecret := e.webClient()
	cfg := oauth2.Config{ClientID: web.ID, ClientSecret: webSecret, RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{TokenURL: e.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	for _, grant := range []string{
		"urn:ietf:params:oauth:grant-type:token-exchange",
		"urn:ietf:params:oauth:grant-type:jwt-bearer",
		"implicit",
	} {
		t.Run("Unsupported/"+grant, func(t *testing.T) {
			// A wrong secret too: the grant type is decided before the client.
			cfg := cfg
			cfg.ClientSecret = "wrong"
			_, err := cfg.Exchange(ctx, "x", oauth2.SetAuthURLParam("grant_type", grant))
			re := retrieveError(t, err)
			if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "unsupported_grant_type" {
				t.Fatalf("%d %s %s", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
			}
		})
	}
	t.Run("UnauthorizedClient", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: web.ID, ClientSecret: webSecret, TokenURL: e.issuer + "/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader}
		_, err := cc.Token(ctx)
		re := retrieveError(t, err)
		if re.ErrorCode != "unauthorized_client" {
			t.Fatalf("%d %s %s", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
		}
	})
	// Every other grant the server supports, asked for by a client that is
	// registered for client_credentials only: unauthorized_client before
	// anything the grant carries (code, refresh token, password) is looked at.
	svc, svcSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"}})
	svcCfg := oauth2.Config{ClientID: svc.ID, ClientSecret: svcSecret, RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{TokenURL: e.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	for name, call := range map[string]func() error{
		"authorization_code": func() error {
			_, err := svcCfg.Exchange(ctx, "some-code", oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		},
		"refresh_token": func() error {
			_, err := svcCfg.TokenSource(ctx, &oauth2.Token{RefreshToken: "some-refresh-token"}).Token()
			return err
		},
		"password": func() error {
			_, err := svcCfg.PasswordCredentialsToken(ctx, userEmail, userPassword)
			return err
		},
		"device_code": func() error {
			_, err := svcCfg.Exchange(ctx, "", oauth2.SetAuthURLParam("grant_type", oauth.DeviceGrantType),
				oauth2.SetAuthURLParam("device_code", "some-device-code"))
			return err
		},
	} {
		t.Run("UnauthorizedClient/"+name, func(t *testing.T) {
			re := retrieveError(t, call())
			if re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "unauthorized_client" {
				t.Fatalf("%d %s %s", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
			}
		})
	}
}

// authCodeURL is a PKCE authorization request for the web client.
func (e *env) codeRequest(cfg *oauth2.Config, extra ...oauth2.AuthCodeOption) (string, string, string) {
	verifier, state := oauth2.GenerateVerifier(), randString()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(randString())}, extra...)
	return cfg.AuthCodeURL(state, opts...), verifier, state
}

// loggedIn returns a browser with a session and standing consent for cfg's
// scopes, so the next authorization request answers at once.
func (e *env) loggedIn(cfg *oauth2.Config) *browser {
	e.t.Helper()
	b := e.browser()
	u, _, _ := e.codeRequest(cfg)
	e.authorize(b, u)
	return b
}

func TestAuthorize_ResponseModes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	client, secret := e.webClient()
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: client.ID, ClientSecret: secret, Endpoint: provider.Endpoint(),
		RedirectURL: redirectURI, Scopes: []string{oidc.ScopeOpenID, "email"}}
	b := e.loggedIn(cfg)
	exchange := func(t *testing.T, code, verifier string) {
		t.Helper()
		tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		if _, err := provider.Verifier(&oidc.Config{ClientID: client.ID}).Verify(ctx, raw); err != nil {
			t.Fatalf("ID token: %v", err)
		}
	}

	t.Run("QueryExplicit", func(t *testing.T) {
		u, verifier, state := e.codeRequest(cfg, oauth2.SetAuthURLParam("response_mode", "query"))
		resp, page := b.get(u)
		q := redirectQuery(t, resp, page)
		if q.Get("code") == "" || q.Get("state") != state || q.Get("iss") != e.issuer {
			t.Fatalf("response %v", q)
		}
		exchange(t, q.Get("code"), verifier)
	})
	t.Run("FormPost", func(t *testing.T) {
		u, verifier, state := e.codeRequest(cfg, oauth2.SetAuthURLParam("response_mode", "form_post"))
		resp, page := b.get(u)
		f := formPost(t, resp, page)
		if f.Get("code") == "" || f.Get("state") != state || f.Get("iss") != e.issuer {
			t.Fatalf("form_post fields %v", f)
		}
		exchange(t, f.Get("code"), verifier)
	})
	t.Run("FormPostError", func(t *testing.T) {
		u, _, state := e.codeRequest(cfg, oauth2.SetAuthURLParam("response_mode", "form_post"),
			oauth2.SetAuthURLParam("prompt", "none"))
		resp, page := e.browser().get(u) // no session: login_required
		f := formPost(t, resp, page)
		if f.Get("error") != "login_required" || f.Get("state") != state || f.Get("iss") != e.issuer || f.Get("code") != "" {
			t.Fatalf("form_post error fields %v", f)
		}
	})
	t.Run("QueryError", func(t *testing.T) {
		u, _, state := e.codeRequest(cfg, oauth2.SetAuthURLParam("prompt", "none"))
		resp, page := e.browser().get(u)
		q := redirectQuery(t, resp, page)
		if q.Get("error") != "login_required" || q.Get("state") != state || q.Get("iss") != e.issuer {
			t.Fatalf("error response %v", q)
		}
	})
	t.Run("FragmentRefusedInQuery", func(t *testing.T) {
		u, _, state := e.codeRequest(cfg, oauth2.SetAuthURLParam("response_mode", "fragment"))
		resp, page := b.get(u)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		q := redirectQuery(t, resp, page)
		if q.Get("error") != "unsupported_response_mode" || q.Get("iss") != e.issuer || q.Get("state") != state ||
			q.Get("code") != "" || loc.Fragment != "" {
			t.Fatalf("fragment request answered with %s", resp.Header.Get("Location"))
		}
	})
	t.Run("UnknownModeNotRedirected", func(t *testing.T) {
		u, _, _ := e.codeRequest(cfg, oauth2.SetAuthURLParam("response_mode", "query.jwt"))
		resp, page := b.get(u)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
			!strings.Contains(page, "unsupported_response_mode") || strings.Contains(page, "code=") {
			t.Fatalf("%d Location=%q\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
	})
}

// formPost checks resp is a form_post page posting to the redirect URI and
// returns its fields.
func formPost(t *testing.T, resp *http.Response, page string) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, `<form method="post" action="`+redirectURI+`">`) {
		t.Fatalf("not a form_post response: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	return hidden(page)
}

func TestAuthorize_RequestObjectsNotSupported(t *testing.T) {
	e := newEnv(t)
	client, secret := e.webClient()
	cfg := &oauth2.Config{ClientID: client.ID, ClientSecret: secret, RedirectURL: redirectURI,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/oauth2/auth"}, Scopes: []string{"openid"}}
	b := e.loggedIn(cfg)
	for param, want := range map[string]string{"request": "request_not_supported", "request_uri": "request_uri_not_supported"} {
		t.Run(want, func(t *testing.T) {
			u, _, state := e.codeRequest(cfg, oauth2.SetAuthURLParam(param, "eyJhbGciOiJub25lIn0.e30."))
			resp, page := b.get(u)
			q := redirectQuery(t, resp, page)
			if q.Get("error") != want || q.Get("iss") != e.issuer || q.Get("state") != state || q.Get("code") != "" {
				t.Fatalf("response %v", q)
			}
		})
	}
}

// The pushed authorization request endpoint refuses request objects too,
// even from a client whose registered keys fosite could check one with
// (unsigned ones included): discovery says request_parameter_supported
// false.
func TestPAR_RequestObjectsNotSupported(t *testing.T) {
	e := newEnv(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, _ := e.mustClient(clients.Spec{RedirectURIs: []string{redirectURI}, GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid"}, TokenEndpointAuthMethod: "private_key_jwt",
		JWKS: publicJWKS(t, josev4.JSONWebKey{Key: ec.Public(), KeyID: "k1"})})
	a := assertionClient{id: c.ID, tokenURL: e.issuer + "/oauth2/token", key: ec, alg: josev4.ES256, kid: "k1"}
	_, challenge := pkce()
	params := url.Values{"client_id": {c.ID}, "response_type": {"code"}, "redirect_uri": {redirectURI},
		"scope": {"openid"}, "state": {randString()}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	claims := map[string]any{"iss": c.ID, "aud": e.issuer}
	for k := range params {
		claims[k] = params.Get(k)
	}
	body, _ := json.Marshal(claims)
	unsigned := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(body) + "."
	push := func(t *testing.T, extra url.Values) (int, map[string]any) {
		t.Helper()
		f := url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {a.assertion(t)}}
		for k, v := range params {
			f[k] = v
		}
		for k, v := range extra {
			f[k] = v
		}
		return e.postJSON("/oauth2/par", "", "", f)
	}
	if st, out := push(t, nil); st != http.StatusCreated {
		t.Fatalf("plain push: %d %v", st, out)
	}
	for param, want := range map[string]string{"request": "request_not_supported", "request_uri": "request_uri_not_supported"} {
		t.Run(want, func(t *testing.T) {
			value := unsigned
			if param == "request_uri" {
				value = "https://app.example/request.jwt"
			}
			st, out := push(t, url.Values{param: {value}})
			if st != http.StatusBadRequest || out["error"] != want || out["request_uri"] != nil {
				t.Fatalf("%d %v", st, out)
			}
		})
	}
	t.Run("UnauthenticatedClientFirst", func(t *testing.T) {
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		bad := assertionClient{id: c.ID, tokenURL: a.tokenURL, key: other, alg: josev4.ES256, kid: "k1"}
		f := url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion": {bad.assertion(t)}, "request": {unsigned}}
		for k, v := range params {
			f[k] = v
		}
		if st, out := e.postJSON("/oauth2/par", "", "", f); st != http.StatusUnauthorized || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
}

func TestAuthorize_UnredirectableErrorIsHTMLPage(t *testing.T) {
	e := newEnv(t)
	client, _ := e.webClient()
	for name, q := range map[string]url.Values{
		"UnknownClient":         {"client_id": {"no-such-client"}, "redirect_uri": {redirectURI}},
		"UnregisteredRedirect":  {"client_id": {client.ID}, "redirect_uri": {"https://evil.example/cb"}},
		"UnknownClientNoParams": {"client_id": {"x"}},
	} {
		t.Run(name, func(t *testing.T) {
			q.Set("response_type", "code")
			q.Set("scope", "openid")
			q.Set("state", randString())
			resp, page := e.browser().get(e.issuer + "/oauth2/auth?" + q.Encode())
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s Location=%q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Location"), page)
			}
			if strings.Contains(page, "fositestore") || strings.Contains(page, `"error"`) || !strings.Contains(page, "<html") {
				t.Fatalf("page leaks internals or is not HTML:\n%s", page)
			}
		})
	}
}

// assertionClient signs private_key_jwt client assertions with key.
type assertionClient struct {
	id, tokenURL string
	key          crypto.Signer
	alg          josev4.SignatureAlgorithm
	kid          string
}

func (a assertionClient) assertion(t *testing.T) string {
	t.Helper()
	sig, err := josev4.NewSigner(josev4.SigningKey{Algorithm: a.alg, Key: josev4.JSONWebKey{Key: a.key, KeyID: a.kid}},
		(&josev4.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := josejwt.Signed(sig).Claims(josejwt.Claims{Issuer: a.id, Subject: a.id, Audience: josejwt.Audience{a.tokenURL},
		ID: randString(), IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Minute))}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// token runs client_credentials through x/oauth2 with the assertion.
func (a assertionClient) token(t *testing.T) (*oauth2.Token, error) {
	cc := clientcredentials.Config{ClientID: a.id, TokenURL: a.tokenURL, AuthStyle: oauth2.AuthStyleInParams,
		Scopes: []string{"introspect"}, EndpointParams: url.Values{
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {a.assertion(t)},
		}}
	return cc.Token(context.Background())
}

func publicJWKS(t *testing.T, keys ...josev4.JSONWebKey) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(josev4.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPrivateKeyJWT_EndToEnd(t *testing.T) {
	e := newEnv(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  josev4.SignatureAlgorithm
	}{
		{"ES256", ec, josev4.ES256},
		{"RS256", rk, josev4.RS256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// No alg given: registration infers it from the key.
			c, secret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"},
				TokenEndpointAuthMethod: "private_key_jwt",
				JWKS:                    publicJWKS(t, josev4.JSONWebKey{Key: tc.key.Public(), KeyID: "k1"})})
			if secret != "" || c.TokenEndpointAuthSigningAlg != string(tc.alg) {
				t.Fatalf("registered alg %q (secret %q), want %s", c.TokenEndpointAuthSigningAlg, secret, tc.alg)
			}
			a := assertionClient{id: c.ID, tokenURL: e.issuer + "/oauth2/token", key: tc.key, alg: tc.alg, kid: "k1"}
			tok, err := a.token(t)
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			if claims := verifyWithJWKS(t, e, tok.AccessToken); claims["client_id"] != c.ID {
				t.Fatalf("access token claims %v", claims)
			}
			// A client authenticates with exactly its registered method.
			cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: "anything", TokenURL: a.tokenURL, AuthStyle: oauth2.AuthStyleInHeader}
			if _, err := cc.Token(context.Background()); retrieveError(t, err).ErrorCode != "invalid_client" {
				t.Fatal("a private_key_jwt client authenticated with a secret")
			}
		})
	}
	t.Run("JWKSURI", func(t *testing.T) {
		jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(publicJWKS(t, josev4.JSONWebKey{Key: ec.Public(), KeyID: "uri-key", Use: "sig"}))
		}))
		t.Cleanup(jwks.Close)
		c, _ := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"},
			TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: jwks.URL, TokenEndpointAuthSigningAlg: "ES256"})
		a := assertionClient{id: c.ID, tokenURL: e.issuer + "/oauth2/token", key: ec, alg: josev4.ES256, kid: "uri-key"}
		if _, err := a.token(t); err != nil {
			t.Fatalf("token with keys from jwks_uri: %v", err)
		}
	})
	t.Run("WrongAlgRefused", func(t *testing.T) {
		c, _ := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"},
			TokenEndpointAuthMethod: "private_key_jwt", JWKS: publicJWKS(t, josev4.JSONWebKey{Key: rk.Public(), KeyID: "r"})})
		a := assertionClient{id: c.ID, tokenURL: e.issuer + "/oauth2/token", key: ec, alg: josev4.ES256, kid: "r"}
		_, err := a.token(t)
		if re := retrieveError(t, err); re.ErrorCode != "invalid_client" {
			t.Fatalf("%s", re.ErrorCode)
		}
	})
}

func TestClientRegistry_RefusesKeysThatCannotVerify(t *testing.T) {
	e := newEnv(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for _, tc := range []struct {
		name, alg, field string
		keys             []josev4.JSONWebKey
	}{
		{"ECKeyForRS256", "RS256", "jwks", []josev4.JSONWebKey{{Key: ec.Public()}}},
		{"RSAKeyForES256", "ES256", "jwks", []josev4.JSONWebKey{{Key: rk.Public()}}},
		{"P384", "", "token_endpoint_auth_signing_alg", []josev4.JSONWebKey{{Key: ec384.Public()}}},
		{"Mixed", "", "token_endpoint_auth_signing_alg", []josev4.JSONWebKey{{Key: ec.Public(), KeyID: "a"}, {Key: rk.Public(), KeyID: "b"}}},
		{"EncryptionKey", "", "jwks", []josev4.JSONWebKey{{Key: ec.Public(), Use: "enc"}}},
		{"KeyAlgDiffers", "ES256", "jwks", []josev4.JSONWebKey{{Key: ec.Public(), Algorithm: "ES384"}}},
		{"ShortRSA", "", "jwks", []josev4.JSONWebKey{{Key: small.Public()}}},
		{"PrivateKey", "", "jwks", []josev4.JSONWebKey{{Key: ec}}},
		{"PS256", "PS256", "token_endpoint_auth_signing_alg", []josev4.JSONWebKey{{Key: rk.Public()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "k", GrantTypes: []string{"client_credentials"},
				TokenEndpointAuthMethod: "private_key_jwt", TokenEndpointAuthSigningAlg: tc.alg, JWKS: publicJWKS(t, tc.keys...)})
			var pe *problem.Error
			if !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("err %v, want a 400 naming %s", err, tc.field)
			}
		})
	}
	// A malformed key set is refused in authd's words: the JSON decoder's
	// and go-jose's messages name Go packages and types.
	for name, raw := range map[string]string{
		"UnknownKeyType": `{"keys":[{"kty":"XX"}]}`,
		"NotAnObject":    `[1]`,
		"BadBase64":      `{"keys":[{"kty":"RSA","n":"!","e":"AQAB"}]}`,
		"NotJSON":        `{"keys":`,
	} {
		t.Run("Malformed/"+name, func(t *testing.T) {
			_, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "k", GrantTypes: []string{"client_credentials"},
				TokenEndpointAuthMethod: "private_key_jwt", JWKS: json.RawMessage(raw)})
			var pe *problem.Error
			if !errors.As(err, &pe) || pe.Field != "jwks" || pe.Status != http.StatusBadRequest {
				t.Fatalf("err %v, want a 400 naming jwks", err)
			}
			for _, internal := range []string{"go-jose", "jose.", "json:", "Go value", "illegal base64"} {
				if strings.Contains(pe.Detail, internal) {
					t.Fatalf("detail %q names %q", pe.Detail, internal)
				}
			}
		})
	}
	t.Run("JWKSURINotHTTPS", func(t *testing.T) {
		_, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "k", GrantTypes: []string{"client_credentials"},
			TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: "http://keys.example/jwks.json"})
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.Field != "jwks_uri" {
			t.Fatalf("err %v", err)
		}
	})
}

func TestDiscovery_AdvertisesWhatIsSupported(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     false,
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	list := func(k string) []string {
		var out []string
		for _, v := range doc[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := strings.Join(list("response_modes_supported"), " "); got != "query form_post" {
		t.Errorf("response_modes_supported %s", got)
	}
	if got := strings.Join(list("token_endpoint_auth_signing_alg_values_supported"), " "); got != "RS256 ES256" {
		t.Errorf("token_endpoint_auth_signing_alg_values_supported %s", got)
	}
	if doc["pushed_authorization_request_endpoint"] != e.issuer+"/oauth2/par" || doc["device_authorization_endpoint"] != e.issuer+"/oauth2/device/auth" {
		t.Errorf("PAR and device endpoints: %v, %v", doc["pushed_authorization_request_endpoint"], doc["device_authorization_endpoint"])
	}
	for _, k := range []string{"claims_supported", "claim_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"grant_types_supported", "scopes_supported", "response_types_supported", "userinfo_endpoint", "end_session_endpoint"} {
		if doc[k] == nil {
			t.Errorf("%s missing", k)
		}
	}
	if got := strings.Join(list("acr_values_supported"), " "); got != oauth.ACRPassword+" "+oauth.ACRMFA {
		t.Errorf("acr_values_supported %s", got)
	}
	if !slices.Contains(list("claims_supported"), "acr") {
		t.Error("acr is issued but not advertised")
	}
	for _, k := range []string{"registration_endpoint", "request_object_signing_alg_values_supported",
		"display_values_supported", "userinfo_signing_alg_values_supported",
		"tls_client_certificate_bound_access_tokens"} {
		if _, ok := doc[k]; ok {
			t.Errorf("%s advertised but not supported", k)
		}
	}
}

// A client stored before registration recorded the assertion alg still
// gets the alg its keys imply.
func TestPrivateKeyJWT_StoredWithoutAlgFollowsKeys(t *testing.T) {
	e := newEnv(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c := &fositestore.Client{ID: "legacy-es256", Name: "legacy", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"introspect"}, TokenEndpointAuthMethod: "private_key_jwt",
		JWKS: publicJWKS(t, josev4.JSONWebKey{Key: ec.Public(), KeyID: "k", Use: "sig"})}
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	a := assertionClient{id: c.ID, tokenURL: e.issuer + "/oauth2/token", key: ec, alg: josev4.ES256, kid: "k"}
	if _, err := a.token(t); err != nil {
		t.Fatalf("ES256 assertion for a client stored without alg: %v", err)
	}
}
