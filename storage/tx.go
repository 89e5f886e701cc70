package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// maxTxAttempts bounds retries of serialization failures and deadlocks.
const maxTxAttempts = 5

// TxOptions selects the isolation level of InTx; the zero value is READ COMMITTED.
type TxOptions = pgx.TxOptions

// InTx runs fn in a transaction and commits it. When Postgres aborts the
// transaction with a serialization failure or deadlock (40001, 40P01) the whole
// of fn runs again, up to maxTxAttempts times, so fn must not have effects
// outside the transaction. Any other error rolls back and is returned as is.
func InTx(ctx context.Context, pool *pgxpool.Pool, opts TxOptions, fn func(tx pgx.Tx) error) error {
	var err error
	for attempt := 1; attempt <= maxTxAttempts; attempt++ {
		err = runTx(ctx, pool, opts, fn)
		if err == nil || !IsRetryable(err) {
			return err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w: gave up after %d attempts: %w", ErrContention, maxTxAttempts, err)
}

// ErrContention is wrapped by InTx when serialization failures or deadlocks
// persisted through every retry: the database is too busy, not the request
// wrong (Classify reports it as an outage).
var ErrContention = errors.New("storage: transaction kept conflicting with others")

func runTx(ctx context.Context, pool *pgxpool.Pool, opts TxOptions, fn func(tx pgx.Tx) error) (err error) {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			// The rollback error is irrelevant: the connection is reset on failure.
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// ErrNotFound is returned by helpers that look up one row which does not exist.
var ErrNotFound = errors.New("storage: not found")
