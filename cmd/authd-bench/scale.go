package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/errgroup"

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
// ledger would have written. Each is emptied and filled by one binary
// COPY … FREEZE (copyFreeze); migrations leave only the ledger's two system
// accounts in them, which the ledger's loader writes back as they were.
var scaleTables = []string{"users", "user_roles", "ledger_accounts", "ledger_transactions", "ledger_entries", "oauth2_access", "oauth2_refresh"}

// checkLoadable refuses to load over rows the loader would lose: each
// table is emptied before it is filled, and only the ledger's system
// accounts are written back. A migration that seeds one of these tables
// must be handled here first.
func checkLoadable(ctx context.Context, pool *pgxpool.Pool) error {
	for _, t := range scaleTables {
		q := `SELECT count(*) FROM ` + t
		if t == "ledger_accounts" {
			q += ` WHERE kind <> 'system'`
		}
		var n int64
		if err := pool.QueryRow(ctx, q).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%s holds %d rows after the migrations; the loader empties it before filling it", t, n)
		}
	}
	return nil
}

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
	cfg.MaxConns = 24 // every build of the two largest tables at once
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
	// The whole phases also report the CPU they took (Postgres' processes
	// and this one's), which a shared machine's load does not inflate as it
	// does the wall clock.
	pgCPU := treeCPU{pidFile: postmasterPidFile(sw.dir), hz: clockTicks()}
	cpuAt := func() [2]time.Duration {
		p, _ := pgCPU.CPU()
		l, _ := selfCPU{}.CPU()
		return [2]time.Duration{p, l}
	}
	c0 := cpuAt()
	wholePhase := func(name string, t0 time.Time) {
		c := cpuAt()
		line := fmt.Sprintf("%s: %.1f s (CPU: Postgres %.0f s, loader %.0f s; load average %s)", name, time.Since(t0).Seconds(),
			(c[0] - c0[0]).Seconds(), (c[1] - c0[1]).Seconds(), loadAverage())
		c0 = c
		sw.Phases = append(sw.Phases, line)
		fmt.Fprintln(log, "  "+line)
	}
	t := time.Now()
	if err := checkLoadable(ctx, pool); err != nil {
		return err
	}
	saved, err := dropIndexes(ctx, pool, scaleTables)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	spec := sw.Spec
	var tz string
	if err := pool.QueryRow(ctx, `SELECT current_setting('TimeZone')`).Scan(&tz); err != nil {
		return err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return fmt.Errorf("the server's time zone: %w", err)
	}
	tg, err := newTokenGen(now, loc)
	if err != nil {
		return err
	}
	if err := loadClients(ctx, pool); err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ledger (generated and hash-chained in Go on every core, binary COPY)", func(ctx context.Context) error { return loadLedger(ctx, pool, spec, now) }},
		{"refresh tokens (generated in Go, binary COPY)", func(ctx context.Context) error {
			return fillTable(ctx, pool, "oauth2_refresh", refreshColumns, func(c *chunker) error { return tg.refreshRows(c, spec) })
		}},
		{"access tokens (generated in Go, binary COPY)", func(ctx context.Context) error {
			return fillTable(ctx, pool, "oauth2_access", accessColumns, func(c *chunker) error { return tg.accessRows(c, spec) })
		}},
		{"users and roles (generate_series, binary COPY)", func(ctx context.Context) error { return loadUsers(ctx, pool, spec) }},
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
	wholePhase("rows written", t)
	t0 := time.Now()
	if err := saved.buildIndexes(ctx, pool, log); err != nil {
		return err
	}
	wholePhase("keys and indexes built", t0)
	t0 = time.Now()
	// The identities continue after the loaded ids (the entries' ids were
	// written, not drawn from it).
	for _, t := range []string{"ledger_accounts", "ledger_entries"} {
		if _, err := pool.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), (SELECT max(id) FROM `+t+`))`, t); err != nil {
			return err
		}
	}
	// As a long-running database would be: statistics current, visibility
	// map and hint bits set, so the first scenario does not pay for them.
	// The loaded tables were written frozen and all-visible, so VACUUM
	// skips their pages and this is mostly ANALYZE; it runs before the
	// foreign keys are validated, for the planner's statistics.
	if _, err := pool.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return err
	}
	wholePhase("VACUUM (ANALYZE)", t0)
	t0 = time.Now()
	if err := saved.validateForeignKeys(ctx, pool, log); err != nil {
		return err
	}
	wholePhase("foreign keys validated", t0)
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

// loadAverage is the 1-minute load average, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
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
	builds []ddl // keys, unique constraints and indexes
	fks    []ddl // foreign keys
}

// ddl is one statement to run again on table; name is the constraint's.
type ddl struct{ table, name, sql string }

func dropIndexes(ctx context.Context, pool *pgxpool.Pool, tables []string) (*savedIndexes, error) {
	s := &savedIndexes{}
	read := func(sql string) ([]ddl, error) {
		rows, err := pool.Query(ctx, sql, tables)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ddl, error) {
			var c ddl
			err := r.Scan(&c.table, &c.name, &c.sql)
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
		c.sql = fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", c.table, pgx.Identifier{c.name}.Sanitize(), c.sql)
		s.fks = append(s.fks, c)
	}
	for _, c := range keys {
		drops = append(drops, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", c.table, pgx.Identifier{c.name}.Sanitize()))
		c.sql = fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s %s", c.table, pgx.Identifier{c.name}.Sanitize(), c.sql)
		s.builds = append(s.builds, c)
	}
	for _, c := range idx {
		drops = append(drops, "DROP INDEX "+c.name)
		s.builds = append(s.builds, c)
	}
	for _, d := range drops {
		if _, err := pool.Exec(ctx, d); err != nil {
			return nil, fmt.Errorf("%s: %w", d, err)
		}
	}
	return s, nil
}

// buildIndexes builds the keys and indexes table by table, largest table
// first, two tables at a time; all of one table's builds start together.
// Each build reads the whole table, and builds that start together share
// one read of it (synchronized sequential scans): on the production-size
// world the tables are larger than what the page cache keeps.
func (s *savedIndexes) buildIndexes(ctx context.Context, pool *pgxpool.Pool, log io.Writer) error {
	byTable := map[string][]ddl{}
	var tables []string
	for _, b := range s.builds {
		if byTable[b.table] == nil {
			tables = append(tables, b.table)
		}
		byTable[b.table] = append(byTable[b.table], b)
	}
	size := map[string]int64{}
	for _, t := range tables {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT pg_relation_size($1::regclass)`, t).Scan(&n); err != nil {
			return err
		}
		size[t] = n
	}
	sort.SliceStable(tables, func(i, j int) bool { return size[tables[i]] > size[tables[j]] })
	return parallel(ctx, len(tables), 2, func(ctx context.Context, i int) error {
		builds := byTable[tables[i]]
		return parallel(ctx, len(builds), len(builds), func(ctx context.Context, j int) error {
			return timedExec(ctx, pool, log, builds[j].sql)
		})
	})
}

// validateForeignKeys adds the foreign keys NOT VALID, then validates
// them, two at a time: VALIDATE CONSTRAINT locks the referenced table
// more weakly than ADD (ROW SHARE), so checks of different tables run side
// by side, and every constraint ends up validated as ADD would leave it.
// The check is an anti-join of the referencing column with the referenced
// key; with both indexed and the tables all-visible (written frozen), a
// merge join of two index-only scans reads the indexes once in order,
// where the hash join the planner otherwise picks for the 50-million-entry
// ledger spills a table of 25 million keys to disk.
func (s *savedIndexes) validateForeignKeys(ctx context.Context, pool *pgxpool.Pool, log io.Writer) error {
	for _, fk := range s.fks {
		if _, err := pool.Exec(ctx, fk.sql+" NOT VALID"); err != nil {
			return fmt.Errorf("%s NOT VALID: %w", fk.sql, err)
		}
	}
	return parallel(ctx, len(s.fks), 2, func(ctx context.Context, i int) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		if _, err := tx.Exec(ctx, `SET LOCAL enable_hashjoin = off`); err != nil {
			return err
		}
		if err := timedExec(ctx, tx, log, fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s", s.fks[i].table, pgx.Identifier{s.fks[i].name}.Sanitize())); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

func timedExec(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, log io.Writer, sql string) error {
	t0 := time.Now()
	if _, err := db.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		fmt.Fprintf(log, "    %.0f s: %s\n", d.Seconds(), sql)
	}
	return nil
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
	// COPY (query) takes no parameters; a bcrypt hash has no quotes.
	if err := copySelect(ctx, pool, "users", "id, email, email_verified, name, password_hash, created_at, updated_at",
		fmt.Sprintf(`SELECT `+fmt.Sprintf(sqlUserID, "g")+`, 'scale-user-' || g || '@example.test', g %% 10 <> 0, 'Scale User ' || g, '%[2]s'::text, ts, ts
		FROM generate_series(1, %[1]d) g,
		LATERAL (SELECT now() - interval '730 days' * ((%[1]d - g)::float8 / %[1]d)) t(ts)`, spec.Users, pw)); err != nil {
		return err
	}
	return copySelect(ctx, pool, "user_roles", "user_id, role", fmt.Sprintf(`SELECT `+fmt.Sprintf(sqlUserID, "g")+`, 'user'::text FROM generate_series(1, %[1]d) g
		UNION ALL SELECT `+fmt.Sprintf(sqlUserID, "g")+`, 'admin'::text FROM generate_series(1, least(%[1]d, 20)) g`, spec.Users))
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

// tokenGen is what the token rows are built from: the load's time and the
// server's time zone (interval arithmetic in days follows its calendar, as
// now() - interval '1 day' does), the session template cut at its subject.
type tokenGen struct {
	now     time.Time
	loc     *time.Location
	session []string // sessionTemplate split at __SUB__
}

func newTokenGen(now time.Time, loc *time.Location) (*tokenGen, error) {
	tmpl, err := sessionTemplate(time.Now())
	if err != nil {
		return nil, err
	}
	return &tokenGen{now: now, loc: loc, session: strings.Split(tmpl, "__SUB__")}, nil
}

// days is now plus d calendar days in the server's time zone.
func (g *tokenGen) days(d int) time.Time { return g.now.In(g.loc).AddDate(0, 0, d) }

// sessionJSONB appends the session of subject sub.
func (g *tokenGen) sessionJSONB(b rowBuf, sub string) rowBuf {
	n := 1 + (len(g.session)-1)*len(sub)
	for _, p := range g.session {
		n += len(p)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, 1) // jsonb version
	for i, p := range g.session {
		if i > 0 {
			b = append(b, sub...)
		}
		b = append(b, p...)
	}
	return b
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func md5UUID(s string) string { return hexUUID(md5.Sum([]byte(s))) }

const refreshColumns = `signature, request_id, requested_at, client_id, scopes, granted_scopes,
	requested_audience, granted_audience, form_data, session_data, subject, active, expires_at,
	access_token_signature, first_used_at, rotated_response`

// refreshRows writes refresh-token families of eight generations: seven
// used (rotated: first_used_at and the saved response set, kept until they
// expire for reuse detection) and the active one; one family in forty has
// expired and waits for the purge. Live rows expire a year after the load,
// so every run on a cached world sees the same table (expires_at is read by
// the purge only; fosite reads expiry from the session). Row g (from 1) is
// generation (g-1)%8 of family (g-1)/8.
func (tg *tokenGen) refreshRows(c *chunker, spec scaleSpec) error {
	scopes := textArray("offline_access", "profile", "credits:read")
	empty := textArray()
	expiredAt, liveUntil := tg.days(-1), tg.days(365)
	sub := "" // the family's subject
	// Expired rows first: in production the purge's candidates are the
	// oldest rows, in the oldest pages, which is what the BRIN index on
	// expires_at relies on.
	for _, expired := range []bool{true, false} {
		for g := 1; g <= spec.Refresh; g++ {
			f, gen := (g-1)/8, (g-1)%8
			if (f%40 == 0) != expired {
				continue
			}
			if gen == 0 || sub == "" {
				sub = userID(1 + f%spec.Users)
			}
			var ts time.Time
			if expired {
				ts = tg.days(-31)
			} else {
				ts = tg.days(-(f % 28))
			}
			ts = ts.Add(3 * time.Hour * time.Duration(gen))
			b := c.b.row(16).text(sha256Hex("scale-refresh-" + strconv.Itoa(g))).text(md5UUID("scale-family-" + strconv.Itoa(f))).
				timestamptz(ts).text(scaleWebClient).raw(scopes).raw(scopes).raw(empty).raw(empty).text("grant_type=refresh_token")
			b = tg.sessionJSONB(b, sub).text(sub).bool(gen == 7)
			if expired {
				b = b.timestamptz(expiredAt)
			} else {
				b = b.timestamptz(liveUntil)
			}
			b = b.text(sha256Hex("scale-refresh-access-" + strconv.Itoa(g)))
			if gen < 7 {
				b = b.timestamptz(ts.Add(15 * time.Minute))
				h := md5.Sum([]byte(strconv.Itoa(g)))
				b = binary.BigEndian.AppendUint32(b, 38*16)
				for range 38 {
					b = append(b, h[:]...)
				}
			} else {
				b = b.null().null()
			}
			c.b = b
			if err := c.full(); err != nil {
				return err
			}
		}
	}
	return nil
}

const accessColumns = `signature, request_id, requested_at, client_id, scopes, granted_scopes,
	requested_audience, granted_audience, form_data, session_data, subject, active, expires_at`

// accessRows writes access-token rows: a service's client_credentials
// tokens and users' tokens (three in ten); one in five has expired and
// waits for the purge (about one purge interval's worth at production
// rates).
func (tg *tokenGen) accessRows(c *chunker, spec scaleSpec) error {
	userScopes := textArray("offline_access", "profile", "credits:read")
	svcScopes := textArray("credits:charge")
	empty := textArray()
	liveUntil := tg.days(365)
	for _, expired := range []bool{true, false} { // expired first, as for refresh tokens
		for g := 1; g <= spec.Access; g++ {
			if (g%5 == 0) != expired {
				continue
			}
			userToken := g%10 < 3
			client, scopes, sub := scaleSvcClient, svcScopes, ""
			if userToken {
				client, scopes, sub = scaleWebClient, userScopes, userID(1+g%spec.Users)
			}
			b := c.b.row(13).text(sha256Hex("scale-access-" + strconv.Itoa(g))).text(md5UUID("scale-access-req-" + strconv.Itoa(g))).
				timestamptz(tg.now.Add(-time.Second * time.Duration(g%1500))).text(client).raw(scopes).raw(scopes).raw(empty).raw(empty).text("")
			b = tg.sessionJSONB(b, sub).text(sub).bool(true)
			if expired {
				b = b.timestamptz(tg.now.Add(-time.Second * time.Duration(g%600)))
			} else {
				b = b.timestamptz(liveUntil)
			}
			c.b = b
			if err := c.full(); err != nil {
				return err
			}
		}
	}
	return nil
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
// `authd ledger verify` checks the loaded history like any other. The
// accounts are independent chains: one generator per core builds runs of
// accounts, and the runs are written in account order to three COPY
// streams (transactions, entries, accounts) running side by side, so the
// tables come out as one generator would write them.
func loadLedger(ctx context.Context, pool *pgxpool.Pool, spec scaleSpec, now time.Time) error {
	// The system accounts the migration created are written again after
	// the TRUNCATE, as they were.
	rows, err := pool.Query(ctx, `SELECT id, kind, name, head_seq, created_at FROM ledger_accounts WHERE kind = 'system' ORDER BY id`)
	if err != nil {
		return err
	}
	system := rowBuf(nil)
	for rows.Next() {
		var id, head int64
		var kind, name string
		var created time.Time
		if err := rows.Scan(&id, &kind, &name, &head, &created); err != nil {
			return err
		}
		system = system.row(7).int8(id).text(kind).null().text(name).null().int8(head).timestamptz(created)
	}
	if err := rows.Err(); err != nil {
		return err
	}

	lp := planLedger(spec)
	workers := max(1, runtime.GOMAXPROCS(0))
	g, ctx := errgroup.WithContext(ctx)
	outs := make([]chan ledgerRun, workers)
	for w := range outs {
		outs[w] = make(chan ledgerRun, 2)
		g.Go(func() error {
			defer close(outs[w])
			for i := w; i < lp.runs(); i += workers {
				r := lp.generate(i, now)
				select {
				case outs[w] <- r:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	txc, ec, ac := make(chan []byte, 4), make(chan []byte, 4), make(chan []byte, 4)
	g.Go(func() error { // in account order
		defer close(txc)
		defer close(ec)
		defer close(ac)
		send := func(ch chan []byte, b []byte) error {
			select {
			case ch <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := send(ac, system); err != nil {
			return err
		}
		for i := range lp.runs() {
			r, ok := <-outs[i%workers]
			if !ok {
				return ctx.Err() // its generator stopped
			}
			for _, s := range []struct {
				ch chan []byte
				b  []byte
			}{{txc, r.tx}, {ec, r.entries}, {ac, r.accounts}} {
				if err := send(s.ch, s.b); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for _, t := range []struct {
		table, columns string
		ch             chan []byte
	}{
		{"ledger_transactions", `id, account_id, seq, kind, direction, amount, reference, description, reason,
			refund_of, balance_after, actor_type, actor_id, request_id, fingerprint, prev_hash, hash, created_at, client_id`, txc},
		{"ledger_entries", "id, transaction_id, account_id, amount", ec},
		{"ledger_accounts", "id, kind, user_id, name, balance, head_seq, created_at", ac},
	} {
		g.Go(func() error {
			return copyFreeze(ctx, pool, t.table, t.columns, &chunkReader{ctx: ctx, chunks: t.ch, free: lp.free[t.table]})
		})
	}
	return g.Wait()
}

// ledgerPlan is how many transactions each account gets, decided up front
// so that runs of accounts can be generated independently.
type ledgerPlan struct {
	spec   scaleSpec
	counts []int32 // transactions of user n+1's account
	starts []int64 // transactions before run i's first account
	admins []string
	free   map[string]chan []byte // each table's sent buffers, for reuse
}

// ledgerRunAccounts is how many accounts one generator call builds.
const ledgerRunAccounts = 1000

func planLedger(spec scaleSpec) *ledgerPlan {
	lp := &ledgerPlan{spec: spec, counts: make([]int32, spec.Users), free: map[string]chan []byte{}}
	for _, t := range []string{"ledger_transactions", "ledger_entries", "ledger_accounts"} {
		lp.free[t] = make(chan []byte, 8)
	}
	mean := max(1, spec.Transactions/spec.Users)
	remaining := spec.Transactions
	var total int64
	for n := 1; n <= spec.Users; n++ {
		if (n-1)%ledgerRunAccounts == 0 {
			lp.starts = append(lp.starts, total)
		}
		// Between 1 and 2*mean-1 transactions, mean on average; the last
		// account takes what is left so the total is exact.
		k := 1 + int(splitmix64(uint64(n))%uint64(2*mean-1))
		if n == spec.Users || k > remaining-(spec.Users-n) {
			k = remaining - (spec.Users - n)
		}
		k = max(k, 0)
		remaining -= k
		lp.counts[n-1] = int32(k)
		total += int64(k)
	}
	for n := 1; n <= 20; n++ {
		lp.admins = append(lp.admins, userID(n))
	}
	return lp
}

func (lp *ledgerPlan) runs() int { return len(lp.starts) }

// ledgerRun is one run of accounts' rows, binary COPY data for each table.
type ledgerRun struct{ tx, entries, accounts rowBuf }

// generate builds run i. Account ids are 999 + n for user n (the identity
// starts at 1000; its sequence is set after the load); entry ids number the
// entries in account order from 1, two per transaction, as the identity
// would have.
func (lp *ledgerPlan) generate(i int, now time.Time) ledgerRun {
	spec := lp.spec
	first, last := i*ledgerRunAccounts+1, min((i+1)*ledgerRunAccounts, spec.Users)
	var ntx int64
	for n := first; n <= last; n++ {
		ntx += int64(lp.counts[n-1])
	}
	r := ledgerRun{
		tx:       reuse(lp.free["ledger_transactions"], int(ntx)*400),
		entries:  reuse(lp.free["ledger_entries"], int(ntx)*2*64),
		accounts: reuse(lp.free["ledger_accounts"], (last-first+1)*96),
	}
	entryID := 2 * lp.starts[i]
	var reqID [8]byte
	for n := first; n <= last; n++ {
		uid := userID(n)
		acct := int64(999 + n)
		rnd := splitmix64(uint64(n))
		k := int(lp.counts[n-1])
		userCreated := now.Add(-730 * 24 * time.Hour).Add(time.Duration(float64(730*24*time.Hour) * float64(n-1) / float64(spec.Users)))
		start := userCreated.Add(time.Minute)
		step := time.Duration(0)
		if k > 0 {
			step = (now.Sub(start) - time.Minute) / time.Duration(k)
		}
		prev := ledger.Genesis()
		var bal int64
		for seq := 1; seq <= k; seq++ {
			rs := splitmix64(rnd ^ uint64(seq)<<20)
			t := ledger.Transaction{UserID: uid, Seq: int64(seq), CreatedAt: start.Add(step * time.Duration(seq-1)).Truncate(time.Microsecond)}
			switch {
			case seq == 1:
				t.Kind, t.Direction, t.Amount = ledger.KindGrant, ledger.Credit, 1_000_000
				t.Reference, t.Description = "welcome", "Welcome credits"
				t.Actor = ledger.Actor{Type: ledger.ActorAdmin, ID: lp.admins[n%20]}
			case seq%10 == 0:
				t.Kind, t.Direction, t.Amount = ledger.KindGrant, ledger.Credit, 10_000
				t.Reference, t.Description = "topup-"+strconv.Itoa(seq), "Top-up"
				t.Actor = ledger.Actor{Type: ledger.ActorAdmin, ID: lp.admins[n%20]}
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

			r.tx = r.tx.row(19).uuid(t.ID).int8(acct).int8(t.Seq).text(string(t.Kind)).text(string(t.Direction)).int8(t.Amount).
				text(t.Reference).text(t.Description).text("").null().int8(t.BalanceAfter).text(t.Actor.Type).text(t.Actor.ID).
				text(t.RequestID).bytea(sealed.Fingerprint).bytea(sealed.PrevHash).bytea(sealed.Hash).timestamptz(t.CreatedAt).text(t.ClientID)
			system := int64(1) // issuance
			if t.Kind == ledger.KindSpend {
				system = 2 // revenue
			}
			r.entries = r.entries.row(4).int8(entryID + 1).uuid(t.ID).int8(acct).int8(signed).
				row(4).int8(entryID + 2).uuid(t.ID).int8(system).int8(-signed)
			entryID += 2
		}
		r.accounts = r.accounts.row(7).int8(acct).text("user").uuid(uid).null().int8(bal).int8(int64(k)).timestamptz(userCreated.Truncate(time.Microsecond))
	}
	return r
}

func binaryPut(b []byte, v uint64) {
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
}
