package fositetest

import (
	"context"
	"encoding/json"

	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/fositestore"
)

// An EC P-256 public key as a client would register it for private_key_jwt.
const testJWKS = `{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig",
"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`

var clientCases = []testCase{
	{"CreateGet/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		want := &fositestore.Client{
			ID: "spa", Name: "SPA", Public: true, FirstParty: true,
			RedirectURIs:             []string{"https://spa.test/cb", "http://127.0.0.1/cb"},
			PostLogoutRedirectURIs:   []string{"https://spa.test/bye"},
			GrantTypes:               []string{"authorization_code", "refresh_token"},
			ResponseTypes:            []string{"code"},
			Scopes:                   []string{"openid", "offline_access"},
			Audience:                 []string{"https://api.test"},
			IDTokenSignedResponseAlg: "ES256",
		}
		mustNil(t, "create", f.st.CreateClient(f.ctx, want))
		if want.CreatedAt.IsZero() || want.UpdatedAt.IsZero() {
			t.Error("CreateClient did not set CreatedAt/UpdatedAt")
		}
		got, err := f.st.Client(f.ctx, "spa")
		mustNil(t, "get", err)
		if a, b := mustJSON(t, got), mustJSON(t, want); a != b {
			t.Errorf("client round trip:\n got  %s\n want %s", a, b)
		}
		if got.GetTokenEndpointAuthMethod() != "none" || got.GetHashedSecret() != nil || !got.IsPublic() {
			t.Errorf("public client: method %q, secret %x, public %v", got.GetTokenEndpointAuthMethod(), got.GetHashedSecret(), got.IsPublic())
		}
		fc, err := f.st.GetClient(f.ctx, "spa")
		mustNil(t, "GetClient", err)
		if _, ok := fc.(fosite.OpenIDConnectClient); !ok {
			t.Errorf("GetClient returned %T, not a fosite.OpenIDConnectClient: auth methods would not be enforced", fc)
		}
	}},
	{"CreateGet/Confidential", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		c, err := f.st.Client(f.ctx, "client")
		mustNil(t, "get", err)
		if c.GetTokenEndpointAuthMethod() != "client_secret_basic" {
			t.Errorf("default auth method %q, want client_secret_basic", c.GetTokenEndpointAuthMethod())
		}
		mustNil(t, "secret matches", fositestore.SHA256Hasher{}.Compare(f.ctx, c.GetHashedSecret(), []byte("secret-client")))
		if !c.GetGrantTypes().Has("client_credentials") || !c.GetScopes().Has("offline_access") {
			t.Errorf("grants %v scopes %v", c.GetGrantTypes(), c.GetScopes())
		}
	}},
	{"CreateGet/JWKS", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		c := &fositestore.Client{ID: "svc", TokenEndpointAuthMethod: "private_key_jwt",
			TokenEndpointAuthSigningAlg: "ES256", JWKS: json.RawMessage(testJWKS), GrantTypes: []string{"client_credentials"}}
		mustNil(t, "create", f.st.CreateClient(f.ctx, c))
		got, err := f.st.Client(f.ctx, "svc")
		mustNil(t, "get", err)
		set := got.GetJSONWebKeys()
		if set == nil || len(set.Key("k1")) != 1 || !set.Keys[0].Valid() {
			t.Fatalf("JSONWebKeys not converted: %+v", set)
		}
		if got.GetTokenEndpointAuthMethod() != "private_key_jwt" || got.GetTokenEndpointAuthSigningAlgorithm() != "ES256" {
			t.Errorf("method %q alg %q", got.GetTokenEndpointAuthMethod(), got.GetTokenEndpointAuthSigningAlgorithm())
		}
	}},
	{"Create/ErrClientExists", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "duplicate", f.st.CreateClient(f.ctx, &fositestore.Client{ID: "client"}), fositestore.ErrClientExists)
	}},
	{"Create/InvalidJWKS", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		err := f.st.CreateClient(f.ctx, &fositestore.Client{ID: "bad", JWKS: json.RawMessage(`{"keys":"nope"}`)})
		if err == nil {
			t.Fatal("invalid JWKS accepted")
		}
		mustErr(t, "not stored", errOnly(f.st.Client(f.ctx, "bad")), fositestore.ErrNotFound)
	}},
	{"Get/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		_, err := f.st.GetClient(f.ctx, "nope")
		mustErr(t, "GetClient", err, fosite.ErrNotFound)
		mustErr(t, "GetClient", err, storage.ErrNotFound)
		mustErr(t, "Client", errOnly(f.st.Client(f.ctx, "nope")), fositestore.ErrNotFound)
	}},
	{"Update/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		c, err := f.st.Client(f.ctx, "client")
		mustNil(t, "get", err)
		c.Name, c.RedirectURIs, c.TokenEndpointAuthMethod = "Renamed", []string{"https://new.test/cb"}, "client_secret_post"
		mustNil(t, "update", f.st.UpdateClient(f.ctx, c))
		got, err := f.st.Client(f.ctx, "client")
		mustNil(t, "get", err)
		if got.Name != "Renamed" || len(got.RedirectURIs) != 1 || got.RedirectURIs[0] != "https://new.test/cb" ||
			got.GetTokenEndpointAuthMethod() != "client_secret_post" || got.GetHashedSecret() == nil {
			t.Errorf("update not applied: %+v", got)
		}
		if !got.CreatedAt.Equal(c.CreatedAt) {
			t.Errorf("CreatedAt changed: %v -> %v", c.CreatedAt, got.CreatedAt)
		}
	}},
	{"Update/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "update", f.st.UpdateClient(f.ctx, &fositestore.Client{ID: "nope"}), fositestore.ErrNotFound)
	}},
	{"Delete/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create token", f.st.CreateAccessTokenSession(f.ctx, sig, f.request("alice")))
		mustNil(t, "delete", f.st.DeleteClient(f.ctx, "client"))
		mustErr(t, "get client", errOnly(f.st.GetClient(f.ctx, "client")), fosite.ErrNotFound)
		// A deleted client kills its tokens.
		mustErr(t, "get token", errOnly(f.st.GetAccessTokenSession(f.ctx, sig, EmptySession())), fosite.ErrNotFound)
	}},
	{"Delete/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "delete", f.st.DeleteClient(f.ctx, "nope"), fositestore.ErrNotFound)
	}},
	{"List/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		MustCreateClient(t, f.st, "second")
		list, err := f.st.ListClients(f.ctx)
		mustNil(t, "list", err)
		if len(list) != 2 || list[0].ID != "client" || list[1].ID != "second" {
			t.Fatalf("list: %v", ids(list))
		}
	}},
	{"List/Empty", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustNil(t, "delete", f.st.DeleteClient(f.ctx, "client"))
		list, err := f.st.ListClients(f.ctx)
		mustNil(t, "list", err)
		if list == nil || len(list) != 0 {
			t.Fatalf("list: %#v, want empty non-nil", list)
		}
	}},
	{"SHA256Hasher", func(t *testing.T, newStore NewStoreFunc) {
		h, ctx := fositestore.SHA256Hasher{}, context.Background()
		hash, err := h.Hash(ctx, []byte("s3cret"))
		mustNil(t, "hash", err)
		if len(hash) != 32 {
			t.Fatalf("hash length %d", len(hash))
		}
		mustNil(t, "compare", h.Compare(ctx, hash, []byte("s3cret")))
		mustErr(t, "wrong secret", h.Compare(ctx, hash, []byte("s3cres")), fositestore.ErrSecretMismatch)
		mustErr(t, "no hash", h.Compare(ctx, nil, []byte("")), fositestore.ErrSecretMismatch)
	}},
}

var jtiCases = []testCase{
	{"UnknownIsValid", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustNil(t, "valid", f.st.ClientAssertionJWTValid(f.ctx, "jti-1"))
	}},
	{"ErrJTIKnown", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustNil(t, "set", f.st.SetClientAssertionJWT(f.ctx, "jti-1", f.clock.Now().Add(time.Minute)))
		mustErr(t, "valid", f.st.ClientAssertionJWTValid(f.ctx, "jti-1"), fosite.ErrJTIKnown)
		mustErr(t, "set again", f.st.SetClientAssertionJWT(f.ctx, "jti-1", f.clock.Now().Add(time.Minute)), fosite.ErrJTIKnown)
		mustNil(t, "other jti", f.st.ClientAssertionJWTValid(f.ctx, "jti-2"))
	}},
	{"ExpiredIsValid", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustNil(t, "set", f.st.SetClientAssertionJWT(f.ctx, "jti-1", f.clock.Now().Add(time.Minute)))
		f.clock.Advance(2 * time.Minute)
		mustNil(t, "valid after expiry", f.st.ClientAssertionJWTValid(f.ctx, "jti-1"))
		mustNil(t, "set after expiry", f.st.SetClientAssertionJWT(f.ctx, "jti-1", f.clock.Now().Add(time.Minute)))
		mustErr(t, "known again", f.st.ClientAssertionJWTValid(f.ctx, "jti-1"), fosite.ErrJTIKnown)
	}},
}

func errOnly[T any](_ T, err error) error { return err }

func ids(list []*fositestore.Client) []string {
	out := []string{}
	for _, c := range list {
		out = append(out, c.ID)
	}
	return out
}
