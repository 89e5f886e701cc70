package fositetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
)

// protocolTx begins sig's refresh transaction, checks the token is
// unused and returns the context fosite would get.
func (f *fixture) protocolTx(sig string) (*fositestore.RefreshTx, context.Context) {
	f.t.Helper()
	tx := f.begin(sig)
	if rs := tx.State(); !rs.Found || !rs.Active {
		f.t.Fatalf("locked token: %+v", rs)
	}
	return tx, tx.Context(f.ctx)
}

// RefreshTx holds a rotation's writes until Commit and writes them as one
// statement; these cases pin down what that statement does.
var protocolCases = []testCase{
	{"CommitWritesEverything", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, oldAT, req, other := RandomString(), RandomString(), f.request("alice"), f.request("alice")
		otherAT := RandomString()
		mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
		mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
		mustNil(t, "other family's at", f.st.CreateAccessTokenSession(f.ctx, otherAT, other))
		rt := f.rotateAndSave(sig, req, []byte("blob"))
		rs := f.state(sig)
		if rs.Active || !rs.Used || !rs.SuccessorActive || !bytes.Equal(rs.Response, []byte("blob")) {
			t.Fatalf("used token: %+v", rs)
		}
		got, err := f.st.GetRefreshTokenSession(f.ctx, rt, EmptySession())
		mustNil(t, "new rt", err)
		mustSameRequest(t, got, req)
		mustErr(t, "old at", errOnly(f.st.GetAccessTokenSession(f.ctx, oldAT, nil)), fosite.ErrNotFound)
		mustNil(t, "other family's at", errOnly(f.st.GetAccessTokenSession(f.ctx, otherAT, nil)))
		// The new refresh token names the new access token: its own
		// rotation deletes it.
		next := f.rotateAndSave(rt, req, []byte("blob 2"))
		mustNil(t, "next rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, next, nil)))
		mustErr(t, "second rotation's used token", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)), fosite.ErrInactiveToken)
	}},
	{"UnlinkedTokenDropsTheFamilysAccessTokens", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		a1, a2 := RandomString(), RandomString()
		mustNil(t, "at 1", f.st.CreateAccessTokenSession(f.ctx, a1, req))
		mustNil(t, "at 2", f.st.CreateAccessTokenSession(f.ctx, a2, req))
		mustNil(t, "rt naming no access token", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		f.rotateAndSave(sig, req, []byte("blob"))
		mustErr(t, "at 1", errOnly(f.st.GetAccessTokenSession(f.ctx, a1, nil)), fosite.ErrNotFound)
		mustErr(t, "at 2", errOnly(f.st.GetAccessTokenSession(f.ctx, a2, nil)), fosite.ErrNotFound)
	}},
	{"DeactivatesOtherActiveTokensOfTheFamily", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, stray, req := RandomString(), RandomString(), f.request("alice")
		mustNil(t, "rt", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		mustNil(t, "second active rt of the family", f.st.CreateRefreshTokenSession(f.ctx, stray, "", req))
		rt := f.rotateAndSave(sig, req, []byte("blob"))
		mustErr(t, "stray", errOnly(f.st.GetRefreshTokenSession(f.ctx, stray, nil)), fosite.ErrInactiveToken)
		mustNil(t, "the new token stays active", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)))
	}},
	{"CommitWithoutResponse", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, oldAT, req := RandomString(), RandomString(), f.request("alice")
		mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
		mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
		tx, ctx := f.protocolTx(sig)
		mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
		at, rt := RandomString(), RandomString()
		mustNil(t, "new at", f.st.CreateAccessTokenSession(ctx, at, req))
		mustNil(t, "new rt", f.st.CreateRefreshTokenSession(ctx, rt, at, req))
		mustNil(t, "commit", tx.Commit(f.ctx, nil))
		if rs := f.state(sig); rs.Active || !rs.Used || rs.Response != nil {
			t.Fatalf("used token without a saved response: %+v", rs)
		}
		mustNil(t, "new rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)))
		mustNil(t, "new at", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)))
		mustErr(t, "old at", errOnly(f.st.GetAccessTokenSession(f.ctx, oldAT, nil)), fosite.ErrNotFound)
	}},
	{"RollbackLeavesNothing", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		sig, oldAT, req := RandomString(), RandomString(), f.request("alice")
		mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
		mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
		tx, ctx := f.protocolTx(sig)
		mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
		at, rt := RandomString(), RandomString()
		mustNil(t, "new at", f.st.CreateAccessTokenSession(ctx, at, req))
		mustNil(t, "new rt", f.st.CreateRefreshTokenSession(ctx, rt, at, req))
		tx.Rollback(f.ctx)
		mustErr(t, "commit after rollback", tx.Commit(f.ctx, nil), pgx.ErrTxClosed)
		if rs := f.state(sig); !rs.Active {
			t.Fatalf("token after rollback: %+v", rs)
		}
		mustNil(t, "old at", errOnly(f.st.GetAccessTokenSession(f.ctx, oldAT, nil)))
		mustErr(t, "new rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)), fosite.ErrNotFound)
		mustErr(t, "new at", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
	}},
	{"FailingInsertFailsTheCommit", func(t *testing.T, newStore NewStoreFunc) {
		// A new refresh token whose signature is taken: Commit fails and
		// nothing sticks.
		f := newFixture(t, newStore)
		sig, oldAT, taken, req := RandomString(), RandomString(), RandomString(), f.request("alice")
		mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
		mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
		mustNil(t, "taken", f.st.CreateRefreshTokenSession(f.ctx, taken, "", f.request("bob")))
		tx, ctx := f.protocolTx(sig)
		mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
		at := RandomString()
		mustNil(t, "new at", f.st.CreateAccessTokenSession(ctx, at, req))
		mustNil(t, "new rt", f.st.CreateRefreshTokenSession(ctx, taken, at, req))
		if err := tx.Commit(f.ctx, []byte("blob")); err == nil {
			t.Fatal("a duplicate refresh token signature was committed")
		}
		if rs := f.state(sig); !rs.Active || rs.Response != nil {
			t.Fatalf("token after a failed rotation: %+v", rs)
		}
		mustNil(t, "old at", errOnly(f.st.GetAccessTokenSession(f.ctx, oldAT, nil)))
		mustErr(t, "new at", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
	}},
	{"ReuseRevokesTheFamilyInTheTransaction", func(t *testing.T, newStore NewStoreFunc) {
		// What fosite does on reuse, inside the RefreshTx that holds the
		// family's lock: it sticks once committed.
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		next := f.rotateAndSave(sig, req, []byte("blob"))
		tx := f.begin(sig)
		ctx := tx.Context(f.ctx)
		mustErr(t, "get used", errOnly(f.st.GetRefreshTokenSession(ctx, sig, EmptySession())), fosite.ErrInactiveToken)
		mustNil(t, "delete", f.st.DeleteRefreshTokenSession(ctx, sig))
		mustNil(t, "revoke rt", f.st.RevokeRefreshToken(ctx, req.ID))
		mustNil(t, "revoke at", f.st.RevokeAccessToken(ctx, req.ID))
		mustNil(t, "commit", tx.Commit(f.ctx, nil))
		mustErr(t, "successor", errOnly(f.st.GetRefreshTokenSession(f.ctx, next, nil)), fosite.ErrInactiveToken)
	}},
}
