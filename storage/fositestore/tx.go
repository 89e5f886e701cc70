package fositestore

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

type txKey struct{}

// txConn is a transaction: a pgx.Tx, or a RefreshTx's connection
// (refreshtx.go).
type txConn interface {
	storage.Querier
	Commit(ctx context.Context) error
	Rollback(ctx context.Context) error
}

// txState is what ctx carries. owner is false for a context that joined an
// outer transaction: only the owner commits or rolls back.
type txState struct {
	tx     txConn
	owner  bool
	shared *txShared
	// refresh is set inside a refresh transaction (RefreshTx.Context), and
	// replay in its replay mode (RefreshTx.Replay).
	refresh *RefreshTx
	replay  bool
}

// txShared is what the owner and every joined context of one transaction
// share: revocations to announce when it ends (revoked.go).
type txShared struct {
	mu      sync.Mutex
	revoked []revKey
}

// txOf returns the transaction ctx carries, or nil.
func txOf(ctx context.Context) *txState {
	st, _ := ctx.Value(txKey{}).(*txState)
	return st
}

// BeginTX starts a transaction at Options.IsoLevel (REPEATABLE READ by
// default) and returns a context carrying it. Inside an existing transaction
// it joins it instead: the returned context's Commit and Rollback are no-ops,
// so fosite's own MaybeBeginTx/MaybeCommitTx calls nest inside the token
// endpoint's outer transaction.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	return s.BeginTXWith(ctx, pgx.TxOptions{IsoLevel: s.iso})
}

// BeginTXWith is BeginTX with explicit options, for callers that need
// another isolation level (revocations use READ COMMITTED). When joining an
// outer transaction opts is ignored.
func (s *Store) BeginTXWith(ctx context.Context, opts pgx.TxOptions) (context.Context, error) {
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		joined := *st
		joined.owner = false
		return context.WithValue(ctx, txKey{}, &joined), nil
	}
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return ctx, mapErr("begin", err)
	}
	return context.WithValue(ctx, txKey{}, &txState{tx: tx, owner: true, shared: &txShared{}}), nil
}

// Commit commits the transaction begun by the BeginTX that returned ctx; it
// is a no-op for a joined transaction. A serialization failure at commit is
// fosite.ErrSerializationFailure.
func (s *Store) Commit(ctx context.Context) error {
	st, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return ErrNoTransaction
	}
	if !st.owner {
		return nil
	}
	err := st.tx.Commit(ctx)
	s.flushRevoked(st)
	return mapErr("commit", err)
}

// Rollback undoes the transaction begun by the BeginTX that returned ctx; it
// is a no-op for a joined transaction and after Commit.
func (s *Store) Rollback(ctx context.Context) error {
	st, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return ErrNoTransaction
	}
	if !st.owner {
		return nil
	}
	// Rollback must run even when the request was cancelled, or the
	// connection stays busy until the pool notices.
	err := st.tx.Rollback(context.WithoutCancel(ctx))
	s.flushRevoked(st)
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return mapErr("rollback", err)
}

// InTx runs fn in a transaction at Options.IsoLevel (joining one already in
// ctx) and commits it, or rolls back when fn fails. It does not retry: fn
// usually calls fosite, whose effects (minted tokens) are not repeatable.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	return s.InTxWith(ctx, pgx.TxOptions{IsoLevel: s.iso}, fn)
}

// InTxWith is InTx with explicit transaction options.
func (s *Store) InTxWith(ctx context.Context, opts pgx.TxOptions, fn func(ctx context.Context) error) (err error) {
	ctx, err = s.BeginTXWith(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = s.Rollback(ctx)
			panic(p)
		}
		if err != nil {
			_ = s.Rollback(ctx)
		}
	}()
	if err = fn(ctx); err != nil {
		return err
	}
	return s.Commit(ctx)
}
