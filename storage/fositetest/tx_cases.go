package fositetest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
)

var txCases = []testCase{
	{"Rollback/LeavesNoRows", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		req := f.request("alice")
		code, at, rt := RandomString(), RandomString(), RandomString()
		ctx, err := f.st.BeginTX(f.ctx)
		mustNil(t, "begin", err)
		mustNil(t, "code", f.st.CreateAuthorizeCodeSession(ctx, code, req))
		mustNil(t, "access", f.st.CreateAccessTokenSession(ctx, at, req))
		mustNil(t, "refresh", f.st.CreateRefreshTokenSession(ctx, rt, at, req))
		mustNil(t, "visible inside", errOnly(f.st.GetAccessTokenSession(ctx, at, nil)))
		mustErr(t, "invisible outside", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
		mustNil(t, "rollback", f.st.Rollback(ctx))
		mustErr(t, "code", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, code, nil)), fosite.ErrNotFound)
		mustErr(t, "access", errOnly(f.st.GetAccessTokenSession(f.ctx, at, nil)), fosite.ErrNotFound)
		mustErr(t, "refresh", errOnly(f.st.GetRefreshTokenSession(f.ctx, rt, nil)), fosite.ErrNotFound)
		mustNil(t, "rollback after rollback", f.st.Rollback(ctx))
	}},
	{"Commit/Persists", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		code := RandomString()
		ctx, err := f.st.BeginTX(f.ctx)
		mustNil(t, "begin", err)
		mustNil(t, "code", f.st.CreateAuthorizeCodeSession(ctx, code, f.request("alice")))
		mustNil(t, "invalidate", f.st.InvalidateAuthorizeCodeSession(ctx, code))
		mustNil(t, "commit", f.st.Commit(ctx))
		mustErr(t, "get", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, code, nil)), fosite.ErrInvalidatedAuthorizeCode)
	}},
	{"Join/InnerCommitIsNoOp", func(t *testing.T, newStore NewStoreFunc) {
		// fosite's own MaybeBeginTx/MaybeCommitTx inside the token
		// endpoint's outer transaction: the outer owner decides.
		f := newFixture(t, newStore)
		code := RandomString()
		outer, err := f.st.BeginTXWith(f.ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		mustNil(t, "begin outer", err)
		inner, err := f.st.BeginTX(outer)
		mustNil(t, "begin inner", err)
		mustNil(t, "code", f.st.CreateAuthorizeCodeSession(inner, code, f.request("alice")))
		mustNil(t, "inner commit", f.st.Commit(inner))
		mustErr(t, "not yet committed", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, code, nil)), fosite.ErrNotFound)
		mustNil(t, "inner rollback is a no-op too", f.st.Rollback(inner))
		mustNil(t, "still in the outer tx", errOnly(f.st.GetAuthorizeCodeSession(outer, code, nil)))
		mustNil(t, "outer rollback", f.st.Rollback(outer))
		mustErr(t, "rolled back", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, code, nil)), fosite.ErrNotFound)
	}},
	{"Commit/ErrNoTransaction", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		mustErr(t, "commit", f.st.Commit(f.ctx), fositestore.ErrNoTransaction)
		mustErr(t, "rollback", f.st.Rollback(f.ctx), fositestore.ErrNoTransaction)
	}},
	{"InTx/RollsBackOnError", func(t *testing.T, newStore NewStoreFunc) {
		f := newFixture(t, newStore)
		code := RandomString()
		err := f.st.InTx(f.ctx, func(ctx context.Context) error {
			mustNil(t, "code", f.st.CreateAuthorizeCodeSession(ctx, code, f.request("alice")))
			return fosite.ErrServerError
		})
		mustErr(t, "InTx", err, fosite.ErrServerError)
		mustErr(t, "rolled back", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, code, nil)), fosite.ErrNotFound)
		mustNil(t, "InTx ok", f.st.InTx(f.ctx, func(ctx context.Context) error {
			return f.st.CreateAuthorizeCodeSession(ctx, code, f.request("alice"))
		}))
		mustNil(t, "committed", errOnly(f.st.GetAuthorizeCodeSession(f.ctx, code, nil)))
	}},
	{"RepeatableRead/ErrSerializationFailure", func(t *testing.T, newStore NewStoreFunc) {
		// Two REPEATABLE READ transactions rotate the same token: the
		// second, blocked then overtaken, must surface as
		// fosite.ErrSerializationFailure ("retry"), not a server error.
		f := newFixture(t, newStore)
		sig, req := RandomString(), f.request("alice")
		mustNil(t, "create", f.st.CreateRefreshTokenSession(f.ctx, sig, "", req))
		a, err := f.st.BeginTX(f.ctx)
		mustNil(t, "begin a", err)
		b, err := f.st.BeginTX(f.ctx)
		mustNil(t, "begin b", err)
		defer f.st.Rollback(b)
		mustNil(t, "b takes its snapshot", errOnly(f.st.GetRefreshTokenSession(b, sig, nil)))
		mustNil(t, "a rotates", f.st.RotateRefreshToken(a, req.ID, sig))
		mustNil(t, "a commits", f.st.Commit(a))
		mustErr(t, "b rotates", f.st.RotateRefreshToken(b, req.ID, sig), fosite.ErrSerializationFailure)
	}},
}
