package keys_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/storagetest"
)

func get(tb testing.TB, url string, hdr map[string]string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res, body
}

func TestManager_ServeJWKS(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	cfg := testConfig(c)
	m := mustNewManager(t, db, newSecretsKey(t), cfg)
	mustStart(t, m)
	srv := httptest.NewServer(http.HandlerFunc(m.ServeJWKS))
	t.Cleanup(srv.Close)

	res, body := get(t, srv.URL, nil)
	etag := res.Header.Get("ETag")
	t.Run("OK", func(t *testing.T) {
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=300" {
			t.Errorf("Cache-Control = %q", got)
		}
		if got := res.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type = %q", got)
		}
		if len(etag) < 10 || etag[0] != '"' {
			t.Errorf("ETag = %q, want a strong quoted tag", etag)
		}
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(body, &set); err != nil {
			t.Fatalf("JWKS does not parse with go-jose v4: %v\n%s", err, body)
		}
		if len(set.Keys) != 4 {
			t.Fatalf("want 4 keys, got %d", len(set.Keys))
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || k.Use != "sig" || (k.Algorithm != "ES256" && k.Algorithm != "RS256") || !k.Valid() {
				t.Errorf("bad JWK %+v", k)
			}
			tp, err := k.Thumbprint(cryptoSHA256)
			if err != nil || b64(tp) != k.KeyID {
				t.Errorf("kid %s is not the RFC 7638 thumbprint (%s, %v)", k.KeyID, b64(tp), err)
			}
		}
	})
	t.Run("NotModified", func(t *testing.T) {
		for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
			res, body := get(t, srv.URL, map[string]string{"If-None-Match": inm})
			if res.StatusCode != http.StatusNotModified || len(body) != 0 {
				t.Errorf("If-None-Match %s: status %d, %d bytes", inm, res.StatusCode, len(body))
			}
			if res.Header.Get("ETag") != etag || res.Header.Get("Cache-Control") == "" {
				t.Errorf("304 without ETag/Cache-Control: %v", res.Header)
			}
		}
	})
	t.Run("OtherETag", func(t *testing.T) {
		res, _ := get(t, srv.URL, map[string]string{"If-None-Match": `"stale"`})
		if res.StatusCode != http.StatusOK {
			t.Errorf("status %d", res.StatusCode)
		}
	})
	t.Run("ErrMethod", func(t *testing.T) {
		res, err := http.Post(srv.URL, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: status %d", res.StatusCode)
		}
	})
	t.Run("ChangesOnRotate", func(t *testing.T) {
		c.Advance(settle(cfg))
		if err := m.Rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
		res, _ := get(t, srv.URL, map[string]string{"If-None-Match": etag})
		if res.StatusCode != http.StatusOK || res.Header.Get("ETag") == etag {
			t.Errorf("after Rotate: status %d, ETag %s (was %s)", res.StatusCode, res.Header.Get("ETag"), etag)
		}
	})
}

func TestManager_SignerVerifiesAgainstJWKS(t *testing.T) {
	db := storagetest.NewDB(t)
	m := mustNewManager(t, db, newSecretsKey(t), testConfig(newClock()))
	mustStart(t, m)
	srv := httptest.NewServer(http.HandlerFunc(m.ServeJWKS))
	t.Cleanup(srv.Close)

	for _, alg := range []string{keys.ES256, keys.RS256} {
		t.Run(alg, func(t *testing.T) {
			kid, key, err := m.Signer(alg)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: key},
				(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
			if err != nil {
				t.Fatal(err)
			}
			payload := []byte(`{"sub":"u1","client_id":"c1"}`)
			jws, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			token, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}

			// A resource server: fetch the JWKS, pick the key by kid, verify.
			_, body := get(t, srv.URL, nil)
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(body, &set); err != nil {
				t.Fatal(err)
			}
			parsed, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatal(err)
			}
			found := set.Key(parsed.Signatures[0].Header.KeyID)
			if len(found) != 1 || found[0].Algorithm != alg {
				t.Fatalf("kid %s: %d keys in JWKS", parsed.Signatures[0].Header.KeyID, len(found))
			}
			got, err := parsed.Verify(found[0])
			if err != nil || string(got) != string(payload) {
				t.Fatalf("verify against JWKS: %v", err)
			}
			// PublicKey gives the same answer without HTTP.
			pub, pubAlg, ok := m.PublicKey(kid)
			if !ok || pubAlg != alg {
				t.Fatalf("PublicKey(%s) = %v, %s", kid, ok, pubAlg)
			}
			if _, err := parsed.Verify(pub); err != nil {
				t.Fatalf("verify against PublicKey: %v", err)
			}
		})
	}
}

func BenchmarkServeJWKS(b *testing.B) {
	db := storagetest.NewDB(b)
	m := mustNewManager(b, db, newSecretsKey(b), testConfig(newClock()))
	mustStart(b, m)
	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		m.ServeJWKS(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
