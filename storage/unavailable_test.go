package storage_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/storagetest"
)

// openPool opens a pool on a fresh database with cfg and closes it at the end.
func openPool(t *testing.T, cfg storage.PoolConfig) (*pgxpool.Pool, *storagetest.DB) {
	t.Helper()
	db := storagetest.NewDB(t)
	pool, err := storage.Open(context.Background(), db.URL, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, db
}

// mustOutage fails t unless err is classified with a reason mentioning want.
func mustOutage(t *testing.T, err error, want string) storage.Outage {
	t.Helper()
	o, ok := storage.Classify(err)
	if !ok {
		t.Fatalf("error %v (%T) is not classified as a database outage", err, err)
	}
	if o.Reason != want {
		t.Fatalf("error %v: reason %q, want %q", err, o.Reason, want)
	}
	if o.RetryAfterSeconds() < 1 {
		t.Fatalf("reason %q: Retry-After %d", o.Reason, o.RetryAfterSeconds())
	}
	return o
}

func TestOpen_StatementTimeoutOnEveryConnection(t *testing.T) {
	pool, _ := openPool(t, storage.PoolConfig{MaxConns: 2, StatementTimeout: 200 * time.Millisecond})
	wait, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := pool.Exec(wait, `SELECT pg_sleep(5)`)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a 5 s statement ran %s: statement_timeout not set", d)
	}
	mustOutage(t, err, "a database statement timed out")
}

func TestOpen_LockTimeoutOnEveryConnection(t *testing.T) {
	pool, db := openPool(t, storage.PoolConfig{MaxConns: 2, LockTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	locker, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	if _, err := locker.Exec(ctx, `BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = pool.Exec(wait, `SELECT count(*) FROM users`)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %s for a locked table: lock_timeout not set", d)
	}
	mustOutage(t, err, "a database lock was not granted in time")
}

func TestOpen_AcquireTimeout(t *testing.T) {
	pool, _ := openPool(t, storage.PoolConfig{MaxConns: 1, AcquireTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	held, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = pool.Exec(wait, `SELECT 1`)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("waited %s for a connection of a full pool: no acquire timeout", d)
	}
	mustOutage(t, err, "the database did not answer in time")
	if n := storage.AcquireTimeouts(pool); n != 1 {
		t.Fatalf("AcquireTimeouts = %d, want 1", n)
	}
	held.Release()
	if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
		t.Fatalf("after the connection came back: %v", err)
	}
}

func TestClassify_TerminatedBackendMidQuery(t *testing.T) {
	pool, db := openPool(t, storage.PoolConfig{MaxConns: 2})
	ctx := context.Background()
	errc := make(chan error, 1)
	go func() {
		_, err := pool.Exec(ctx, `SELECT pg_sleep(30) /* victim */`)
		errc <- err
	}()
	admin, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE '%victim%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the victim query never showed in pg_stat_activity")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	select {
	case err := <-errc:
		mustOutage(t, err, "the database is shutting down or ended the connection")
	case <-time.After(10 * time.Second):
		t.Fatal("the terminated query did not return")
	}
	// The pool recovers by itself.
	if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
		if _, err := pool.Exec(ctx, `SELECT 1`); err != nil {
			t.Fatalf("pool did not recover: %v", err)
		}
	}
}

func TestClassify_ReadOnly(t *testing.T) {
	for _, tc := range []struct{ name, setup string }{
		{"SessionCharacteristics", `SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`},
		{"DefaultTransactionReadOnly", `SET default_transaction_read_only = on`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := storagetest.NewDB(t)
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, db.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, tc.setup); err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, `CREATE TABLE t (n int)`)
			mustOutage(t, err, "the database is read-only")
		})
	}
}

func TestClassify_UnreachableDatabase(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := storage.Open(context.Background(), fmt.Sprintf("postgres://nobody@127.0.0.1:%d/none?sslmode=disable", port), storage.PoolConfig{ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(context.Background(), `SELECT 1`)
	mustOutage(t, err, "the database is unreachable")
}

func TestClassify_RequestFaultsAreNotOutages(t *testing.T) {
	db := storagetest.NewDB(t)
	ctx := context.Background()
	_, syntaxErr := db.Pool.Exec(ctx, `SELEC 1`)
	_, divErr := db.Pool.Exec(ctx, `SELECT 1/0`)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, cancelErr := db.Pool.Exec(cancelled, `SELECT 1`)
	for name, err := range map[string]error{
		"nil": nil, "syntax": syntaxErr, "division by zero": divErr, "cancelled by the client": cancelErr,
		"no rows": pgx.ErrNoRows, "plain": errors.New("boom"),
	} {
		if o, ok := storage.Classify(err); ok {
			t.Errorf("%s (%v): classified as outage %q", name, err, o.Reason)
		}
	}
}

func TestInTx_GivingUpOnContentionIsAnOutage(t *testing.T) {
	db := storagetest.NewDB(t)
	attempts := 0
	err := storage.InTx(context.Background(), db.Pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		attempts++
		_, err := tx.Exec(context.Background(), `DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '40001'; END $$`)
		return err
	})
	if attempts < 2 {
		t.Fatalf("attempts = %d: serialization failures were not retried", attempts)
	}
	mustOutage(t, err, "the database is too busy with conflicting changes")
}

// freePort returns a TCP port on 127.0.0.1 nothing listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
