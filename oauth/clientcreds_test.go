package oauth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
	"time"

	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authd/authd/oauth/clients"
)

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

func serviceSpec(method string) clients.Spec {
	return clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"credits:charge", "introspect"},
		TokenEndpointAuthMethod: method}
}

func TestClientCredentials_AuthMethods(t *testing.T) {
	e := newEnv(t)
	check := func(t *testing.T, clientID string, st int, tok map[string]any) {
		t.Helper()
		if st != 200 {
			t.Fatalf("token: %d %v", st, tok)
		}
		at := verifyWithJWKS(t, e, tok["access_token"].(string))
		if at["sub"] != clientID || at["client_id"] != clientID || at["scope"] != "credits:charge" {
			t.Errorf("claims %v", at)
		}
		if roles, ok := at["roles"].([]any); !ok || len(roles) != 0 {
			t.Errorf("roles %v, want []", at["roles"])
		}
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"credits:charge"}}

	t.Run("OK_Basic", func(t *testing.T) {
		c, secret := e.mustClient(serviceSpec("client_secret_basic"))
		st, tok := e.tokenRequest(c.ID, secret, form)
		check(t, c.ID, st, tok)
	})
	t.Run("OK_Post", func(t *testing.T) {
		c, secret := e.mustClient(serviceSpec("client_secret_post"))
		f := url.Values{"client_id": {c.ID}, "client_secret": {secret}}
		for k, v := range form {
			f[k] = v
		}
		st, tok := e.tokenRequest("", "", f)
		check(t, c.ID, st, tok)
	})
	t.Run("OK_PrivateKeyJWT", func(t *testing.T) {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		c := e.jwtClient(&key.PublicKey)
		st, tok := e.tokenRequest("", "", assertionForm(form, signAssertion(t, josev4.RS256, key, c.ID, e.issuer)))
		check(t, c.ID, st, tok)
	})
	t.Run("ErrWrongSecret", func(t *testing.T) {
		c, _ := e.mustClient(serviceSpec("client_secret_basic"))
		st, out := e.tokenRequest(c.ID, "not-the-secret", form)
		if st != 401 || out["error"] != "invalid_client" {
			t.Errorf("%d %v", st, out)
		}
	})
	t.Run("ErrAlgNoneAssertion", func(t *testing.T) {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		c := e.jwtClient(&key.PublicKey)
		st, out := e.tokenRequest("", "", assertionForm(form, unsignedAssertion(c.ID, e.issuer)))
		if st != 401 || out["error"] != "invalid_client" {
			t.Errorf("%d %v", st, out)
		}
	})
	t.Run("ErrHS256Assertion", func(t *testing.T) {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		c := e.jwtClient(&key.PublicKey)
		// Signed with HMAC keyed by the public key's bytes: the classic
		// alg-confusion attack.
		st, out := e.tokenRequest("", "", assertionForm(form, hs256Assertion(c.ID, e.issuer, key.PublicKey.N.Bytes())))
		if st != 401 || out["error"] != "invalid_client" {
			t.Errorf("%d %v", st, out)
		}
	})
	t.Run("ErrAssertionFromOtherKey", func(t *testing.T) {
		key, _ := rsa.GenerateKey(rand.Reader, 2048)
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		c := e.jwtClient(&key.PublicKey)
		st, out := e.tokenRequest("", "", assertionForm(form, signAssertion(t, josev4.RS256, other, c.ID, e.issuer)))
		if st != 401 || out["error"] != "invalid_client" {
			t.Errorf("%d %v", st, out)
		}
	})
	t.Run("ErrScopeNotAllowed", func(t *testing.T) {
		c, secret := e.mustClient(serviceSpec("client_secret_basic"))
		st, out := e.tokenRequest(c.ID, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}})
		if st != 400 || out["error"] != "invalid_scope" {
			t.Errorf("%d %v", st, out)
		}
	})
}

// TestIntrospection_Callers: a resource server with scope introspect may
// introspect any token; another client may not; no credentials is 401.
func TestIntrospection_Callers(t *testing.T) {
	e := newEnv(t)
	rs, rsSecret := e.mustClient(serviceSpec("client_secret_basic"))
	other, otherSecret := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"credits:read"}})
	web, webSecret := e.webClient()
	tok := e.codeFlow(web.ID, webSecret, "openid offline_access")
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)

	// An unrelated client learns nothing: the answer for a live token it may
	// not see is the answer for a token that does not exist, for an access
	// token (before and after the answer is cached) and a refresh token.
	unrelated := func(name, token string) {
		t.Helper()
		st, out := e.postJSON("/oauth2/introspect", other.ID, otherSecret, url.Values{"token": {token}})
		stUnknown, outUnknown := e.postJSON("/oauth2/introspect", other.ID, otherSecret, url.Values{"token": {token + "x"}})
		if st != 200 || len(out) != 1 || out["active"] != false || stUnknown != st || !reflect.DeepEqual(out, outUnknown) {
			t.Errorf("unrelated client, %s: %d %v; unknown token: %d %v", name, st, out, stUnknown, outUnknown)
		}
	}
	unrelated("access token", at)
	unrelated("refresh token", rt)
	if in := e.introspect(rs.ID, rsSecret, at); in["active"] != true || in["client_id"] != web.ID {
		t.Errorf("resource server: %v", in)
	}
	if in := e.introspect(rs.ID, rsSecret, rt); in["active"] != true || in["client_id"] != web.ID {
		t.Errorf("resource server, refresh token: %v", in)
	}
	unrelated("access token, answer cached", at)
	if st, out := e.postJSON("/oauth2/introspect", "", "", url.Values{"token": {at}}); st != 401 {
		t.Errorf("anonymous: %d %v", st, out)
	}
	if st, out := e.postJSON("/oauth2/introspect", rs.ID, "wrong", url.Values{"token": {at}}); st != 401 {
		t.Errorf("wrong secret: %d %v", st, out)
	}
}

func (e *env) jwtClient(pub *rsa.PublicKey) *clientRef {
	e.t.Helper()
	jwks, _ := json.Marshal(josev4.JSONWebKeySet{Keys: []josev4.JSONWebKey{{Key: pub, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	spec := serviceSpec("private_key_jwt")
	spec.JWKS = jwks
	c, secret := e.mustClient(spec)
	if secret != "" {
		e.t.Fatal("private_key_jwt client got a secret")
	}
	return &clientRef{ID: c.ID}
}

type clientRef struct{ ID string }

func assertionForm(base url.Values, assertion string) url.Values {
	f := url.Values{"client_assertion_type": {assertionType}, "client_assertion": {assertion}}
	for k, v := range base {
		f[k] = v
	}
	return f
}

func assertionClaims(clientID, issuer string) josejwt.Claims {
	now := time.Now()
	return josejwt.Claims{Issuer: clientID, Subject: clientID, Audience: josejwt.Audience{issuer + "/oauth2/token"},
		ID: randString(), IssuedAt: josejwt.NewNumericDate(now), Expiry: josejwt.NewNumericDate(now.Add(time.Minute))}
}

func signAssertion(t *testing.T, alg josev4.SignatureAlgorithm, key any, clientID, issuer string) string {
	t.Helper()
	sig, err := josev4.NewSigner(josev4.SigningKey{Algorithm: alg, Key: key}, (&josev4.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := josejwt.Signed(sig).Claims(assertionClaims(clientID, issuer)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func unsignedAssertion(clientID, issuer string) string {
	return b64json(map[string]string{"alg": "none", "typ": "JWT", "kid": "k1"}) + "." + b64json(assertionClaims(clientID, issuer)) + "."
}

func hs256Assertion(clientID, issuer string, key []byte) string {
	in := b64json(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "k1"}) + "." + b64json(assertionClaims(clientID, issuer))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// foreignToken is an access-token-shaped JWT signed by a key authd never
// published.
func foreignToken(t *testing.T, e *env) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sig, _ := josev4.NewSigner(josev4.SigningKey{Algorithm: josev4.ES256, Key: key},
		(&josev4.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "not-ours"))
	now := time.Now()
	s, err := josejwt.Signed(sig).Claims(map[string]any{"iss": e.issuer, "sub": e.userID, "client_id": "x",
		"scope": "openid", "roles": []string{"admin"}, "jti": randString(),
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
