package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/migrations"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/storage"
)

// The production-size world (`make bench-scale`): the bench's database
// filled, before authd starts, with what a platform accumulates over years.
// Factor 1 is the size: 1,000,000 users, each with a credit account
// holding on average 25 transactions (50,000,000 ledger entries), and
// 10,000,000 token rows. Smaller factors scale every count alike (develop
// against -scale 0.01).
type scaleSpec struct {
	Factor       float64 `json:"factor"`
	Users        int     `json:"users"`
	Transactions int     `json:"ledger_transactions"` // two entries each
	Access       int     `json:"access_tokens"`
	Refresh      int     `json:"refresh_tokens"`
}

func specFor(f float64) scaleSpec {
	n := func(x float64) int { return max(1, int(math.Round(x*f))) }
	return scaleSpec{Factor: f, Users: n(1e6), Transactions: n(25e6), Access: n(3e6), Refresh: n(7e6)}
}

// loaderVersion changes whenever the loader writes different rows: a cached
// world of another version is rebuilt.
const loaderVersion = 2

// scaleWorld is a loaded, cached production-size database.
type scaleWorld struct {
	Spec        scaleSpec `json:"spec"`
	Key         string    `json:"key"`
	LoadedAt    time.Time `json:"loaded_at"`
	LoadSeconds float64   `json:"load_seconds"`
	Phases      []string  `json:"phases"`
	Counts      []string  `json:"counts"`
	Runs        int       `json:"runs"`       // bench runs on this cache (each adds its own rows)
	Migrations  int       `json:"migrations"` // migrations the world was loaded with
	dir         string    // the Postgres data directory
}

func migrationCount() int {
	n := 0
	_ = fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".up.sql") {
			n++
		}
		return nil
	})
	return n
}

// scaleCacheRoot is where loaded worlds are kept: the bench's own directory
// (gitignored), unless -scale-dir says otherwise.
func scaleCacheRoot(ctx context.Context, override string) (string, error) {
	if override != "" {
		return filepath.Abs(override)
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "cmd", "authd-bench", ".scale"), nil
}

// ensureScale returns the cached world for spec under root, loading it
// first when there is none for this loader. A cached world is migrated
// forward when the bench starts it, as a production database is; one loaded
// by another loader version, or by a tree with more migrations than this one
// (another branch), is removed and loaded again.
//
// The caller holds lockScale(root) for as long as it uses the world.
func ensureScale(ctx context.Context, root string, spec scaleSpec, log io.Writer) (*scaleWorld, error) {
	prefix := fmt.Sprintf("l%d-", loaderVersion)
	key := prefix + "s" + strconv.FormatFloat(spec.Factor, 'g', -1, 64)
	dir := filepath.Join(root, key)
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			if e.IsDir() && !strings.HasPrefix(e.Name(), prefix) {
				fmt.Fprintf(log, "removing the stale production-size world %s (another loader)\n", e.Name())
				_ = os.RemoveAll(filepath.Join(root, e.Name()))
			}
		}
	}
	marker := filepath.Join(dir, "loaded.json")
	if b, err := os.ReadFile(marker); err == nil {
		sw := &scaleWorld{}
		if err := json.Unmarshal(b, sw); err == nil && sw.Migrations <= migrationCount() {
			sw.dir = filepath.Join(dir, "pg")
			sw.Runs++
			b, _ = json.MarshalIndent(sw, "", "  ")
			_ = os.WriteFile(marker, b, 0o644)
			fmt.Fprintf(log, "production-size world %s: cached (loaded %s in %.0f s; run %d on it)\n", key, sw.LoadedAt.Format(time.RFC3339), sw.LoadSeconds, sw.Runs)
			return sw, nil
		}
	}
	// A partial directory from an interrupted load is worthless.
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	if err := os.Chmod(root, 0o711); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "loading the production-size world %s: %d users, %d ledger transactions (%d entries), %d access and %d refresh token rows …\n",
		key, spec.Users, spec.Transactions, 2*spec.Transactions, spec.Access, spec.Refresh)
	sw := &scaleWorld{Spec: spec, Key: key, dir: filepath.Join(dir, "pg"), Runs: 1, Migrations: migrationCount()}
	t0 := time.Now()
	if err := loadScale(ctx, sw, log); err != nil {
		return nil, fmt.Errorf("load production-size world: %w", err)
	}
	sw.LoadedAt = time.Now().UTC()
	sw.LoadSeconds = time.Since(t0).Seconds()
	b, _ := json.MarshalIndent(sw, "", "  ")
	if err := os.WriteFile(marker, b, 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "production-size world loaded in %.0f s\n", sw.LoadSeconds)
	return sw, nil
}

// lockScale takes the cache's lock: one bench at a time loads, removes or
// runs on the worlds under root (another would delete a world being loaded,
// or start a second server on the same data directory).
func lockScale(root string) (release func(), err error) {
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(root, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another authd-bench is using %s (%v)", root, err)
	}
	return func() { f.Close() }, nil
}

// loadSettings make the one-off load fast; they are reset before the world
// is used, so the bench runs on the same settings as the empty world (and
// durable: the bench starts it with fsync and synchronous_commit on).
var loadSettings = []string{
	"wal_level = minimal", "max_wal_senders = 0", "max_wal_size = '2GB'", "checkpoint_timeout = '1h'",
	"maintenance_work_mem = '512MB'", "autovacuum = off", "work_mem = '256MB'",
}

// The tables the loader fills. Their indexes and constraints are dropped
// during the load and built afterwards (a sorted build instead of tens of
// millions of random insertions), and triggers are off for the loader's
// sessions (session_replication_role = replica): the rows are written
// complete, with the balances, chain heads and accounts the triggers and the
// ledger would have written.
var scaleTables = []string{"users", "user_roles", "ledger_accounts", "ledger_transactions", "ledger_entries", "oauth2_access", "oauth2_refresh"}

func loadScale(ctx context.Context, sw *scaleWorld, log io.Writer) error {
	cl := &storage.Cluster{Dir: sw.dir}
	if err := cl.Start(ctx); err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = cl.Stop(context.WithoutCancel(ctx))
		}
	}()
	url := cl.URL("authd")
	if err := storage.Migrate(url); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if err := execAll(ctx, url, prefixEach("ALTER SYSTEM SET ", loadSettings)...); err != nil {
		return err
	}
	if err := cl.Stop(ctx); err != nil {
		return err
	}
	if err := cl.Start(ctx); err != nil {
		return err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["session_replication_role"] = "replica"
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	phase := func(name string, t0 time.Time) {
		line := fmt.Sprintf("%s: %.1f s", name, time.Since(t0).Seconds())
		sw.Phases = append(sw.Phases, line)
		fmt.Fprintln(log, "  "+line)
	}
	t := time.Now()
	saved, err := dropIndexes(ctx, pool, scaleTables)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	spec := sw.Spec
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ledger (generated and hash-chained in Go, COPY)", func(ctx context.Context) error { return loadLedger(ctx, pool, spec, now) }},
		{"users and roles (generate_series)", func(ctx context.Context) error { return loadUsers(ctx, pool, spec) }},
		{"refresh tokens (generate_series)", func(ctx context.Context) error { return loadRefresh(ctx, pool, spec) }},
		{"access tokens (generate_series)", func(ctx context.Context) error { return loadAccess(ctx, pool, spec) }},
	}
	if err := parallel(ctx, len(steps), len(steps), func(ctx context.Context, i int) error {
		t0 := time.Now()
		if err := steps[i].fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", steps[i].name, err)
		}
		phase(steps[i].name, t0)
		return nil
	}); err != nil {
		return err
	}
	phase("rows written", t)
	t0 := time.Now()
	if err := saved.restore(ctx, pool, log); err != nil {
		return err
	}
	phase("indexes and constraints built", t0)
	t0 = time.Now()
	if _, err := pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence('ledger_accounts', 'id'), (SELECT max(id) FROM ledger_accounts))`); err != nil {
		return err
	}
	// As a long-running database would be: statistics current, visibility
	// map and hint bits set, so the first scenario does not pay for them.
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return err
	}
	phase("VACUUM (ANALYZE)", t0)
	for _, q := range []struct{ label, sql string }{
		{"users", `SELECT count(*) FROM users`},
		{"ledger accounts", `SELECT count(*) FROM ledger_accounts`},
		{"ledger transactions", `SELECT count(*) FROM ledger_transactions`},
		{"ledger entries", `SELECT count(*) FROM ledger_entries`},
		{"access token rows", `SELECT count(*) FROM oauth2_access`},
		{"refresh token rows", `SELECT count(*) FROM oauth2_refresh`},
		{"database size (MB)", `SELECT pg_database_size(current_database()) / 1048576`},
	} {
		var n int64
		if err := pool.QueryRow(ctx, q.sql).Scan(&n); err != nil {
			return err
		}
		sw.Counts = append(sw.Counts, fmt.Sprintf("%s %d", q.label, n))
	}
	fmt.Fprintln(log, "  "+strings.Join(sw.Counts, ", "))
	pool.Close()
	if err := execAll(ctx, url, "ALTER SYSTEM RESET ALL", "CHECKPOINT"); err != nil {
		return err
	}
	stopped = true
	if err := cl.Stop(ctx); err != nil {
		return err
	}
	// The load ran with fsync off: put it on disk before calling it cached.
	if out, err := exec.CommandContext(ctx, "sync").CombinedOutput(); err != nil {
		return fmt.Errorf("sync: %w: %s", err, out)
	}
	return nil
}

func prefixEach(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}

func execAll(ctx context.Context, url string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// parallel runs fn(0..n-1) on at most width goroutines; the first error
// cancels the others.
func parallel(ctx context.Context, n, width int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// savedIndexes is what dropIndexes removed, to be built again.
type savedIndexes struct {
	keys    []string // ALTER TABLE … ADD CONSTRAINT for primary keys and unique constraints
	indexes []string // CREATE INDEX …
	fks     []string // ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY (validated when added)
}

func dropIndexes(ctx context.Context, pool *pgxpool.Pool, tables []string) (*savedIndexes, error) {
	s := &savedIndexes{}
	type con struct{ table, name, def string }
	read := func(sql string) ([]con, error) {
		rows, err := pool.Query(ctx, sql, tables)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (con, error) {
			var c con
			err := r.Scan(&c.table, &c.name, &c.def)
			return c, err
		})
	}
	fks, err := read(`SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE contype = 'f' AND (conrelid = ANY($1::regclass[]) OR confrelid = ANY($1::regclass[]))`)
	if err != nil {
		return nil, err
	}
	keys, err := read(`SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE contype IN ('p', 'u') AND conrelid = ANY($1::regclass[])`)
	if err != nil {
		return nil, err
	}
	idx, err := read(`SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
		WHERE i.indrelid = ANY($1::regclass[])
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))`)
	if err != nil {
		return nil, err
	}
	var drops []string
	for _, c := range fks {
		drops = append(drops, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", c.table, pgx.Identifier{c.name}.Sanitize()))
		s.fks = append(s.fks, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", c.table, pgx.Identifier{c.name}.Sanitize(), c.def))
	}
	for _, c := range keys {
		drops = append(drops, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", c.table, pgx.Identifier{c.name}.Sanitize()))
		s.keys = append(s.keys, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", c.table, pgx.Identifier{c.name}.Sanitize(), c.def))
	}
	for _, c := range idx {
		drops = append(drops, "DROP INDEX "+c.name)
		s.indexes = append(s.indexes, c.def)
	}
	for _, d := range drops {
		if _, err := pool.Exec(ctx, d); err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
	}
	return s, nil
}

// restore builds the keys and indexes two at a time (index builds of one
// table share its SHARE lock), then the foreign keys, each validated.
func (s *savedIndexes) restore(ctx context.Context, pool *pgxpool.Pool, log io.Writer) error {
	run := func(stmts []string) error {
		return parallel(ctx, len(stmts), 2, func(ctx context.Context, i int) error {
			t0 := time.Now()
			if _, err := pool.Exec(ctx, stmts[i]); err != nil {
				return fmt.Errorf("%s: %w", stmts[i], err)
			}
			if d := time.Since(t0); d > 5*time.Second {
				fmt.Fprintf(log, "    %.0f s: %s\n", d.Seconds(), stmts[i])
			}
			return nil
		})
	}
	if err := run(append(append([]string(nil), s.keys...), s.indexes...)); err != nil {
		return err
	}
	return run(s.fks)
}

// userID is user n's id, the same in SQL (md5('scale-user-' || n)::uuid).
func userID(n int) string {
	h := md5.Sum([]byte("scale-user-" + strconv.Itoa(n)))
	s := hex.EncodeToString(h[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

const sqlUserID = `md5('scale-user-' || %s)::uuid`

func loadUsers(ctx context.Context, pool *pgxpool.Pool, spec scaleSpec) error {
	// One real bcrypt hash for everyone: login never targets these users,
	// and hashing a million passwords would be the whole load.
	pw, err := bcrypt.GenerateFromPassword([]byte(randToken()), 10)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `INSERT INTO users (id, email, email_verified, name, password_hash, created_at, updated_at)
		SELECT `+fmt.Sprintf(sqlUserID, "g")+`, 'scale-user-' || g || '@example.test', g % 10 <> 0, 'Scale User ' || g, $2, ts, ts
		FROM generate_series(1, $1::int) g,
		LATERAL (SELECT now() - interval '730 days' * (($1 - g)::float8 / $1)) t(ts)`, spec.Users, string(pw)); err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `INSERT INTO user_roles (user_id, role)
		SELECT `+fmt.Sprintf(sqlUserID, "g")+`, 'user' FROM generate_series(1, $1::int) g
		UNION ALL SELECT `+fmt.Sprintf(sqlUserID, "g")+`, 'admin' FROM generate_series(1, least($1::int, 20)) g`, spec.Users)
	return err
}

// The clients the loaded tokens and charges belong to. Their secrets are
// random and thrown away: nothing can authenticate as them.
const (
	scaleWebClient = "scale-web"
	scaleSvcClient = "scale-svc"
)

func loadClients(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `INSERT INTO oauth2_clients (id, secret_hash, name, redirect_uris, grant_types, response_types, scopes)
		VALUES ($1, sha256(gen_random_uuid()::text::bytea), 'scale web app', '{https://app.example.test/cb}',
			'{authorization_code,refresh_token}', '{code}', '{openid,offline_access,profile,credits:read}'),
		($2, sha256(gen_random_uuid()::text::bytea), 'scale service', '{}', '{client_credentials}', '{}', '{credits:charge,introspect}')
		ON CONFLICT (id) DO NOTHING`, scaleWebClient, scaleSvcClient)
	return err
}

// sessionTemplate is a token row's session_data as authd writes it, with
// __SUB__ for the subject, so the loaded rows have the real shape and size.
func sessionTemplate(now time.Time) (string, error) {
	s := oauth.NewSession("__SUB__")
	s.ClientID = scaleWebClient
	s.Extra["client_id"] = scaleWebClient
	s.Extra["roles"] = []string{"user"}
	s.Claims.Issuer = "https://auth.example.test"
	s.Claims.AuthTime = now
	s.Claims.RequestedAt = now
	s.SetExpiresAt("access_token", now.Add(15*time.Minute))
	s.SetExpiresAt("refresh_token", now.Add(720*time.Hour))
	s.BrowserSessionID = "00000000-0000-4000-8000-000000000000"
	b, err := json.Marshal(s)
	return string(b), err
}

// loadRefresh writes refresh-token families of eight generations: seven
// used (rotated: first_used_at and the saved response set, kept until they
// expire for reuse detection) and the active one; one family in forty has
// expired and waits for the purge. Live rows expire a year after the load,
// so every run on a cached world sees the same table (expires_at is read by
// the purge only; fosite reads expiry from the session).
func loadRefresh(ctx context.Context, pool *pgxpool.Pool, spec scaleSpec) error {
	if err := loadClients(ctx, pool); err != nil {
		return err
	}
	tmpl, err := sessionTemplate(time.Now())
	if err != nil {
		return err
	}
	// Expired rows first: in production the purge's candidates are the
	// oldest rows, in the oldest pages, which is what the BRIN index on
	// expires_at relies on.
	for _, expired := range []bool{true, false} {
		if _, err = pool.Exec(ctx, `INSERT INTO oauth2_refresh (signature, request_id, requested_at, client_id, scopes, granted_scopes,
			requested_audience, granted_audience, form_data, session_data, subject, active, expires_at,
			access_token_signature, first_used_at, rotated_response)
		SELECT encode(sha256(('scale-refresh-' || g)::bytea), 'hex'), md5('scale-family-' || f)::uuid::text, ts, $3,
			'{offline_access,profile,credits:read}', '{offline_access,profile,credits:read}', '{}', '{}',
			'grant_type=refresh_token', replace($4, '__SUB__', sub)::jsonb, sub, gen = 7,
			CASE WHEN f % 40 = 0 THEN now() - interval '1 day' ELSE now() + interval '365 days' END,
			encode(sha256(('scale-refresh-access-' || g)::bytea), 'hex'),
			CASE WHEN gen < 7 THEN ts + interval '15 minutes' END,
			CASE WHEN gen < 7 THEN decode(repeat(md5(g::text), 38), 'hex') END
		FROM generate_series(1, $1::int) g,
		LATERAL (SELECT (g - 1) / 8 AS f, (g - 1) % 8 AS gen) x,
		LATERAL (SELECT (`+fmt.Sprintf(sqlUserID, "1 + f % $2")+`)::text AS sub,
			CASE WHEN f % 40 = 0 THEN now() - interval '31 days' ELSE now() - interval '1 day' * (f % 28) END
				+ interval '3 hours' * gen AS ts) s
		WHERE (f % 40 = 0) = $5`, spec.Refresh, spec.Users, scaleWebClient, tmpl, expired); err != nil {
			return err
		}
	}
	return err
}

// loadAccess writes access-token rows: a service's client_credentials
// tokens and users' tokens; one in five has expired and waits for the purge
// (about one purge interval's worth at production rates).
func loadAccess(ctx context.Context, pool *pgxpool.Pool, spec scaleSpec) error {
	tmpl, err := sessionTemplate(time.Now())
	if err != nil {
		return err
	}
	for _, expired := range []bool{true, false} { // expired first, as in loadRefresh
		if _, err = pool.Exec(ctx, `INSERT INTO oauth2_access (signature, request_id, requested_at, client_id, scopes, granted_scopes,
			requested_audience, granted_audience, form_data, session_data, subject, active, expires_at)
		SELECT encode(sha256(('scale-access-' || g)::bytea), 'hex'), md5('scale-access-req-' || g)::uuid::text,
			now() - interval '1 second' * (g % 1500), CASE WHEN user_token THEN $3 ELSE $4 END,
			CASE WHEN user_token THEN '{offline_access,profile,credits:read}'::text[] ELSE '{credits:charge}'::text[] END,
			CASE WHEN user_token THEN '{offline_access,profile,credits:read}'::text[] ELSE '{credits:charge}'::text[] END,
			'{}', '{}', '', replace($5, '__SUB__', sub)::jsonb, sub, true,
			CASE WHEN g % 5 = 0 THEN now() - interval '1 second' * (g % 600) ELSE now() + interval '365 days' END
		FROM generate_series(1, $1::int) g,
		LATERAL (SELECT g % 10 < 3 AS user_token) u,
		LATERAL (SELECT CASE WHEN user_token THEN (`+fmt.Sprintf(sqlUserID, "1 + g % $2")+`)::text ELSE '' END AS sub) s
		WHERE (g % 5 = 0) = $6`,
			spec.Access, spec.Users, scaleWebClient, scaleSvcClient, tmpl, expired); err != nil {
			return err
		}
	}
	return err
}

// splitmix64 is a tiny deterministic mixer for the generated history.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// loadLedger writes every user's credit account with its history: a welcome
// grant, then a service's charges with an admin top-up every tenth posting,
// over two years. Each transaction is sealed by the ledger package's own
// hashing (ledger.Seal), chained per account exactly as postings are, so
// `authd ledger verify` checks the loaded history like any other. Three
// COPY streams (transactions, entries, accounts) run side by side.
func loadLedger(ctx context.Context, pool *pgxpool.Pool, spec scaleSpec, now time.Time) error {
	type stream struct {
		sql string
		pr  *io.PipeReader
		pw  *io.PipeWriter
		bw  *bufio.Writer
	}
	streams := []*stream{
		{sql: `COPY ledger_transactions (id, account_id, seq, kind, direction, amount, reference, description, reason,
			refund_of, balance_after, actor_type, actor_id, request_id, fingerprint, prev_hash, hash, created_at, client_id) FROM STDIN`},
		{sql: `COPY ledger_entries (transaction_id, account_id, amount) FROM STDIN`},
		{sql: `COPY ledger_accounts (id, kind, user_id, name, balance, head_seq, created_at) FROM STDIN`},
	}
	errc := make(chan error, len(streams)+1)
	for _, s := range streams {
		s.pr, s.pw = io.Pipe()
		s.bw = bufio.NewWriterSize(s.pw, 1<<20)
		go func() {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				s.pr.CloseWithError(err)
				errc <- err
				return
			}
			defer conn.Release()
			_, err = conn.Conn().PgConn().CopyFrom(ctx, s.pr, s.sql)
			s.pr.CloseWithError(err) // unblocks the generator if COPY failed
			errc <- err
		}()
	}
	genErr := generateLedger(spec, now, streams[0].bw, streams[1].bw, streams[2].bw)
	for _, s := range streams {
		if err := s.bw.Flush(); err != nil && genErr == nil {
			genErr = err
		}
		s.pw.CloseWithError(genErr)
	}
	var first error
	for range streams {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	if genErr != nil && !errors.Is(genErr, io.ErrClosedPipe) {
		return genErr
	}
	return first
}

// generateLedger writes COPY text rows. Account ids are 999 + n for user n
// (the identity starts at 1000; its sequence is set after the load).
func generateLedger(spec scaleSpec, now time.Time, txw, ew, aw *bufio.Writer) error {
	mean := max(1, spec.Transactions/spec.Users)
	remaining := spec.Transactions
	var reqID [8]byte
	line := make([]byte, 0, 1024)
	for n := 1; n <= spec.Users; n++ {
		uid := userID(n)
		acct := int64(999 + n)
		r := splitmix64(uint64(n))
		// Between 1 and 2*mean-1 transactions, mean on average; the last
		// account takes what is left so the total is exact.
		k := 1 + int(r%uint64(2*mean-1))
		if n == spec.Users || k > remaining-(spec.Users-n) {
			k = remaining - (spec.Users - n)
		}
		if k < 0 {
			k = 0
		}
		remaining -= k
		userCreated := now.Add(-730 * 24 * time.Hour).Add(time.Duration(float64(730*24*time.Hour) * float64(n-1) / float64(spec.Users)))
		start := userCreated.Add(time.Minute)
		step := time.Duration(0)
		if k > 0 {
			step = (now.Sub(start) - time.Minute) / time.Duration(k)
		}
		prev := ledger.Genesis()
		var bal int64
		for seq := 1; seq <= k; seq++ {
			rs := splitmix64(r ^ uint64(seq)<<20)
			t := ledger.Transaction{UserID: uid, Seq: int64(seq), CreatedAt: start.Add(step * time.Duration(seq-1)).Truncate(time.Microsecond)}
			switch {
			case seq == 1:
				t.Kind, t.Direction, t.Amount = ledger.KindGrant, ledger.Credit, 1_000_000
				t.Reference, t.Description = "welcome", "Welcome credits"
				t.Actor = ledger.Actor{Type: ledger.ActorAdmin, ID: userID(1 + n%20)}
			case seq%10 == 0:
				t.Kind, t.Direction, t.Amount = ledger.KindGrant, ledger.Credit, 10_000
				t.Reference, t.Description = "topup-"+strconv.Itoa(seq), "Top-up"
				t.Actor = ledger.Actor{Type: ledger.ActorAdmin, ID: userID(1 + n%20)}
			default:
				t.Kind, t.Direction, t.Amount = ledger.KindSpend, ledger.Debit, int64(1+rs%100)
				t.Reference, t.Description = "order-"+strconv.Itoa(seq)+"-"+strconv.FormatUint(rs>>40, 36), "API usage"
				t.Actor = ledger.Actor{Type: ledger.ActorClient, ID: scaleSvcClient}
				t.ClientID = scaleSvcClient
			}
			signed := t.Amount
			if t.Direction == ledger.Debit {
				signed = -signed
			}
			bal += signed
			t.BalanceAfter = bal
			binaryPut(reqID[:], rs)
			t.RequestID = hex.EncodeToString(reqID[:])
			t.ID = ledger.NewIDAt(t.CreatedAt.UnixMilli())
			sealed := ledger.Seal(t, acct, prev)
			prev = sealed.Hash

			line = line[:0]
			line = append(line, t.ID...)
			line = append(line, '\t')
			line = strconv.AppendInt(line, acct, 10)
			line = append(line, '\t')
			line = strconv.AppendInt(line, t.Seq, 10)
			line = append(line, '\t')
			line = append(line, t.Kind...)
			line = append(line, '\t')
			line = append(line, t.Direction...)
			line = append(line, '\t')
			line = strconv.AppendInt(line, t.Amount, 10)
			line = append(line, '\t')
			line = append(line, t.Reference...)
			line = append(line, '\t')
			line = append(line, t.Description...)
			line = append(line, "\t\t\\N\t"...) // reason '', refund_of NULL
			line = strconv.AppendInt(line, t.BalanceAfter, 10)
			line = append(line, '\t')
			line = append(line, t.Actor.Type...)
			line = append(line, '\t')
			line = append(line, t.Actor.ID...)
			line = append(line, '\t')
			line = append(line, t.RequestID...)
			for _, b := range [][]byte{sealed.Fingerprint, sealed.PrevHash, sealed.Hash} {
				line = append(line, "\t\\\\x"...)
				line = hex.AppendEncode(line, b)
			}
			line = append(line, '\t')
			line = t.CreatedAt.AppendFormat(line, "2006-01-02 15:04:05.999999Z07:00")
			line = append(line, '\t')
			line = append(line, t.ClientID...)
			line = append(line, '\n')
			if _, err := txw.Write(line); err != nil {
				return err
			}
			system := int64(1) // issuance
			if t.Kind == ledger.KindSpend {
				system = 2 // revenue
			}
			line = line[:0]
			for _, e := range [2]struct{ acct, amount int64 }{{acct, signed}, {system, -signed}} {
				line = append(line, t.ID...)
				line = append(line, '\t')
				line = strconv.AppendInt(line, e.acct, 10)
				line = append(line, '\t')
				line = strconv.AppendInt(line, e.amount, 10)
				line = append(line, '\n')
			}
			if _, err := ew.Write(line); err != nil {
				return err
			}
		}
		line = line[:0]
		line = strconv.AppendInt(line, acct, 10)
		line = append(line, "\tuser\t"...)
		line = append(line, uid...)
		line = append(line, "\t\\N\t"...)
		line = strconv.AppendInt(line, bal, 10)
		line = append(line, '\t')
		line = strconv.AppendInt(line, int64(k), 10)
		line = append(line, '\t')
		line = userCreated.Truncate(time.Microsecond).AppendFormat(line, "2006-01-02 15:04:05.999999Z07:00")
		line = append(line, '\n')
		if _, err := aw.Write(line); err != nil {
			return err
		}
	}
	return nil
}

func binaryPut(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}
