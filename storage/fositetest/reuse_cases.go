package fositetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
)

// rotateAndSave runs the first use of a refresh token through the token
// endpoint's protocol (package doc of fositestore): lock, rotate, issue,
// save the response, commit.
func (f *fixture) rotateAndSave(sig string, req *fosite.Request, blob []byte) (newSig string) {
	f.t.Helper()
	ctx, rs := f.beginRefresh(sig)
	defer f.st.Rollback(ctx)
	if !rs.Found || !rs.Active || f.st.Replayable(rs) {
		f.t.Fatalf("fresh token: %+v", rs)
	}
	mustNil(f.t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
	newSig, at := RandomString(), RandomString()
	mustNil(f.t, "new access", f.st.CreateAccessTokenSession(ctx, at, req))
	mustNil(f.t, "new refresh", f.st.CreateRefreshTokenSession(ctx, newSig, at, req))
	mustNil(f.t, "save", f.st.SaveRotatedResponse(ctx, sig, blob))
	mustNil(f.t, "commit", f.st.Commit(ctx))
	return newSig
}

// beginRefresh begins the protocol's transaction and locks sig, the way
// f.pipelined says.
func (f *fixture) beginRefresh(sig string) (context.Context, fositestore.RefreshState) {
	f.t.Helper()
	if f.pipelined {
		ctx, rs, err := f.st.BeginRefresh(f.ctx, sig)
		mustNil(f.t, "begin refresh", err)
		return ctx, rs
	}
	ctx, err := f.st.BeginTXWith(f.ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	mustNil(f.t, "begin", err)
	rs, err := f.st.LockRefreshToken(ctx, sig)
	mustNil(f.t, "lock", err)
	return ctx, rs
}

// lock reads the state of sig in a short transaction.
func (f *fixture) lock(sig string) fositestore.RefreshState {
	f.t.Helper()
	var rs fositestore.RefreshState
	mustNil(f.t, "lock tx", f.st.InTxWith(f.ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(ctx context.Context) error {
		var err error
		rs, err = f.st.LockRefreshToken(ctx, sig)
		return err
	}))
	return rs
}

var reuseCases = []testCase{
	{"Lock/ErrNoTransaction", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		mustErr(t, "lock", errOnly(f.st.LockRefreshToken(f.ctx, "x")), fositestore.ErrNoTransaction)
	}},
	{"Lock/NotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		if rs := f.lock("nope"); rs.Found {
			t.Fatalf("missing token: %+v", rs)
		}
	}},
	{"Lock/Active", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", f.request("alice")))
		rs := f.lock(sig)
		if !rs.Found || !rs.Active || rs.ClientID != "client" || !rs.FirstUsedAt.IsZero() || rs.RotatedResponse != nil {
			t.Fatalf("active token: %+v", rs)
		}
	}},
	{"Replay/WithinWindow", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		sig, req, blob := RandomString(), f.request("alice"), []byte("encrypted response #1")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		f.rotateAndSave(sig, req, blob)
		f.clock.Advance(window - time.Second)
		rs := f.lock(sig)
		if !rs.Found || rs.Active || !rs.FirstUsedAt.Equal(f.clock.Now().Add(-(window - time.Second))) {
			t.Fatalf("used token: %+v", rs)
		}
		if !f.st.Replayable(rs) || !bytes.Equal(rs.RotatedResponse, blob) {
			t.Fatalf("want replayable with the saved blob: %+v", rs)
		}
		// Under the marker the used row counts as active (fosite then checks
		// the client), and nothing is revoked.
		got, err := f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(f.ctx), sig, EmptySession())
		mustNil(t, "get with marker", err)
		mustSameRequest(t, got, req)
		// Without it (introspection, or a plain refresh) it is used.
		got, err = f.st.GetRefreshTokenSession(f.ctx, sig, EmptySession())
		mustErr(t, "get without marker", err, fosite.ErrInactiveToken)
		mustSameRequest(t, got, req)
	}},
	{"Replay/AfterWindow", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		f.rotateAndSave(sig, req, []byte("blob"))
		f.clock.Advance(window)
		if rs := f.lock(sig); f.st.Replayable(rs) {
			t.Fatalf("replayable after the window: %+v", rs)
		}
		got, err := f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(f.ctx), sig, EmptySession())
		mustErr(t, "get with marker after window", err, fosite.ErrInactiveToken)
		mustSameRequest(t, got, req)
	}},
	{"Replay/WindowDisabled", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, 0)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		f.rotateAndSave(sig, req, []byte("blob"))
		if rs := f.lock(sig); f.st.Replayable(rs) {
			t.Fatalf("replayable with no window: %+v", rs)
		}
		mustErr(t, "get with marker", errOnly(f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(f.ctx), sig, nil)), fosite.ErrInactiveToken)
	}},
	{"Replay/NoSavedResponse", func(t *testing.T, newStore NewStoreFunc) {
		// Rotated but nothing saved (e.g. a rotation outside the protocol):
		// there is nothing to replay, so it is plain reuse.
		f := newFixture(t, newStore, window)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		mustNil(t, "rotate", f.st.RotateRefreshToken(f.ctx, req.ID, sig))
		if rs := f.lock(sig); f.st.Replayable(rs) {
			t.Fatalf("replayable without a saved response: %+v", rs)
		}
		mustErr(t, "get with marker", errOnly(f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(f.ctx), sig, nil)), fosite.ErrInactiveToken)
	}},
	{"Replay/RevokedFamily", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		f.rotateAndSave(sig, req, []byte("blob"))
		mustNil(t, "revoke", f.st.RevokeRefreshToken(f.ctx, req.ID))
		rs := f.lock(sig)
		if f.st.Replayable(rs) || rs.RotatedResponse != nil {
			t.Fatalf("revoked token still replayable: %+v", rs)
		}
		mustErr(t, "get with marker", errOnly(f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(f.ctx), sig, nil)), fosite.ErrInactiveToken)
	}},
	{"Save/ErrNotFoundUnlessRotated", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", f.request("alice")))
		mustErr(t, "save on active token", f.st.SaveRotatedResponse(f.ctx, sig, []byte("x")), fositestore.ErrNotFound)
		mustErr(t, "save on missing token", f.st.SaveRotatedResponse(f.ctx, "nope", []byte("x")), fositestore.ErrNotFound)
	}},
}

var revokeCases = []testCase{
	{"Subject", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, window)
		alice, bob := f.request("alice"), f.request("bob")
		aAT, aRT, aCode, bAT, bRT := RandomString(), RandomString(), RandomString(), RandomString(), RandomString()
		used := RandomString()
		mustNil(t, "alice at", f.st.CreateAccessTokenSession(f.ctx, aAT, alice))
		mustNil(t, "alice used rt", f.st.CreateRefreshTokenSession(f.ctx, used, aAT, alice))
		aRT = f.rotateAndSave(used, alice, []byte("blob"))
		mustNil(t, "alice at 2", f.st.CreateAccessTokenSession(f.ctx, aAT, alice))
		mustNil(t, "alice code", f.st.CreateAuthorizeCodeSession(f.ctx, aCode, f.request("alice")))
		mustNil(t, "bob at", f.st.CreateAccessTokenSession(f.ctx, bAT, bob))
		mustNil(t, "bob rt", f.st.CreateRefreshTokenSession(f.ctx, bRT, bAT, bob))

		mustNil(t, "revoke alice", f.st.RevokeSubject(f.ctx, "alice"))
		mustErr(t, "alice at", errOnly(f.st.GetAccessTokenSession(f.ctx, aAT, nil)), fosite.ErrNotFound)
		mustErr(t, "alice rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, aRT, nil)), fosite.ErrInactiveToken)
		mustErr(t, "alice used rt, in window", errOnly(f.st.GetRefreshTokenSession(fositestore.WithinReuseWindow(f.ctx), used, nil)), fosite.ErrInactiveToken)
		mustErr(t, "alice code", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, aCode, nil)), fosite.ErrInvalidatedAuthorizeCode)
		mustNil(t, "bob at", errOnly(f.st.GetAccessTokenSession(f.ctx, bAT, nil)))
		mustNil(t, "bob rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, bRT, nil)))
	}},
	{"Client", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, 0)
		other := MustCreateClient(t, f.st, "other")
		mine, theirs := f.request("alice"), NewRequest(other, NewSession("alice", f.clock.Now()), f.clock.Now())
		at1, rt1, at2, rt2 := RandomString(), RandomString(), RandomString(), RandomString()
		mustNil(t, "at1", f.st.CreateAccessTokenSession(f.ctx, at1, mine))
		mustNil(t, "rt1", f.st.CreateRefreshTokenSession(f.ctx, rt1, at1, mine))
		mustNil(t, "at2", f.st.CreateAccessTokenSession(f.ctx, at2, theirs))
		mustNil(t, "rt2", f.st.CreateRefreshTokenSession(f.ctx, rt2, at2, theirs))
		mustNil(t, "revoke client", f.st.RevokeClientTokens(f.ctx, "client"))
		mustErr(t, "at1", errOnly(f.st.GetAccessTokenSession(f.ctx, at1, nil)), fosite.ErrNotFound)
		mustErr(t, "rt1", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt1, nil)), fosite.ErrInactiveToken)
		mustNil(t, "at2", errOnly(f.st.GetAccessTokenSession(f.ctx, at2, nil)))
		mustNil(t, "rt2", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt2, nil)))
		_, err := f.st.Client(f.ctx, "client")
		mustNil(t, "the client itself stays", err)
	}},
}

var gcCases = []testCase{
	{"KeepsUsedRefreshTokensUntilExpiry", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore, 0)
		now := f.clock.Now()
		req := f.request("alice") // code 10m, access 15m, refresh 720h
		code, at, rt := RandomString(), RandomString(), RandomString()
		mustNil(t, "code", f.st.CreateAuthorizeCodeSession(f.ctx, code, req))
		mustNil(t, "at", f.st.CreateAccessTokenSession(f.ctx, at, req))
		mustNil(t, "rt", f.st.CreateRefreshTokenSession(f.ctx, rt, at, req))
		mustNil(t, "rotate", f.st.RotateRefreshToken(f.ctx, req.ID, rt)) // deletes at
		at = RandomString()
		mustNil(t, "at again", f.st.CreateAccessTokenSession(f.ctx, at, req))
		mustNil(t, "jti", f.st.SetClientAssertionJWT(f.ctx, "jti", now.Add(time.Minute)))

		n, err := f.st.DeleteExpired(f.ctx, now.Add(time.Hour))
		mustNil(t, "gc", err)
		if n != 3 { // code, access token, jti
			t.Errorf("deleted %d rows, want 3", n)
		}
		mustErr(t, "code", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, code, nil)), fosite.ErrNotFound)
		mustErr(t, "at", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
		// The used refresh token is kept: presenting it still detects reuse.
		got, err := f.st.GetRefreshTokenSession(f.ctx, rt, nil)
		mustErr(t, "used rt kept", err, fosite.ErrInactiveToken)
		if got == nil || got.GetID() != req.ID {
			t.Fatalf("requester %v", got)
		}
		n, err = f.st.DeleteExpired(f.ctx, now.Add(721*time.Hour))
		mustNil(t, "gc later", err)
		if n != 1 {
			t.Errorf("deleted %d rows, want 1", n)
		}
		mustErr(t, "rt after expiry", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)), fosite.ErrNotFound)
	}},
}
