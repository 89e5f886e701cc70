package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	root := pgDir(t)
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
		// entry ids number the entries in account and chain order from 1,
		// two per transaction, as one COPY drawing them from the identity did
		{`SELECT min(id) FROM ledger_entries`, 1},
		{`SELECT max(id) - count(*) FROM ledger_entries`, 0},
		{`SELECT count(*) FROM (SELECT e.id, lag(e.id) OVER (ORDER BY t.account_id, t.seq) AS prev
			FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id AND e.id % 2 = 1) s
			WHERE id <> coalesce(prev + 2, 1)`, 0},
		{`SELECT count(*) FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
			WHERE e.account_id <> t.account_id AND e.id % 2 = 1`, 0},
		// and the identity continues after them
		{`SELECT count(*) FROM ledger_entries WHERE id >= (SELECT nextval(pg_get_serial_sequence('ledger_entries', 'id')))`, 0},
		// written frozen (and vacuumed): every page all-visible
		{`SELECT count(*) FROM pg_class WHERE oid = ANY('{users,user_roles,ledger_accounts,ledger_transactions,ledger_entries,oauth2_access,oauth2_refresh}'::regclass[])
			AND relallvisible < relpages`, 0},
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

// TestScale_TokenRowsMatchSQL checks the token rows generated in Go
// against the SQL that wrote them before (loader version 2, with now()
// fixed to the load's time): the same rows, value for value, so a world
// loaded by either is the same world.
func TestScale_TokenRowsMatchSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx := context.Background()
	pool := migratedPool(t)
	if err := loadClients(ctx, pool); err != nil {
		t.Fatal(err)
	}
	spec := specFor(0.0002)
	now := time.Now().UTC().Truncate(time.Microsecond)
	var tz string
	if err := pool.QueryRow(ctx, `SELECT current_setting('TimeZone')`).Scan(&tz); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := newTokenGen(now, loc)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := strings.Join(tg.session, "__SUB__")
	if err := fillTable(ctx, pool, "oauth2_refresh", refreshColumns, func(c *chunker) error { return tg.refreshRows(c, spec) }); err != nil {
		t.Fatal(err)
	}
	if err := fillTable(ctx, pool, "oauth2_access", accessColumns, func(c *chunker) error { return tg.accessRows(c, spec) }); err != nil {
		t.Fatal(err)
	}

	// Version 2's statements, now() replaced by $6.
	if _, err := pool.Exec(ctx, `CREATE TABLE want_refresh (LIKE oauth2_refresh INCLUDING DEFAULTS);
		CREATE TABLE want_access (LIKE oauth2_access INCLUDING DEFAULTS)`); err != nil {
		t.Fatal(err)
	}
	for _, expired := range []bool{true, false} {
		if _, err = pool.Exec(ctx, `INSERT INTO want_refresh (signature, request_id, requested_at, client_id, scopes, granted_scopes,
			requested_audience, granted_audience, form_data, session_data, subject, active, expires_at,
			access_token_signature, first_used_at, rotated_response)
		SELECT encode(sha256(('scale-refresh-' || g)::bytea), 'hex'), md5('scale-family-' || f)::uuid::text, ts, $3,
			'{offline_access,profile,credits:read}', '{offline_access,profile,credits:read}', '{}', '{}',
			'grant_type=refresh_token', replace($4, '__SUB__', sub)::jsonb, sub, gen = 7,
			CASE WHEN f % 40 = 0 THEN $6::timestamptz - interval '1 day' ELSE $6::timestamptz + interval '365 days' END,
			encode(sha256(('scale-refresh-access-' || g)::bytea), 'hex'),
			CASE WHEN gen < 7 THEN ts + interval '15 minutes' END,
			CASE WHEN gen < 7 THEN decode(repeat(md5(g::text), 38), 'hex') END
		FROM generate_series(1, $1::int) g,
		LATERAL (SELECT (g - 1) / 8 AS f, (g - 1) % 8 AS gen) x,
		LATERAL (SELECT (md5('scale-user-' || 1 + f % $2)::uuid)::text AS sub,
			CASE WHEN f % 40 = 0 THEN $6::timestamptz - interval '31 days' ELSE $6::timestamptz - interval '1 day' * (f % 28) END
				+ interval '3 hours' * gen AS ts) s
		WHERE (f % 40 = 0) = $5`, spec.Refresh, spec.Users, scaleWebClient, tmpl, expired, now); err != nil {
			t.Fatal(err)
		}
		if _, err = pool.Exec(ctx, `INSERT INTO want_access (signature, request_id, requested_at, client_id, scopes, granted_scopes,
			requested_audience, granted_audience, form_data, session_data, subject, active, expires_at)
		SELECT encode(sha256(('scale-access-' || g)::bytea), 'hex'), md5('scale-access-req-' || g)::uuid::text,
			$7::timestamptz - interval '1 second' * (g % 1500), CASE WHEN user_token THEN $3 ELSE $4 END,
			CASE WHEN user_token THEN '{offline_access,profile,credits:read}'::text[] ELSE '{credits:charge}'::text[] END,
			CASE WHEN user_token THEN '{offline_access,profile,credits:read}'::text[] ELSE '{credits:charge}'::text[] END,
			'{}', '{}', '', replace($5, '__SUB__', sub)::jsonb, sub, true,
			CASE WHEN g % 5 = 0 THEN $7::timestamptz - interval '1 second' * (g % 600) ELSE $7::timestamptz + interval '365 days' END
		FROM generate_series(1, $1::int) g,
		LATERAL (SELECT g % 10 < 3 AS user_token) u,
		LATERAL (SELECT CASE WHEN user_token THEN (md5('scale-user-' || 1 + g % $2)::uuid)::text ELSE '' END AS sub) s
		WHERE (g % 5 = 0) = $6`,
			spec.Access, spec.Users, scaleWebClient, scaleSvcClient, tmpl, expired, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		table string
		rows  int
	}{{"oauth2_refresh", spec.Refresh}, {"oauth2_access", spec.Access}} {
		var got, missing, extra int
		if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %[1]s),
			(SELECT count(*) FROM (TABLE want_%[2]s EXCEPT ALL TABLE %[1]s) x),
			(SELECT count(*) FROM (TABLE %[1]s EXCEPT ALL TABLE want_%[2]s) x)`, tc.table, strings.TrimPrefix(tc.table, "oauth2_"))).
			Scan(&got, &missing, &extra); err != nil {
			t.Fatal(err)
		}
		if got != tc.rows || missing != 0 || extra != 0 {
			t.Errorf("%s: %d rows, want %d; %d of the SQL's rows missing, %d rows it did not write", tc.table, got, tc.rows, missing, extra)
		}
	}
}

// TestScale_RefusesSeededTables: the loader empties the tables it fills,
// so rows a migration put there would be lost without a word.
func TestScale_RefusesSeededTables(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx := context.Background()
	pool := migratedPool(t)
	if err := checkLoadable(ctx, pool); err != nil {
		t.Fatalf("freshly migrated: %v", err)
	}
	// A seeded user (with the account its trigger opens).
	if _, err := pool.Exec(ctx, `INSERT INTO users (email, password_hash) VALUES ('seed@example.test', '!')`); err != nil {
		t.Fatal(err)
	}
	if err := checkLoadable(ctx, pool); err == nil || !strings.Contains(err.Error(), "users holds 1 rows") {
		t.Fatalf("checkLoadable with a seeded user: %v", err)
	}
}

// BenchmarkLedgerGenerate is one run of accounts (1,000 accounts, about
// 25,000 transactions) as the loader builds it.
func BenchmarkLedgerGenerate(b *testing.B) {
	lp := planLedger(specFor(0.01))
	now := time.Now()
	for b.Loop() {
		lp.generate(0, now)
	}
}

// BenchmarkRefreshRows is the refresh-token rows at -scale 0.01 (70,000).
func BenchmarkRefreshRows(b *testing.B) {
	tg, err := newTokenGen(time.Now(), time.UTC)
	if err != nil {
		b.Fatal(err)
	}
	spec := specFor(0.01)
	for b.Loop() {
		c := &chunker{ctx: context.Background(), out: discardChunks(b.Context())}
		if err := tg.refreshRows(c, spec); err != nil {
			b.Fatal(err)
		}
	}
}

func discardChunks(ctx context.Context) chan<- []byte {
	ch := make(chan []byte)
	go func() {
		for {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// pgDir is a temporary directory a private Postgres can live under:
// traversable by the unprivileged user PostgreSQL runs as under root.
func pgDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// migratedPool starts a private Postgres for the test, migrates it and
// connects; all of it goes with the test.
func migratedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	cl := &storage.Cluster{Dir: filepath.Join(pgDir(t), "pg")}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Stop(context.Background()) })
	if err := storage.Migrate(cl.URL("authd")); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, cl.URL("authd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
