package accounts_test

import (
	"context"
	"testing"

	"github.com/authd/authd/accounts"
)

func TestService_PurgeExpired(t *testing.T) {
	s, pool := MustServiceCfg(t, accounts.Config{})
	ctx := context.Background()
	u, err := s.CreateUser(ctx, accounts.NewUser{Email: "p@example.com", Password: "a-long-passphrase"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, live, err := s.CreateSession(ctx, u.ID, "ua", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	_, old, _ := s.CreateSession(ctx, u.ID, "ua", "127.0.0.1")
	mustExec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`UPDATE browser_sessions SET expires_at = now() - interval '2 days' WHERE id = $1`, old.ID)
	mustExec(`INSERT INTO outbox (kind, type, payload, delivered_at) VALUES
		('webhook', 'old', '{}', now() - interval '8 days'), ('webhook', 'recent', '{}', now()), ('webhook', 'pending', '{}', NULL)`)
	n, err := s.PurgeExpired(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("purged %d rows, want 2 (the expired session and the old delivered event)", n)
	}
	var sessions, outbox int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM browser_sessions WHERE id = $1`, live.ID).Scan(&sessions)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE type IN ('recent', 'pending')`).Scan(&outbox)
	if sessions != 1 || outbox != 2 {
		t.Fatalf("purge took live rows: live session %d, kept outbox rows %d", sessions, outbox)
	}
}
