package ledger_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/storagetest"
)

// TestMigration_LedgerDownAndUp rolls migration 0007 back and forth on an
// empty database, and checks that users existing before it get accounts.
func TestMigration_LedgerDownAndUp(t *testing.T) {
	t.Parallel()
	url := storagetest.NewEmptyDB(t)
	mg, err := storage.NewMigrator(url)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	if err := mg.Up(); err != nil {
		t.Fatal(err)
	}
	for {
		v, _, err := mg.Version()
		if err != nil {
			t.Fatal(err)
		}
		if v < 7 {
			break
		}
		if err := mg.Down(1); err != nil {
			t.Fatalf("down from %d: %v", v, err)
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO users (email, password_hash) VALUES ('before@example.test', 'x')`); err != nil {
		t.Fatal(err)
	}
	if err := mg.Up(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ledger_accounts a JOIN users u ON u.id = a.user_id
		WHERE u.email = 'before@example.test' AND a.balance = 0`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("accounts for the pre-existing user = %d, %v", n, err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM ledger_accounts WHERE kind = 'system'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("system accounts = %d, %v", n, err)
	}
}
