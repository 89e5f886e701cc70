package fositestore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"
)

// pipeTx is a transaction on a pooled connection that the store drives
// itself, so that BEGIN travels with the first statement (BeginRefresh) and
// COMMIT with the held rotation (Commit): pgx.Tx sends each alone, and every
// round trip costs both processes a wake-up. The statements still run one
// after the other, as they would one by one; a failure skips the rest of a
// pipeline (COMMIT included) and the transaction is rolled back.
type pipeTx struct {
	conn *pgxpool.Conn // nil once committed or rolled back
}

func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.conn == nil {
		return pgconn.CommandTag{}, pgx.ErrTxClosed
	}
	return t.conn.Exec(ctx, sql, args...)
}

func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.conn == nil {
		return nil, pgx.ErrTxClosed
	}
	return t.conn.Query(ctx, sql, args...)
}

func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.conn == nil {
		return errRow{pgx.ErrTxClosed}
	}
	return t.conn.QueryRow(ctx, sql, args...)
}

func (t *pipeTx) Commit(ctx context.Context) error { return t.commitWith(ctx, nil) }

// commitWith writes p (when not nil) and commits, in one round trip.
func (t *pipeTx) commitWith(ctx context.Context, p *pendingRotation) error {
	if t.conn == nil {
		return pgx.ErrTxClosed
	}
	defer t.release(ctx)
	b := &pgx.Batch{}
	if p != nil {
		sql, args := p.statement()
		b.Queue(sql, args...)
	}
	b.Queue("commit")
	br := t.conn.SendBatch(ctx, b)
	rotated := true
	var err error
	if p != nil {
		if err = br.QueryRow().Scan(&rotated); err != nil {
			err = mapErr("rotate refresh token", err)
		}
	}
	var tag pgconn.CommandTag
	if err == nil {
		if tag, err = br.Exec(); err != nil {
			err = mapErr("commit", err)
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = mapErr("commit", cerr)
	}
	switch {
	case err != nil:
		return err
	case tag.String() != "COMMIT":
		return mapErr("commit", pgx.ErrTxCommitRollback)
	case !rotated:
		// Under the row lock this cannot happen; nothing was inserted
		// either (the new rows depend on the rotation).
		return fosite.ErrInactiveToken
	}
	return nil
}

func (t *pipeTx) Rollback(ctx context.Context) error {
	if t.conn == nil {
		return pgx.ErrTxClosed
	}
	t.release(ctx)
	return nil
}

// release ends whatever transaction is still open and returns the
// connection to the pool (which closes it instead if it is broken or still
// in a transaction).
func (t *pipeTx) release(ctx context.Context) {
	if c := t.conn.Conn(); !c.IsClosed() && c.PgConn().TxStatus() != 'I' {
		_, _ = t.conn.Exec(context.WithoutCancel(ctx), "rollback")
	}
	t.conn.Release()
	t.conn = nil
}

// BeginRefresh is BeginTXWith (READ COMMITTED) followed by
// LockRefreshToken, in one round trip: the refresh protocol's first step
// (package doc). Inside an existing transaction it joins it and locks.
func (s *Store) BeginRefresh(ctx context.Context, signature string) (context.Context, RefreshState, error) {
	if _, ok := ctx.Value(txKey{}).(*txState); ok {
		txCtx, err := s.BeginTXWith(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
		if err != nil {
			return ctx, RefreshState{}, err
		}
		rs, err := s.LockRefreshToken(txCtx, signature)
		return txCtx, rs, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return ctx, RefreshState{}, mapErr("begin", err)
	}
	st := &txState{tx: &pipeTx{conn: conn}, owner: true, shared: &txShared{}}
	sql, lr, dest := lockQuery(signature)
	b := &pgx.Batch{}
	b.Queue("begin isolation level read committed")
	b.Queue(sql, lr.key)
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(dest...)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	rs, err := s.locked(st, lr, err)
	if err != nil {
		_ = st.tx.Rollback(ctx)
		return ctx, RefreshState{}, err
	}
	return context.WithValue(ctx, txKey{}, st), rs, nil
}
