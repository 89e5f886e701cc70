package storage_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/migrations"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

func TestMigrate_FromEmptyAndIdempotent(t *testing.T) {
	url := storagetest.NewEmptyDB(t)
	mg, err := storage.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	if v, _, err := mg.Version(); err != nil || v != 0 {
		t.Fatalf("empty database: version %d, err %v; want 0", v, err)
	}
	if err := mg.Up(); err != nil {
		t.Fatalf("first up: %v", err)
	}
	v, dirty, err := mg.Version()
	if err != nil || dirty || v != storage.LatestVersion() {
		t.Fatalf("after up: version %d dirty %v err %v; want %d clean", v, dirty, err, storage.LatestVersion())
	}
	if err := mg.Up(); err != nil {
		t.Fatalf("second up must be a no-op: %v", err)
	}
	// Every migration can be undone one by one and re-applied: forward-only in
	// production, but an upgrade rehearsal needs `migrate down N`. N counts
	// files, not versions: numbers may have gaps.
	ups, err := fs.Glob(migrations.FS, "*.up.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := mg.Down(len(ups)); err != nil {
		t.Fatalf("down all: %v", err)
	}
	if err := mg.Up(); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

func TestSchemaStatus(t *testing.T) {
	db := storagetest.NewDB(t)
	if err := storage.SchemaStatus(context.Background(), db.Pool); err != nil {
		t.Fatalf("migrated template: %v", err)
	}
	if _, err := db.Pool.Exec(context.Background(), `UPDATE schema_migrations SET version = version - 1`); err != nil {
		t.Fatal(err)
	}
	if err := storage.SchemaStatus(context.Background(), db.Pool); err == nil {
		t.Fatal("schema behind: want an error")
	}
}

func TestInTx_RetriesSerializationFailures(t *testing.T) {
	db := storagetest.NewDB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	// 10 serializable read-modify-write transactions at once: without retries
	// some fail with 40001; with them every increment lands exactly once.
	const workers = 10
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := storage.InTx(ctx, db.Pool, storage.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
				var n int
				if err := tx.QueryRow(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `UPDATE counter SET n = $1`, n+1)
				return err
			})
			if err != nil {
				failed.Add(1)
				t.Logf("tx: %v", err)
			}
		}()
	}
	wg.Wait()
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT n FROM counter`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if int(failed.Load())+n != workers {
		t.Fatalf("counter %d + failed %d != %d: an increment was lost or doubled", n, failed.Load(), workers)
	}
	// Without retries all ten read 0 at once and only the first commit wins;
	// two or more increments mean aborted transactions ran again.
	if n < 2 {
		t.Fatalf("only %d of %d transactions committed; retries are not working", n, workers)
	}
}

func TestInTx_RollsBackOnError(t *testing.T) {
	db := storagetest.NewDB(t)
	ctx := context.Background()
	boom := errors.New("boom")
	err := storage.InTx(ctx, db.Pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO roles (name) VALUES ('temp')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM roles WHERE name='temp'`).Scan(&n)
	if n != 0 {
		t.Fatal("insert survived a failed transaction")
	}
}

func TestFindPostgresBin(t *testing.T) {
	if _, err := storage.FindPostgresBin(); err != nil {
		t.Fatalf("the harness needs PostgreSQL: %v", err)
	}
}
