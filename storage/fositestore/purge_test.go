package fositestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/storagetest"
)

// A backlog larger than one purge statement takes is deleted whole, in
// bounded statements, and nothing unexpired goes with it.
func TestDeleteExpired_BacklogInBatches(t *testing.T) {
	db := storagetest.NewDB(t)
	st := fositestore.New(db.Pool, fositestore.Options{})
	ctx := context.Background()
	now := time.Now().UTC()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO oauth2_jti (jti, expires_at)
		SELECT 'expired-' || g, $1::timestamptz - interval '1 second' * g FROM generate_series(1, 12345) g
		UNION ALL SELECT 'live-' || g, $1::timestamptz + interval '1 hour' FROM generate_series(1, 7) g`, now); err != nil {
		t.Fatal(err)
	}
	n, err := st.DeleteExpired(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if n != 12345 {
		t.Fatalf("deleted %d rows, want 12345", n)
	}
	var left int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM oauth2_jti`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 7 {
		t.Fatalf("%d rows left, want the 7 live ones", left)
	}
}
