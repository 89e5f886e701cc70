package accounts_test

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage/storagetest"
)

// MustServiceCfg returns a service on a fresh database with cfg.
func MustServiceCfg(t *testing.T, cfg accounts.Config) (*accounts.Service, *pgxpool.Pool) {
	t.Helper()
	db := storagetest.NewDB(t)
	h, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	return accounts.New(db.Pool, h, zap.NewNop(), cfg), db.Pool
}

// mailLinks returns the link of every queued mail of template to addr, oldest first.
func mailLinks(t *testing.T, pool *pgxpool.Pool, template, addr string) []*url.URL {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT payload FROM outbox WHERE kind = 'mail' AND type = $1 AND payload->>'to' = $2 ORDER BY created_at`, template, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []*url.URL
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var p struct {
			Data struct{ Link string } `json:"data"`
		}
		_ = json.Unmarshal(raw, &p)
		u, err := url.Parse(p.Data.Link)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func lastToken(t *testing.T, pool *pgxpool.Pool, template, addr string) string {
	t.Helper()
	links := mailLinks(t, pool, template, addr)
	if len(links) == 0 {
		t.Fatalf("no %s mail queued for %s", template, addr)
	}
	return links[len(links)-1].Query().Get("token")
}

func countRows(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
