package main

// OAuth security checklist, part 3: RFC 8725 (JWT BCP) §2.1/§3.1 and RFC 9700
// §2.5: "alg": "none" and algorithm/key confusion (HS256 keyed with a public
// key) against every JWT authd accepts: client assertions
// (private_key_jwt), id_token_hint at logout, and bearer access tokens at
// /api/v1 and /userinfo.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	josev4 "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/authd/authd/oauth/clients"
)

func b64seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// forgeries returns tokens carrying claims that no holder of authd's or the
// client's private key signed: alg none in its spellings, and HS256 keyed
// with every usual encoding of the public keys (the key-confusion attack).
func forgeries(t *testing.T, claims map[string]any, typ, kid string, pubs ...any) map[string]string {
	t.Helper()
	out := map[string]string{}
	body := b64seg(claims)
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		h := b64seg(map[string]any{"alg": alg, "typ": typ, "kid": kid})
		out["alg="+alg] = h + "." + body + "."
		out["alg="+alg+"+junk-signature"] = h + "." + body + ".c2lnbmF0dXJl"
	}
	for i, pub := range pubs {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		jwk, _ := json.Marshal(josev4.JSONWebKey{Key: pub, KeyID: kid})
		secrets := map[string][]byte{
			"pem": pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "der": der, "jwk": jwk,
		}
		if r, ok := pub.(*rsa.PublicKey); ok {
			secrets["pkcs1-pem"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(r)})
			secrets["modulus"] = r.N.Bytes()
		}
		if ec, ok := pub.(*ecdsa.PublicKey); ok {
			b, _ := ec.Bytes()
			secrets["point"] = b
		}
		for name, secret := range secrets {
			for _, alg := range []string{"HS256", "HS384", "HS512"} {
				if alg != "HS256" && name != "pem" {
					continue
				}
				in := b64seg(map[string]any{"alg": alg, "typ": typ, "kid": kid}) + "." + body
				m := hmac.New(sha256.New, secret)
				m.Write([]byte(in))
				out[alg+"/key"+string(rune('0'+i))+"-"+name] = in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
			}
		}
	}
	return out
}

// jwksKeys fetches authd's published public keys by kid.
func (e *secEnv) jwksKeys(t *testing.T) map[string]any {
	t.Helper()
	_, body := get(t, e.URL+"/.well-known/jwks.json")
	var set josev4.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("jwks: %v %s", err, body)
	}
	out := map[string]any{}
	for _, k := range set.Keys {
		out[k.KeyID] = k.Key
	}
	return out
}

func claimsOf(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	return jwtHeader(t, tok), jwtClaims(t, tok)
}

func TestRFC8725_3_1_AlgNoneAndKeyConfusion(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	e.mustUser("jwt@example.com")
	id, secret := e.webClient()
	keys := e.jwksKeys(t)
	var pubs []any
	for _, k := range keys {
		pubs = append(pubs, k)
	}

	t.Run("ClientAssertion", func(t *testing.T) {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		jwks, _ := json.Marshal(josev4.JSONWebKeySet{Keys: []josev4.JSONWebKey{{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		cid, _ := e.mustClient(clients.Spec{GrantTypes: []string{"client_credentials"}, Scopes: []string{"introspect"},
			TokenEndpointAuthMethod: "private_key_jwt", JWKS: jwks})
		claims := func() map[string]any {
			now := time.Now()
			return map[string]any{"iss": cid, "sub": cid, "aud": e.URL + "/oauth2/token", "jti": secRand(),
				"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
		}
		post := func(assertion string) *http.Response {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cid},
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/oauth2/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return e.serveFrom(req, e.nextIPHost())
		}
		for name, forged := range forgeries(t, claims(), "JWT", "k1", &priv.PublicKey) {
			if resp := post(forged); resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d", name, resp.StatusCode)
			}
		}
		sig, _ := josev4.NewSigner(josev4.SigningKey{Algorithm: josev4.RS256, Key: priv}, (&josev4.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		valid, err := josejwt.Signed(sig).Claims(claims()).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		if resp := post(valid); resp.StatusCode != http.StatusOK {
			t.Fatalf("a correctly signed assertion: %d", resp.StatusCode)
		}
	})

	b := e.browser()
	tok := e.tokens(b, id, secret, "jwt@example.com")

	t.Run("BearerAccessToken", func(t *testing.T) {
		hdr, claims := claimsOf(t, tok["access_token"].(string))
		kid, _ := hdr["kid"].(string)
		cases := forgeries(t, claims, "at+jwt", kid, pubs...)
		cases["id-token-as-access-token"] = tok["id_token"].(string)
		// Signed with a key authd never published, under authd's kid.
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sig, _ := josev4.NewSigner(josev4.SigningKey{Algorithm: josev4.ES256, Key: other}, (&josev4.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
		cases["foreign-key-same-kid"], _ = josejwt.Signed(sig).Claims(claims).Serialize()
		for _, path := range []string{"/api/v1/me", "/userinfo", "/api/v1/credits"} {
			for name, forged := range cases {
				req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+forged)
				if resp := e.serve(req); resp.Code != http.StatusUnauthorized {
					t.Errorf("%s %s: %d %s", path, name, resp.Code, resp.Body)
				}
			}
			req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
			req.Header.Set("Authorization", "Bearer "+tok["access_token"].(string))
			if resp := e.serve(req); resp.Code != http.StatusOK && resp.Code != http.StatusForbidden {
				t.Errorf("%s with the real token: %d %s", path, resp.Code, resp.Body)
			}
		}
	})

	t.Run("IDTokenHintAtLogout", func(t *testing.T) {
		hdr, claims := claimsOf(t, tok["id_token"].(string))
		kid, _ := hdr["kid"].(string)
		for name, forged := range forgeries(t, claims, "JWT", kid, pubs...) {
			req, _ := http.NewRequest(http.MethodGet, e.URL+"/oauth2/logout?id_token_hint="+url.QueryEscape(forged)+
				"&post_logout_redirect_uri="+url.QueryEscape("http://127.0.0.1:9/bye"), nil)
			resp, _ := b.do(req)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("%s: %d Location %q", name, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		if resp, _ := b.get(e.URL + "/account"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a forged id_token_hint ended the session: /account %d", resp.StatusCode)
		}
		resp, _ := b.get(e.URL + "/oauth2/logout?id_token_hint=" + url.QueryEscape(tok["id_token"].(string)) +
			"&post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:9/bye"))
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "http://127.0.0.1:9/bye") {
			t.Fatalf("the real id_token_hint: %d Location %q", resp.StatusCode, loc)
		}
	})
}
