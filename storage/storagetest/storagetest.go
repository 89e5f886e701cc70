// Package storagetest gives tests a real PostgreSQL database of their own,
// named like net/http/httptest.
//
// Each test package calls Main from TestMain. Main starts one private cluster
// for the test process (or uses AUTHD_TEST_DATABASE_URL), migrates a template
// database once, and NewDB clones that template for each test, so tests are
// isolated and fast. A missing PostgreSQL fails the tests loudly; it never
// skips them.
package storagetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/storage"
)

// server is the process-wide test database server. Test infrastructure is the
// one place a package-level variable is the right tool: TestMain owns it.
var server struct {
	adminURL string // a database on the server we may CREATE DATABASE from
	cluster  *storage.Cluster
	seq      atomic.Int64
	prefix   string
}

const template = "authd_template"

// Main starts the database server, runs the tests and stops the server.
// Use it as: func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }.
func Main(m *testing.M) int {
	stop, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storagetest:", err)
		return 1
	}
	code := m.Run()
	stop()
	return code
}

func start() (func(), error) {
	ctx := context.Background()
	server.prefix = fmt.Sprintf("t%d_", os.Getpid())
	if u := os.Getenv("AUTHD_TEST_DATABASE_URL"); u != "" {
		server.adminURL = u
	} else {
		base, err := os.MkdirTemp("", "authd-pg-")
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(base, 0o711); err != nil {
			return nil, err
		}
		c := &storage.Cluster{Dir: filepath.Join(base, "data")}
		if err := c.Start(ctx); err != nil {
			os.RemoveAll(base)
			return nil, err
		}
		server.cluster = c
		server.adminURL = c.URL("authd")
		stopFn := func() {
			_ = c.Stop(context.Background())
			os.RemoveAll(base)
		}
		if err := createTemplate(ctx); err != nil {
			stopFn()
			return nil, err
		}
		return stopFn, nil
	}
	if err := createTemplate(ctx); err != nil {
		return nil, err
	}
	return func() { dropDatabases(context.Background()) }, nil
}

func createTemplate(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, server.adminURL)
	if err != nil {
		return fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close(ctx)
	name := server.prefix + template
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	if err := storage.Migrate(withDB(server.adminURL, name)); err != nil {
		return fmt.Errorf("migrate template database: %w", err)
	}
	return nil
}

// dropDatabases removes what this process created on a shared server.
func dropDatabases(ctx context.Context) {
	conn, err := pgx.Connect(ctx, server.adminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE $1`, server.prefix+"%")
	if err != nil {
		return
	}
	names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, n := range names {
		_, _ = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{n}.Sanitize()+` WITH (FORCE)`)
	}
}

func withDB(rawURL, db string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("storagetest: bad database url %q: %v", rawURL, err))
	}
	u.Path = "/" + db
	return u.String()
}

// DB is one test's private database.
type DB struct {
	Name string
	URL  string
	Pool *pgxpool.Pool
}

// NewDB clones the migrated template into a fresh database for tb, opens a
// pool on it and drops it when tb ends.
func NewDB(tb testing.TB) *DB {
	tb.Helper()
	if server.adminURL == "" {
		tb.Fatal("storagetest: database server not started; add func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) } to this package")
	}
	ctx := context.Background()
	name := fmt.Sprintf("%s%d_%s", server.prefix, server.seq.Add(1), sanitize(tb.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	conn, err := pgx.Connect(ctx, server.adminURL)
	if err != nil {
		tb.Fatalf("storagetest: connect: %v", err)
	}
	defer conn.Close(ctx)
	// CREATE DATABASE … TEMPLATE fails if another session is using the template at
	// that instant (two clones at once); retry briefly.
	var cerr error
	for i := 0; i < 50; i++ {
		_, cerr = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE `+pgx.Identifier{server.prefix + template}.Sanitize())
		if cerr == nil || !strings.Contains(cerr.Error(), "is being accessed by other users") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cerr != nil {
		tb.Fatalf("storagetest: clone template: %v", cerr)
	}
	db := &DB{Name: name, URL: withDB(server.adminURL, name)}
	pool, err := storage.Open(ctx, db.URL, storage.PoolConfig{MaxConns: 32})
	if err != nil {
		tb.Fatalf("storagetest: open pool: %v", err)
	}
	db.Pool = pool
	tb.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), server.adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	})
	return db
}

// NewEmptyDB creates an empty, unmigrated database (for migration tests).
func NewEmptyDB(tb testing.TB) string {
	tb.Helper()
	if server.adminURL == "" {
		tb.Fatal("storagetest: database server not started; call storagetest.Main from TestMain")
	}
	ctx := context.Background()
	name := fmt.Sprintf("%s%d_empty", server.prefix, server.seq.Add(1))
	conn, err := pgx.Connect(ctx, server.adminURL)
	if err != nil {
		tb.Fatalf("storagetest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("storagetest: create database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), server.adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`)
	})
	return withDB(server.adminURL, name)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// NewCluster starts a private cluster of tb's own, with a migrated "authd"
// database, for tests that stop and restart PostgreSQL (fault injection). It
// is stopped and removed when tb ends.
func NewCluster(tb testing.TB) *storage.Cluster {
	tb.Helper()
	return newCluster(tb, false)
}

// NewDurableCluster is NewCluster with fsync and synchronous commit on, for
// tests that crash a Postgres process: with asynchronous commit the last
// acknowledged commits may still be in shared memory, which crash recovery
// discards, as the Postgres documentation warns.
func NewDurableCluster(tb testing.TB) *storage.Cluster {
	tb.Helper()
	return newCluster(tb, true)
}

func newCluster(tb testing.TB, durable bool) *storage.Cluster {
	tb.Helper()
	base, err := os.MkdirTemp("", "authd-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(base, 0o711); err != nil {
		tb.Fatal(err)
	}
	c := &storage.Cluster{Dir: filepath.Join(base, "data"), Durable: durable}
	if err := c.Start(context.Background()); err != nil {
		os.RemoveAll(base)
		tb.Fatalf("storagetest: start cluster: %v", err)
	}
	tb.Cleanup(func() {
		_ = c.Stop(context.Background())
		os.RemoveAll(base)
	})
	if err := storage.Migrate(c.URL("authd")); err != nil {
		tb.Fatalf("storagetest: migrate: %v", err)
	}
	return c
}
