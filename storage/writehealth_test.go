package storage_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// clock is a settable time for WriteHealth.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// The pool's statements that fail for want of disk space, alone, in a batch
// or at commit, make WriteHealth report the database unwritable for the
// hold; other failures do not, and only the hold ends it.
func TestWriteHealth_DiskFullHeldThenCleared(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	wh := &storage.WriteHealth{Hold: 5 * time.Second, Now: clk.Now}
	pool, _ := openPool(t, storage.PoolConfig{MaxConns: 2, WriteHealth: wh})
	if storage.PoolWriteHealth(pool) != wh {
		t.Fatal("PoolWriteHealth does not return the pool's WriteHealth")
	}
	if _, err := pool.Exec(ctx, `
		CREATE TABLE full_disk (id int PRIMARY KEY);
		CREATE TABLE roomy (id int PRIMARY KEY);
		CREATE FUNCTION no_space() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$;
		CREATE TRIGGER no_space BEFORE INSERT ON full_disk FOR EACH ROW EXECUTE FUNCTION no_space();
		CREATE TABLE at_commit (id int);
		CREATE CONSTRAINT TRIGGER no_space AFTER INSERT ON at_commit DEFERRABLE INITIALLY DEFERRED
			FOR EACH ROW EXECUTE FUNCTION no_space();
		INSERT INTO roomy VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	mustWritable := func(when string) {
		t.Helper()
		if o, left, bad := wh.Unwritable(); bad {
			t.Fatalf("%s: unwritable (%q, %s left)", when, o.Reason, left)
		}
	}
	mustUnwritable := func(when string) {
		t.Helper()
		o, left, bad := wh.Unwritable()
		if !bad || o.Reason != "the database disk is full" || left <= 0 || left > 5*time.Second {
			t.Fatalf("%s: Unwritable() = %q, %s, %v; want the disk full for up to 5s", when, o.Reason, left, bad)
		}
	}
	mustWritable("fresh")

	// Failures that are the request's, or that the /readyz probe sees by
	// itself, are not a full disk.
	if _, err := pool.Exec(ctx, `INSERT INTO roomy VALUES (1)`); err == nil {
		t.Fatal("duplicate insert succeeded")
	}
	err := storage.InTx(ctx, pool, storage.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO roomy VALUES (2)`)
		return err
	})
	mustOutage(t, err, "the database is read-only")
	mustWritable("after a unique violation and a read-only transaction")

	cases := map[string]func() error{
		"exec": func() error { _, err := pool.Exec(ctx, `INSERT INTO full_disk VALUES (1)`); return err },
		"query row": func() error {
			var id int
			return pool.QueryRow(ctx, `INSERT INTO full_disk VALUES (1) RETURNING id`).Scan(&id)
		},
		"batch": func() error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO roomy VALUES (10)`)
			b.Queue(`INSERT INTO full_disk VALUES (1)`)
			return pool.SendBatch(ctx, b).Close()
		},
		"commit": func() error {
			return storage.InTx(ctx, pool, storage.TxOptions{}, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO at_commit VALUES (1)`)
				return err
			})
		},
	}
	for name, write := range cases {
		mustOutage(t, write(), "the database disk is full")
		mustUnwritable(name)
		// A later write that fits proves nothing about the disk.
		if _, err := pool.Exec(ctx, `INSERT INTO roomy VALUES ($1) ON CONFLICT DO NOTHING`, 100); err != nil {
			t.Fatal(err)
		}
		mustUnwritable(name + ", then a successful write")
		clk.Add(4 * time.Second)
		mustUnwritable(name + ", 4s later")
		clk.Add(time.Second)
		mustWritable(name + ", once the hold has passed")
	}
}

// A zero WriteHealth holds for DefaultWriteHold, and a pool Open did not
// make has none (nil reports nothing).
func TestWriteHealth_Defaults(t *testing.T) {
	var nilHealth *storage.WriteHealth
	if _, _, bad := nilHealth.Unwritable(); bad {
		t.Fatal("nil WriteHealth reports unwritable")
	}
	pool, _ := openPool(t, storage.PoolConfig{MaxConns: 1, AcquireTimeout: time.Second})
	wh := storage.PoolWriteHealth(pool)
	if wh == nil {
		t.Fatal("Open installed no WriteHealth")
	}
	if _, err := pool.Exec(context.Background(), `DO $$ BEGIN RAISE EXCEPTION 'full' USING ERRCODE = 'disk_full'; END $$`); err == nil {
		t.Fatal("no error")
	}
	_, left, bad := wh.Unwritable()
	if !bad || left <= storage.DefaultWriteHold-time.Second || left > storage.DefaultWriteHold {
		t.Fatalf("zero WriteHealth: unwritable %v for %s, want about %s", bad, left, storage.DefaultWriteHold)
	}
}
