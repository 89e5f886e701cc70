package fositetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
)

// begin starts sig's refresh transaction the way the token endpoint does
// (BeginRefresh); it is rolled back at cleanup unless committed.
func (f *fixture) begin(sig string) *fositestore.RefreshTx {
	f.t.Helper()
	tx, err := f.st.BeginRefresh(f.ctx, sig)
	mustNil(f.t, "begin refresh", err)
	f.t.Cleanup(func() { tx.Rollback(context.Background()) })
	return tx
}

// rotateAndSave runs the first use of a refresh token through a RefreshTx
// as fosite's refresh handler drives it: rotate, issue, commit with blob.
func (f *fixture) rotateAndSave(sig string, req *fosite.Request, blob []byte) (newSig string) {
	f.t.Helper()
	tx := f.begin(sig)
	if rs := tx.State(); !rs.Found || !rs.Active || rs.Used {
		f.t.Fatalf("fresh token: %+v", rs)
	}
	ctx := tx.Context(f.ctx)
	mustNil(f.t, "get", errOnly(f.st.GetRefreshTokenSession(ctx, sig, EmptySession())))
	mustNil(f.t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
	newSig, at := RandomString(), RandomString()
	mustNil(f.t, "new access", f.st.CreateAccessTokenSession(ctx, at, req))
	mustNil(f.t, "new refresh", f.st.CreateRefreshTokenSession(ctx, newSig, at, req))
	mustNil(f.t, "commit", tx.Commit(f.ctx, blob))
	return newSig
}

// state reads what a refresh transaction of sig sees, and ends it.
func (f *fixture) state(sig string) fositestore.RefreshState {
	f.t.Helper()
	tx := f.begin(sig)
	defer tx.Rollback(f.ctx)
	return tx.State()
}

// backdate moves every rotation time of the database back by d: the
// database's clock is the one that counts, so tests move the rows instead.
func (f *fixture) backdate(d time.Duration) {
	f.t.Helper()
	_, err := f.st.Querier(f.ctx).Exec(f.ctx, `UPDATE oauth2_refresh SET first_used_at = first_used_at - $1::interval
		WHERE first_used_at IS NOT NULL`, d.String())
	mustNil(f.t, "backdate", err)
}

// The store reports the facts the reuse-window policy (oauth) decides on:
// whether the token was used, how long ago by the database's clock, whether
// its successor is still unused, and the saved response; in replay mode the
// used token is presented as active and nothing can be issued.
var reuseCases = []testCase{
	{"State/NotFound", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		if rs := f.state("nope"); rs.Found || rs.Subject != "" || rs.ClientID != "" {
			t.Fatalf("missing token: %+v", rs)
		}
	}},
	{"State/Active", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig := RandomString()
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", f.request("alice")))
		rs := f.state(sig)
		if !rs.Found || !rs.Active || rs.ClientID != "client" || rs.Subject != "alice" || rs.Used || rs.SinceUse != 0 || rs.Response != nil || rs.SuccessorActive {
			t.Fatalf("active token: %+v", rs)
		}
	}},
	{"State/UsedByTheDatabaseClock", func(t *testing.T, newStore NewStoreFunc) {
		// The store's own clock is an hour off; the age comes from the
		// database anyway.
		f := newFixture(t, newStore)
		f.clock.Advance(time.Hour)
		sig, req, blob := RandomString(), f.request("alice"), []byte("sealed response #1")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		f.rotateAndSave(sig, req, blob)
		rs := f.state(sig)
		if !rs.Found || rs.Active || !rs.Used || !rs.SuccessorActive || !bytes.Equal(rs.Response, blob) {
			t.Fatalf("used token: %+v", rs)
		}
		if rs.SinceUse < 0 || rs.SinceUse > 5*time.Second {
			t.Fatalf("used just now, but SinceUse = %v", rs.SinceUse)
		}
		f.backdate(time.Minute)
		if rs := f.state(sig); rs.SinceUse < time.Minute || rs.SinceUse > time.Minute+5*time.Second {
			t.Fatalf("used a minute ago, but SinceUse = %v", rs.SinceUse)
		}
	}},
	{"State/SuccessorUsed", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		next := f.rotateAndSave(sig, req, []byte("blob 1"))
		f.rotateAndSave(next, req, []byte("blob 2"))
		if rs := f.state(sig); rs.SuccessorActive {
			t.Fatalf("the successor was used, but: %+v", rs)
		}
		if rs := f.state(next); !rs.SuccessorActive || !bytes.Equal(rs.Response, []byte("blob 2")) {
			t.Fatalf("latest used token: %+v", rs)
		}
	}},
	{"State/RevokedFamily", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		f.rotateAndSave(sig, req, []byte("blob"))
		mustNil(t, "revoke", f.st.RevokeRefreshToken(f.ctx, req.ID))
		if rs := f.state(sig); rs.SuccessorActive || rs.Response != nil {
			t.Fatalf("revoked family: %+v", rs)
		}
	}},
	{"Replay/PresentsTheUsedTokenAsActive", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		next := f.rotateAndSave(sig, req, []byte("blob"))
		tx := f.begin(sig)
		got, err := f.st.GetRefreshTokenSession(tx.Replay(f.ctx), sig, EmptySession())
		mustNil(t, "get in replay mode", err)
		mustSameRequest(t, got, req)
		// Nothing can be issued in replay mode.
		mustErr(t, "rotate in replay mode", f.st.RotateRefreshToken(tx.Replay(f.ctx), req.ID, sig), fosite.ErrInactiveToken)
		// Outside replay mode the used token is used.
		got, err = f.st.GetRefreshTokenSession(tx.Context(f.ctx), sig, EmptySession())
		mustErr(t, "get in a refresh transaction", err, fosite.ErrInactiveToken)
		mustSameRequest(t, got, req)
		mustNil(t, "commit", tx.Commit(f.ctx, nil))
		mustErr(t, "get outside", errOnly(f.st.GetRefreshTokenSession(f.ctx, sig, nil)), fosite.ErrInactiveToken)
		mustNil(t, "the successor is untouched", errOnly(f.st.GetRefreshTokenSession(f.ctx, next, nil)))
	}},
	{"Rotate/OnlyThePresentedActiveToken", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, other, req := RandomString(), RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		mustNil(t, "create other", f.st.CreateRefreshTokenSession(f.ctx, other, "", req))
		tx := f.begin(sig)
		ctx := tx.Context(f.ctx)
		mustErr(t, "rotate another token", f.st.RotateRefreshToken(ctx, req.ID, other), fosite.ErrInactiveToken)
		mustErr(t, "rotate under another family", f.st.RotateRefreshToken(ctx, "other-family", sig), fosite.ErrInactiveToken)
		mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
		mustErr(t, "rotate twice", f.st.RotateRefreshToken(ctx, req.ID, sig), fosite.ErrInactiveToken)
		// No statement may slip in between the rotation and its commit.
		if err := errOnly(f.st.GetAccessTokenSession(ctx, RandomString(), nil)); err == nil || isErr(err, fosite.ErrNotFound) {
			t.Fatalf("a query after the rotation ran: %v", err)
		}
	}},
}

var revokeCases = []testCase{
	{"Subject", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		alice, bob := f.request("alice"), f.request("bob")
		aAT, aRT, aCode, bAT, bRT := RandomString(), RandomString(), RandomString(), RandomString(), RandomString()
		used := RandomString()
		mustNil(t, "alice at", f.st.CreateAccessTokenSession(f.ctx, aAT, alice))
		mustNil(t, "alice used rt", f.st.CreateRefreshTokenSession(f.ctx, used, aAT, alice))
		aRT = f.rotateAndSave(used, alice, []byte("blob"))
		aNext := f.rotateAndSave(aRT, alice, []byte("blob 2"))
		mustNil(t, "alice at 2", f.st.CreateAccessTokenSession(f.ctx, aAT, alice))
		mustNil(t, "alice code", f.st.CreateAuthorizeCodeSession(f.ctx, aCode, f.request("alice")))
		mustNil(t, "bob at", f.st.CreateAccessTokenSession(f.ctx, bAT, bob))
		mustNil(t, "bob rt", f.st.CreateRefreshTokenSession(f.ctx, bRT, bAT, bob))

		mustNil(t, "revoke alice", f.st.RevokeSubject(f.ctx, "alice"))
		mustErr(t, "alice at", errOnly(f.st.GetAccessTokenSession(f.ctx, aAT, nil)), fosite.ErrNotFound)
		mustErr(t, "alice rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, aNext, nil)), fosite.ErrInactiveToken)
		if rs := f.state(aRT); rs.Response != nil || rs.SuccessorActive {
			t.Errorf("alice's latest used token is still replayable: %+v", rs)
		}
		mustErr(t, "alice code", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, aCode, nil)), fosite.ErrInvalidatedAuthorizeCode)
		mustNil(t, "bob at", errOnly(f.st.GetAccessTokenSession(f.ctx, bAT, nil)))
		mustNil(t, "bob rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, bRT, nil)))
	}},
	{"Client", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
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
		f := newFixture(t, newStore)
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
