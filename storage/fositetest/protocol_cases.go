package fositetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/ory/fosite"
)

// protocolTx begins the refresh protocol's transaction and locks sig; the
// caller commits or rolls back (a rollback at cleanup is a no-op after).
func (f *fixture) protocolTx(sig string) context.Context {
	f.t.Helper()
	ctx, rs := f.beginRefresh(sig)
	f.t.Cleanup(func() { _ = f.st.Rollback(ctx) })
	if !rs.Found || !rs.Active {
		f.t.Fatalf("locked token: %+v", rs)
	}
	return ctx
}

// The store may hold a rotation's writes until SaveRotatedResponse (one
// statement for the whole rotation) or, after BeginRefresh, until Commit;
// these cases pin down that nothing inside or outside the transaction can
// tell. pipelined: the transaction is begun by BeginRefresh.
func protocolCases(pipelined bool) []testCase {
	return []testCase{
		{"ReadsInsideTheTransactionSeeTheRotation", func(t *testing.T, newStore NewStoreFunc) {
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
			sig, oldAT, req := RandomString(), RandomString(), f.request("alice")
			mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
			mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
			ctx := f.protocolTx(sig)
			mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
			at, rt := RandomString(), RandomString()
			mustNil(t, "new at", f.st.CreateAccessTokenSession(ctx, at, req))
			mustNil(t, "new rt", f.st.CreateRefreshTokenSession(ctx, rt, at, req))
			mustErr(t, "used token in tx", errOnly(f.st.GetRefreshTokenSession(ctx, sig, nil)), fosite.ErrInactiveToken)
			mustNil(t, "new rt in tx", errOnly(f.st.GetRefreshTokenSession(ctx, rt, nil)))
			mustNil(t, "new at in tx", errOnly(f.st.GetAccessTokenSession(ctx, at, nil)))
			mustErr(t, "old at in tx", errOnly(f.st.GetAccessTokenSession(ctx, oldAT, nil)), fosite.ErrNotFound)
			// Saved after the rotation was written: the plain UPDATE path.
			mustNil(t, "save", f.st.SaveRotatedResponse(ctx, sig, []byte("blob")))
			mustNil(t, "commit", f.st.Commit(ctx))
			if rs := f.lock(sig); !f.st.Replayable(rs) || !bytes.Equal(rs.RotatedResponse, []byte("blob")) {
				t.Fatalf("after commit: %+v", rs)
			}
		}},
		{"SaveWritesEverything", func(t *testing.T, newStore NewStoreFunc) {
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
			sig, oldAT, req, other := RandomString(), RandomString(), f.request("alice"), f.request("alice")
			otherAT := RandomString()
			mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
			mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
			mustNil(t, "other family's at", f.st.CreateAccessTokenSession(f.ctx, otherAT, other))
			rt := f.rotateAndSave(sig, req, []byte("blob"))
			rs := f.lock(sig)
			if rs.Active || !rs.FirstUsedAt.Equal(f.clock.Now()) || !bytes.Equal(rs.RotatedResponse, []byte("blob")) {
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
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
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
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
			sig, stray, req := RandomString(), RandomString(), f.request("alice")
			mustNil(t, "rt", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
			mustNil(t, "second active rt of the family", f.st.CreateRefreshTokenSession(f.ctx, stray, "", req))
			rt := f.rotateAndSave(sig, req, []byte("blob"))
			mustErr(t, "stray", errOnly(f.st.GetRefreshTokenSession(f.ctx, stray, nil)), fosite.ErrInactiveToken)
			mustNil(t, "the new token stays active", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)))
		}},
		{"CommitWithoutSave", func(t *testing.T, newStore NewStoreFunc) {
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
			sig, oldAT, req := RandomString(), RandomString(), f.request("alice")
			mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
			mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
			ctx := f.protocolTx(sig)
			mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
			at, rt := RandomString(), RandomString()
			mustNil(t, "new at", f.st.CreateAccessTokenSession(ctx, at, req))
			mustNil(t, "new rt", f.st.CreateRefreshTokenSession(ctx, rt, at, req))
			mustNil(t, "commit", f.st.Commit(ctx))
			if rs := f.lock(sig); rs.Active || rs.FirstUsedAt.IsZero() || f.st.Replayable(rs) {
				t.Fatalf("used token without a saved response: %+v", rs)
			}
			mustNil(t, "new rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)))
			mustNil(t, "new at", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)))
			mustErr(t, "old at", errOnly(f.st.GetAccessTokenSession(f.ctx, oldAT, nil)), fosite.ErrNotFound)
		}},
		{"RollbackLeavesNothing", func(t *testing.T, newStore NewStoreFunc) {
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
			sig, oldAT, req := RandomString(), RandomString(), f.request("alice")
			mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
			mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
			ctx := f.protocolTx(sig)
			mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
			at, rt := RandomString(), RandomString()
			mustNil(t, "new at", f.st.CreateAccessTokenSession(ctx, at, req))
			mustNil(t, "new rt", f.st.CreateRefreshTokenSession(ctx, rt, at, req))
			mustNil(t, "rollback", f.st.Rollback(ctx))
			if rs := f.lock(sig); !rs.Active {
				t.Fatalf("token after rollback: %+v", rs)
			}
			mustNil(t, "old at", errOnly(f.st.GetAccessTokenSession(f.ctx, oldAT, nil)))
			mustErr(t, "new rt", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)), fosite.ErrNotFound)
			mustErr(t, "new at", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
		}},
		{"FailingInsertFailsTheRotation", func(t *testing.T, newStore NewStoreFunc) {
			// A new refresh token whose signature is taken: the error surfaces
			// (at the save, where the rows are written) and nothing sticks.
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
			sig, oldAT, taken, req := RandomString(), RandomString(), RandomString(), f.request("alice")
			mustNil(t, "old at", f.st.CreateAccessTokenSession(f.ctx, oldAT, req))
			mustNil(t, "old rt", f.st.CreateRefreshTokenSession(f.ctx, sig, oldAT, req))
			mustNil(t, "taken", f.st.CreateRefreshTokenSession(f.ctx, taken, "", f.request("bob")))
			ctx := f.protocolTx(sig)
			mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
			at := RandomString()
			mustNil(t, "new at", f.st.CreateAccessTokenSession(ctx, at, req))
			err := f.st.CreateRefreshTokenSession(ctx, taken, at, req)
			if err == nil {
				err = f.st.SaveRotatedResponse(ctx, sig, []byte("blob"))
			}
			if err == nil {
				err = f.st.Commit(ctx)
			}
			if err == nil {
				t.Fatal("a duplicate refresh token signature was accepted")
			}
			_ = f.st.Rollback(ctx)
			if rs := f.lock(sig); !rs.Active || rs.RotatedResponse != nil {
				t.Fatalf("token after a failed rotation: %+v", rs)
			}
			mustNil(t, "old at", errOnly(f.st.GetAccessTokenSession(f.ctx, oldAT, nil)))
			mustErr(t, "new at", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
		}},
		{"FailingInsertFailsTheCommit", func(t *testing.T, newStore NewStoreFunc) {
			// Same, with the rows written by Commit (no save): Commit fails and
			// the transaction is gone.
			f := newFixture(t, newStore, window)
			f.pipelined = pipelined
			sig, taken, req := RandomString(), RandomString(), f.request("alice")
			mustNil(t, "rt", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
			mustNil(t, "taken", f.st.CreateAccessTokenSession(f.ctx, taken, f.request("bob")))
			ctx := f.protocolTx(sig)
			mustNil(t, "rotate", f.st.RotateRefreshToken(ctx, req.ID, sig))
			if err := f.st.CreateAccessTokenSession(ctx, taken, req); err == nil {
				if err := f.st.Commit(ctx); err == nil {
					t.Fatal("a duplicate access token signature was committed")
				}
			}
			if rs := f.lock(sig); !rs.Active {
				t.Fatalf("token after a failed commit: %+v", rs)
			}
		}},
	}
}
