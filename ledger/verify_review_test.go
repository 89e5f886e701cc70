package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/ledger"
)

// TestVerify_PoolExhausted: with every other connection of the pool taken
// (here by the test; in a server, by other Verify calls each holding one
// and waiting for a second), Verify runs the entries join after the walk
// on its one connection instead of waiting for a second that never comes.
func TestVerify_PoolExhausted(t *testing.T) {
	t.Parallel()
	db, _, _, txs := chain(t)
	tamper(t, db.Pool, `UPDATE ledger_entries SET amount = amount - 1 WHERE transaction_id = $1 AND amount < 0`, txs[2].ID)
	pool := poolOf(t, db.URL, 2)
	held, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	// The deadline only turns a hang into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := ledger.Verify(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !hasCheck(rep, "entry", txs[2].ID) || !hasCheck(rep, "double_entry", txs[2].ID) {
		t.Fatalf("want entry and double_entry problems for %s, got %s", txs[2].ID, rep)
	}
}

// pollDB runs sql (a boolean) until it is true, or fails the test.
func pollDB(t *testing.T, ctx context.Context, pool *pgxpool.Pool, what, sql string) {
	for {
		var ok bool
		if err := pool.QueryRow(ctx, sql).Scan(&ok); err != nil {
			t.Errorf("waiting for %s: %v", what, err)
			return
		}
		if ok {
			return
		}
	}
}

// queueExclusive asks for an ACCESS EXCLUSIVE lock on table, as a migration
// would, and returns once the request waits; the channel has its outcome
// once it is granted and committed.
func queueExclusive(t *testing.T, ctx context.Context, pool *pgxpool.Pool, table string) <-chan error {
	done := make(chan error, 1)
	bg := context.Background()
	go func() {
		tx, err := pool.Begin(bg)
		if err == nil {
			_, err = tx.Exec(bg, `LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`)
			if err == nil {
				err = tx.Commit(bg)
			}
			_ = tx.Rollback(bg)
		}
		done <- err
	}()
	pollDB(t, ctx, pool, "the exclusive lock to queue", `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE relation = '`+table+`'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted)`)
	return done
}

// TestVerify_ExclusiveLockQueuedMeanwhile: a statement wanting an ACCESS
// EXCLUSIVE lock on ledger_entries (a migration, a REINDEX, a VACUUM FULL)
// queues behind the walk's connection, which has read the table. The join's
// connection must not then queue behind that statement: the walk's
// connection waits for the join in Go, out of sight of the server's
// deadlock detector, and all three (and every posting queued behind the
// exclusive lock) would wait forever.
func TestVerify_ExclusiveLockQueuedMeanwhile(t *testing.T) {
	t.Parallel()
	db, _, _, _ := chain(t)
	// The deadline only turns a hang into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var exclusive <-chan error
	rep, err := ledger.VerifyBeforeJoin(ctx, db.Pool, func() {
		// The walk's connection (the one that read ledger_accounts) holds
		// its lock on ledger_entries, and an exclusive lock is asked for
		// behind it.
		pollDB(t, ctx, db.Pool, "the walk's lock", `SELECT EXISTS (SELECT 1 FROM pg_locks a JOIN pg_locks e USING (pid)
			WHERE a.relation = 'ledger_accounts'::regclass AND e.relation = 'ledger_entries'::regclass
				AND e.mode = 'AccessShareLock' AND e.granted AND a.pid <> pg_backend_pid())`)
		exclusive = queueExclusive(t, ctx, db.Pool, "ledger_entries")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("clean ledger: %s", rep)
	}
	if err := <-exclusive; err != nil {
		t.Fatal(err)
	}
}

// TestVerify_ExclusiveLockQueuedBehindTheJoin: an exclusive lock request
// on ledger_transactions queues behind the join's connection before the
// walk has read that table; the walk then queues behind the request. The
// join's connection must let its locks go once it is done, not when the
// walk (waiting for them, through the request) ends.
func TestVerify_ExclusiveLockQueuedBehindTheJoin(t *testing.T) {
	t.Parallel()
	db, _, _, _ := chain(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	queued := make(chan struct{})
	var exclusive <-chan error
	rep, err := ledger.VerifyHooks(ctx, db.Pool, func() { <-queued }, func() {
		exclusive = queueExclusive(t, ctx, db.Pool, "ledger_transactions")
		close(queued)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("clean ledger: %s", rep)
	}
	if err := <-exclusive; err != nil {
		t.Fatal(err)
	}
}

// TestVerify_EntryWithoutAccount: an entry whose account_id is NULL (the
// column's NOT NULL dropped first) is reported like the reference reports
// it, not an error scanning the per-account sums.
func TestVerify_EntryWithoutAccount(t *testing.T) {
	t.Parallel()
	db, _, _, txs := chain(t)
	if _, err := db.Pool.Exec(context.Background(), `ALTER TABLE ledger_entries ALTER COLUMN account_id DROP NOT NULL`); err != nil {
		t.Fatal(err)
	}
	tamper(t, db.Pool, `INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES ($1, NULL, 3), ($1, 2, -3)`, txs[1].ID)
	if rep := mustSameReport(t, db.Pool); !hasCheck(rep, "double_entry", txs[1].ID) {
		t.Fatalf("no double_entry problem for %s: %s", txs[1].ID, rep)
	}
}
