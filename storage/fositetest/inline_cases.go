package fositetest

import (
	"testing"
	"time"

	"github.com/ory/fosite"
)

// rotateWith runs one rotation of sig through a RefreshTx whose new access
// token is stored for atReq and new refresh token for rtReq (fosite passes
// one requester for both); it returns the new refresh and access tokens.
func (f *fixture) rotateWith(sig string, atReq, rtReq *fosite.Request) (rt, at string) {
	f.t.Helper()
	tx := f.begin(sig)
	if rs := tx.State(); !rs.Active {
		f.t.Fatalf("rotate %s: not active: %+v", sig, rs)
	}
	ctx := tx.Context(f.ctx)
	mustNil(f.t, "rotate", f.st.RotateRefreshToken(ctx, rtReq.ID, sig))
	rt, at = RandomString(), RandomString()
	mustNil(f.t, "new access", f.st.CreateAccessTokenSession(ctx, at, atReq))
	mustNil(f.t, "new refresh", f.st.CreateRefreshTokenSession(ctx, rt, at, rtReq))
	mustNil(f.t, "commit", tx.Commit(f.ctx, []byte("blob")))
	return rt, at
}

// accessRows counts the family's rows in oauth2_access.
func (f *fixture) accessRows(family string) int {
	f.t.Helper()
	var n int
	mustNil(f.t, "count access rows", f.st.Querier(f.ctx).QueryRow(f.ctx,
		`SELECT count(*) FROM oauth2_access WHERE request_id = $1`, family).Scan(&n))
	return n
}

// mustLiveAccess fails unless the access token at is live and of family.
func (f *fixture) mustLiveAccess(what, at, family string) {
	f.t.Helper()
	got, err := f.st.GetAccessTokenSession(f.ctx, at, EmptySession())
	mustNil(f.t, what, err)
	if got.GetID() != family {
		f.t.Fatalf("%s: family %q, want %q", what, got.GetID(), family)
	}
}

// A rotation's access token is kept in its refresh token's row (no row of
// its own), and is live exactly while an access token of its own row would
// be: until the next rotation, a revocation of the family, of the access
// token alone, of the user or of the client.
var inlineCases = []testCase{
	{"LivesUntilTheNextRotation", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		req := f.request("alice")
		at0, rt0 := RandomString(), RandomString()
		mustNil(t, "at0", f.st.CreateAccessTokenSession(f.ctx, at0, req))
		mustNil(t, "rt0", f.st.CreateRefreshTokenSession(f.ctx, rt0, at0, req))

		rt1, at1 := f.rotateWith(rt0, req, req)
		mustErr(t, "at0 after rotation", errOnly(f.st.GetAccessTokenSession(f.ctx, at0, nil)), fosite.ErrNotFound)
		got, err := f.st.GetAccessTokenSession(f.ctx, at1, EmptySession())
		mustNil(t, "at1", err)
		mustSameRequest(t, got, req)
		if n := f.accessRows(req.ID); n != 0 {
			t.Fatalf("%d access rows, want the rotation's access token inline", n)
		}

		_, at2 := f.rotateWith(rt1, req, req)
		mustErr(t, "at1 after rotation", errOnly(f.st.GetAccessTokenSession(f.ctx, at1, nil)), fosite.ErrNotFound)
		f.mustLiveAccess("at2", at2, req.ID)
	}},
	{"RevokedAloneOrWithTheFamily", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		req := f.request("alice")
		rt0 := RandomString()
		mustNil(t, "rt0", f.st.CreateRefreshTokenSession(f.ctx, rt0, "", req))

		// RFC 7009 on the access token: fosite revokes by family.
		rt1, at1 := f.rotateWith(rt0, req, req)
		mustNil(t, "revoke access", f.st.RevokeAccessToken(f.ctx, req.ID))
		mustErr(t, "at1 revoked", errOnly(f.st.GetAccessTokenSession(f.ctx, at1, nil)), fosite.ErrNotFound)
		mustNil(t, "rt1 stays valid", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt1, nil)))

		// The refresh token still rotates; its new access token is live.
		rt2, at2 := f.rotateWith(rt1, req, req)
		f.mustLiveAccess("at2", at2, req.ID)
		mustErr(t, "at1 still revoked", errOnly(f.st.GetAccessTokenSession(f.ctx, at1, nil)), fosite.ErrNotFound)

		mustNil(t, "delete at2", f.st.DeleteAccessTokenSession(f.ctx, at2))
		mustErr(t, "at2 deleted", errOnly(f.st.GetAccessTokenSession(f.ctx, at2, nil)), fosite.ErrNotFound)
		mustNil(t, "rt2 stays valid", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt2, nil)))

		_, at3 := f.rotateWith(rt2, req, req)
		f.mustLiveAccess("at3", at3, req.ID)
		mustNil(t, "revoke family", f.st.RevokeRefreshToken(f.ctx, req.ID))
		mustErr(t, "at3 with its family", errOnly(f.st.GetAccessTokenSession(f.ctx, at3, nil)), fosite.ErrNotFound)
	}},
	{"RevokedWithUserSessionAndClient", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		for _, revoke := range []func(*fosite.Request) error{
			func(*fosite.Request) error { return f.st.RevokeSubject(f.ctx, "alice") },
			func(*fosite.Request) error { return f.st.RevokeClientTokens(f.ctx, "client") },
			func(*fosite.Request) error { return f.st.RevokeUserClientTokens(f.ctx, "alice", "client") },
		} {
			req, other := f.request("alice"), f.request("bob")
			rt0, ort0 := RandomString(), RandomString()
			mustNil(t, "rt0", f.st.CreateRefreshTokenSession(f.ctx, rt0, "", req))
			_, at := f.rotateWith(rt0, req, req)
			f.mustLiveAccess("at", at, req.ID)
			if err := revoke(req); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			mustErr(t, "at revoked", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
			// Someone else's inline access token is untouched (a user revocation).
			mustNil(t, "other rt0", f.st.CreateRefreshTokenSession(f.ctx, ort0, "", other))
			_, oat := f.rotateWith(ort0, other, other)
			f.mustLiveAccess("other at", oat, other.ID)
		}
	}},
	{"DifferentRequestsKeepTheirRows", func(t *testing.T, newStore NewStoreFunc) {
		// Only an access token that would repeat its refresh token's row
		// goes inline; one stored for another request gets a row.
		f := newFixture(t, newStore)
		req := f.request("alice")
		atReq := *req
		atReq.Session = NewSession("alice", f.clock.Now().Add(time.Minute))
		rt0 := RandomString()
		mustNil(t, "rt0", f.st.CreateRefreshTokenSession(f.ctx, rt0, "", req))
		rt1, at1 := f.rotateWith(rt0, &atReq, req)
		if n := f.accessRows(req.ID); n != 1 {
			t.Fatalf("%d access rows, want 1", n)
		}
		got, err := f.st.GetAccessTokenSession(f.ctx, at1, EmptySession())
		mustNil(t, "at1", err)
		mustSameRequest(t, got, &atReq)
		// Its next rotation deletes that row.
		_, at2 := f.rotateWith(rt1, req, req)
		mustErr(t, "at1 after rotation", errOnly(f.st.GetAccessTokenSession(f.ctx, at1, nil)), fosite.ErrNotFound)
		f.mustLiveAccess("at2", at2, req.ID)
		if n := f.accessRows(req.ID); n != 0 {
			t.Fatalf("%d access rows, want 0", n)
		}
	}},
}
