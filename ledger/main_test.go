package ledger_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

var userSeq atomic.Int64

// MustCreateUser inserts a user (whose ledger account the trigger creates)
// and returns its id.
func MustCreateUser(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	var id string
	email := fmt.Sprintf("user%d@example.test", userSeq.Add(1))
	if err := pool.QueryRow(context.Background(),
		`INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id::text`, email).Scan(&id); err != nil {
		tb.Fatalf("create user: %v", err)
	}
	return id
}

var refSeq atomic.Int64

func ref(prefix string) string { return fmt.Sprintf("%s-%d", prefix, refSeq.Add(1)) }

var testOrigin = ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorAdmin, ID: "test-admin"}, RequestID: "req-test"}

// MustGrant grants amount to user and fails the test on error.
func MustGrant(tb testing.TB, l *ledger.Ledger, user string, amount int64) ledger.Transaction {
	tb.Helper()
	res, err := l.Grant(context.Background(), ledger.Posting{UserID: user, Amount: amount, Reference: ref("grant"), Origin: testOrigin})
	if err != nil {
		tb.Fatalf("grant %d: %v", amount, err)
	}
	return res.Transaction
}

// MustSpend spends amount of user's credits and fails the test on error.
func MustSpend(tb testing.TB, l *ledger.Ledger, user string, amount int64) ledger.Transaction {
	tb.Helper()
	res, err := l.Spend(context.Background(), ledger.Posting{UserID: user, Amount: amount, Reference: ref("spend"),
		Origin: ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorUser, ID: user}}})
	if err != nil {
		tb.Fatalf("spend %d: %v", amount, err)
	}
	return res.Transaction
}

// MustVerifyClean runs Verify and fails the test unless the ledger is intact.
func MustVerifyClean(tb testing.TB, l *ledger.Ledger) ledger.Report {
	tb.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	if !rep.OK() {
		tb.Fatalf("verify found problems:\n%s", rep)
	}
	return rep
}

func MustBalance(tb testing.TB, l *ledger.Ledger, user string) int64 {
	tb.Helper()
	b, err := l.Balance(context.Background(), user)
	if err != nil {
		tb.Fatalf("balance: %v", err)
	}
	return b
}
