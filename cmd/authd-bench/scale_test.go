package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage"
)

// TestScale_TinyWorldVerifies loads a tiny production-size world and checks
// what bench-scale relies on: the counts asked for, a ledger that `ledger
// verify` passes, the keys and foreign keys back in place, the cache marker
// (a second ensureScale reuses the world), and settings reset to the
// defaults the bench runs with.
func TestScale_TinyWorldVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx := context.Background()
	root := t.TempDir()
	// Traversable by the unprivileged user PostgreSQL runs as under root.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	spec := specFor(0.0002) // 200 users, 5,000 transactions, 600 access and 1,400 refresh rows
	release, err := lockScale(root)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := lockScale(root); err == nil {
		t.Fatal("a second lock on the same cache succeeded")
	}
	sw, err := ensureScale(ctx, root, spec, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ensureScale(ctx, root, spec, io.Discard)
	if err != nil || again.Runs != 2 || again.LoadSeconds != sw.LoadSeconds {
		t.Fatalf("second ensureScale: %+v, %v; want the cached world", again, err)
	}

	cl := &storage.Cluster{Dir: sw.dir, Durable: true}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Stop(context.Background()) }()
	pool, err := pgxpool.New(ctx, cl.URL("authd"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rep, err := ledger.Verify(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Transactions != int64(spec.Transactions) || rep.Entries != 2*int64(spec.Transactions) {
		t.Fatalf("verify: %s; want OK with %d transactions", rep, spec.Transactions)
	}
	for _, q := range []struct {
		sql  string
		want int64
	}{
		{`SELECT count(*) FROM users`, int64(spec.Users)},
		{`SELECT count(*) FROM ledger_accounts WHERE kind = 'user'`, int64(spec.Users)},
		{`SELECT count(*) FROM oauth2_access`, int64(spec.Access)},
		{`SELECT count(*) FROM oauth2_refresh`, int64(spec.Refresh)},
		{`SELECT count(*) FROM oauth2_refresh WHERE active`, int64(spec.Refresh / 8)},
		// every key and foreign key of the loaded tables is back
		{`SELECT count(*) FROM pg_constraint WHERE conrelid = 'ledger_entries'::regclass AND contype IN ('p', 'f') AND convalidated`, 3},
		{`SELECT count(*) FROM pg_indexes WHERE tablename = 'ledger_transactions'`, 6},
		{`SELECT count(*) FROM pg_settings WHERE sourcefile LIKE '%postgresql.auto.conf'`, 0},
	} {
		var n int64
		if err := pool.QueryRow(ctx, q.sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
		if n != q.want {
			t.Errorf("%s = %d, want %d", q.sql, n, q.want)
		}
	}
	// The accounts' identity continues after the loaded ids.
	var next int64
	if _, err := pool.Exec(ctx, `INSERT INTO users (email, password_hash) VALUES ('new@example.test', '!')`); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT a.id FROM ledger_accounts a JOIN users u ON u.id = a.user_id WHERE u.email = 'new@example.test'`).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if next <= int64(999+spec.Users) {
		t.Fatalf("new account id %d collides with the loaded ones (up to %d)", next, 999+spec.Users)
	}
	if _, err := os.Stat(filepath.Join(root, sw.Key, "loaded.json")); err != nil {
		t.Fatal(err)
	}
}
