package fositetest

import (
	"strings"
	"testing"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/authd/authd/storage/fositestore"
)

var codeCases = []testCase{
	{"CreateGet/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateAuthorizeCodeSession(f.ctx, sig, req))
		sess := EmptySession()
		got, err := f.st.GetAuthorizeCodeSession(f.ctx, sig, sess)
		mustNil(t, "get", err)
		mustSameRequest(t, got, req)
		if got.GetSession() != fosite.Session(sess) {
			t.Error("the stored session must be decoded into the caller's session value")
		}
	}},
	{"Get/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "get", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, "nope", EmptySession())), fosite.ErrNotFound)
	}},
	{"Get/NilSession", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateAuthorizeCodeSession(f.ctx, sig, f.request("alice")))
		got, err := f.st.GetAuthorizeCodeSession(f.ctx, sig, nil)
		mustNil(t, "get", err)
		if got.GetSession() != nil {
			t.Errorf("session %v, want nil", got.GetSession())
		}
	}},
	{"Invalidate/ReturnsRequesterWithErrInvalidatedAuthorizeCode", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateAuthorizeCodeSession(f.ctx, sig, req))
		mustNil(t, "invalidate", f.st.InvalidateAuthorizeCodeSession(f.ctx, sig))
		got, err := f.st.GetAuthorizeCodeSession(f.ctx, sig, EmptySession())
		mustErr(t, "get used code", err, fosite.ErrInvalidatedAuthorizeCode)
		// fosite revokes the first exchange's tokens by this requester's id.
		mustSameRequest(t, got, req)
	}},
	{"Invalidate/Twice", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateAuthorizeCodeSession(f.ctx, sig, f.request("alice")))
		mustNil(t, "first", f.st.InvalidateAuthorizeCodeSession(f.ctx, sig))
		mustErr(t, "second", f.st.InvalidateAuthorizeCodeSession(f.ctx, sig), fosite.ErrInvalidatedAuthorizeCode)
	}},
	{"Invalidate/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "invalidate", f.st.InvalidateAuthorizeCodeSession(f.ctx, "nope"), fosite.ErrNotFound)
	}},
	{"Create/UnknownClient", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		req := NewRequest(&fositestore.Client{ID: "ghost"}, NewSession("alice", f.clock.Now()), f.clock.Now())
		if err := f.st.CreateAuthorizeCodeSession(f.ctx, RandomString(), req); err == nil {
			t.Fatal("a code for an unregistered client was stored")
		}
	}},
}

var accessCases = []testCase{
	{"CreateGet/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		// JWT access-token signatures are long; keys are hashed, so any length fits.
		sig, req := strings.Repeat("s", 2000), f.request("alice")
		mustNil(t, "create", f.st.CreateAccessTokenSession(f.ctx, sig, req))
		got, err := f.st.GetAccessTokenSession(f.ctx, sig, EmptySession())
		mustNil(t, "get", err)
		mustSameRequest(t, got, req)
	}},
	{"Get/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "get", errOnly(f.st.GetAccessTokenSession(f.ctx, "nope", EmptySession())), fosite.ErrNotFound)
	}},
	{"Get/NilSession", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateAccessTokenSession(f.ctx, sig, f.request("alice")))
		got, err := f.st.GetAccessTokenSession(f.ctx, sig, nil)
		mustNil(t, "get", err)
		if got.GetSession() != nil || got.GetClient().GetID() != "client" {
			t.Errorf("session %v client %v", got.GetSession(), got.GetClient())
		}
	}},
	{"Delete/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateAccessTokenSession(f.ctx, sig, f.request("alice")))
		mustNil(t, "delete", f.st.DeleteAccessTokenSession(f.ctx, sig))
		mustErr(t, "get", errOnly(f.st.GetAccessTokenSession(f.ctx, sig, EmptySession())), fosite.ErrNotFound)
		mustNil(t, "delete again is not an error", f.st.DeleteAccessTokenSession(f.ctx, sig))
	}},
	{"Revoke/WholeFamily", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		family, other := f.request("alice"), f.request("alice")
		a1, a2, a3 := RandomString(), RandomString(), RandomString()
		mustNil(t, "create 1", f.st.CreateAccessTokenSession(f.ctx, a1, family))
		mustNil(t, "create 2", f.st.CreateAccessTokenSession(f.ctx, a2, family)) // same request_id: not unique
		mustNil(t, "create other", f.st.CreateAccessTokenSession(f.ctx, a3, other))
		mustNil(t, "revoke", f.st.RevokeAccessToken(f.ctx, family.ID))
		mustErr(t, "get 1", errOnly(f.st.GetAccessTokenSession(f.ctx, a1, nil)), fosite.ErrNotFound)
		mustErr(t, "get 2", errOnly(f.st.GetAccessTokenSession(f.ctx, a2, nil)), fosite.ErrNotFound)
		mustNil(t, "other family untouched", errOnly(f.st.GetAccessTokenSession(f.ctx, a3, nil)))
		mustNil(t, "revoke unknown family", f.st.RevokeAccessToken(f.ctx, "nope"))
	}},
}

var refreshCases = []testCase{
	{"CreateGet/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, RandomString(), req))
		got, err := f.st.GetRefreshTokenSession(f.ctx, sig, EmptySession())
		mustNil(t, "get", err)
		mustSameRequest(t, got, req)
	}},
	{"Get/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "get", errOnly(f.st.GetRefreshTokenSession(f.ctx, "nope", EmptySession())), fosite.ErrNotFound)
	}},
	{"Rotate/ReturnsRequesterWithErrInactiveToken", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		mustNil(t, "rotate", f.st.RotateRefreshToken(f.ctx, req.ID, sig))
		got, err := f.st.GetRefreshTokenSession(f.ctx, sig, EmptySession())
		mustErr(t, "get used token", err, fosite.ErrInactiveToken)
		// fosite calls GetID() on it to revoke the family: it must not be nil.
		mustSameRequest(t, got, req)
		got, err = f.st.GetRefreshTokenSession(f.ctx, sig, nil)
		mustErr(t, "get used token, nil session", err, fosite.ErrInactiveToken)
		if got == nil || got.GetID() != req.ID || got.GetSession() != nil {
			t.Fatalf("revocation path: requester %v", got)
		}
	}},
	{"Rotate/Twice", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		mustNil(t, "rotate", f.st.RotateRefreshToken(f.ctx, req.ID, sig))
		mustErr(t, "rotate again", f.st.RotateRefreshToken(f.ctx, req.ID, sig), fosite.ErrInactiveToken)
	}},
	{"Rotate/DoesNotTouchWinnersNewToken", func(t *testing.T, newStore NewStoreFunc) {
		// The Hydra race (FOSITE-NOTES §4): a late loser rotating the old
		// token must not deactivate the token the winner just issued.
		f := newFixture(t, newStore)
		old, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, old, "", req))
		mustNil(t, "winner rotates", f.st.RotateRefreshToken(f.ctx, req.ID, old))
		next := RandomString()
		mustNil(t, "winner issues", f.st.CreateRefreshTokenSession(f.ctx, next, "", req))
		mustErr(t, "loser rotates", f.st.RotateRefreshToken(f.ctx, req.ID, old), fosite.ErrInactiveToken)
		mustNil(t, "winner's token still active", errOnly(f.st.GetRefreshTokenSession(f.ctx, next, nil)))
	}},
	{"Rotate/DeletesFamilyAccessTokens", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		rt, at, req := RandomString(), RandomString(), f.request("alice")
		mustNil(t, "create at", f.st.CreateAccessTokenSession(f.ctx, at, req))
		mustNil(t, "create rt", f.st.CreateRefreshTokenSession(f.ctx, rt, at, req))
		mustNil(t, "rotate", f.st.RotateRefreshToken(f.ctx, req.ID, rt))
		mustErr(t, "old access token", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
	}},
	{"Rotate/ErrInactiveTokenWhenMissing", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "rotate", f.st.RotateRefreshToken(f.ctx, "nope", "nope"), fosite.ErrInactiveToken)
	}},
	{"Delete/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", f.request("alice")))
		mustNil(t, "delete", f.st.DeleteRefreshTokenSession(f.ctx, sig))
		mustErr(t, "get", errOnly(f.st.GetRefreshTokenSession(f.ctx, sig, nil)), fosite.ErrNotFound)
		mustNil(t, "delete again is not an error", f.st.DeleteRefreshTokenSession(f.ctx, sig))
	}},
	{"Revoke/WholeFamily", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		family, other := f.request("alice"), f.request("alice")
		r1, r2, r3 := RandomString(), RandomString(), RandomString()
		mustNil(t, "create 1", f.st.CreateRefreshTokenSession(f.ctx, r1, "", family))
		mustNil(t, "rotate 1", f.st.RotateRefreshToken(f.ctx, family.ID, r1))
		mustNil(t, "create 2", f.st.CreateRefreshTokenSession(f.ctx, r2, "", family))
		mustNil(t, "create other", f.st.CreateRefreshTokenSession(f.ctx, r3, "", other))
		mustNil(t, "revoke", f.st.RevokeRefreshToken(f.ctx, family.ID))
		for _, sig := range []string{r1, r2} {
			got, err := f.st.GetRefreshTokenSession(f.ctx, sig, nil)
			mustErr(t, "revoked", err, fosite.ErrInactiveToken)
			if got == nil || got.GetID() != family.ID {
				t.Fatalf("revoked token's requester %v", got)
			}
		}
		mustNil(t, "other family untouched", errOnly(f.st.GetRefreshTokenSession(f.ctx, r3, nil)))
		mustNil(t, "revoke unknown family", f.st.RevokeRefreshToken(f.ctx, "nope"))
	}},
}

var oidcCases = []testCase{
	{"CreateGet/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		code, req := "ory_ac_"+RandomString()+"."+RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateOpenIDConnectSession(f.ctx, code, req))
		// fosite passes the access request, whose session is the decode target.
		target := NewRequest(f.client, EmptySession(), f.clock.Now())
		got, err := f.st.GetOpenIDConnectSession(f.ctx, code, target)
		mustNil(t, "get", err)
		mustSameRequest(t, got, req)
		if _, ok := got.GetSession().(openid.Session); !ok {
			t.Errorf("session %T is not an openid.Session", got.GetSession())
		}
	}},
	{"Get/ErrNoSessionFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		_, err := f.st.GetOpenIDConnectSession(f.ctx, "nope", NewRequest(f.client, EmptySession(), f.clock.Now()))
		mustErr(t, "get", err, openid.ErrNoSessionFound)
	}},
	{"Delete/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		code := RandomString()
		mustNil(t, "create", f.st.CreateOpenIDConnectSession(f.ctx, code, f.request("alice")))
		mustNil(t, "delete", f.st.DeleteOpenIDConnectSession(f.ctx, code))
		_, err := f.st.GetOpenIDConnectSession(f.ctx, code, NewRequest(f.client, EmptySession(), f.clock.Now()))
		mustErr(t, "get", err, openid.ErrNoSessionFound)
	}},
}

var pkceCases = []testCase{
	{"CreateGet/OK", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		req.Form.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
		req.Form.Set("code_challenge_method", "S256")
		mustNil(t, "create", f.st.CreatePKCERequestSession(f.ctx, sig, req))
		got, err := f.st.GetPKCERequestSession(f.ctx, sig, EmptySession())
		mustNil(t, "get", err)
		mustSameRequest(t, got, req)
	}},
	{"Get/ErrNotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "get", errOnly(f.st.GetPKCERequestSession(f.ctx, "nope", EmptySession())), fosite.ErrNotFound)
	}},
	{"Delete/SoftDeleteBlocksSecondGet", func(t *testing.T, newStore NewStoreFunc) {
		// fosite deletes the PKCE row before checking the verifier; if the
		// second attempt saw ErrNotFound it would be treated as "no PKCE"
		// and succeed without a verifier (fosite PR #883).
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create", f.st.CreatePKCERequestSession(f.ctx, sig, f.request("alice")))
		mustNil(t, "delete", f.st.DeletePKCERequestSession(f.ctx, sig))
		_, err := f.st.GetPKCERequestSession(f.ctx, sig, EmptySession())
		if err == nil || errorsIsNotFound(err) {
			t.Fatalf("get after delete: %v; want an error other than ErrNotFound", err)
		}
		mustErr(t, "get after delete", err, fositestore.ErrPKCEConsumed)
	}},
}

func errorsIsNotFound(err error) bool {
	return err != nil && (isErr(err, fosite.ErrNotFound) || isErr(err, fositestore.ErrNotFound))
}
