package ledger_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// tamper runs sql with the append-only triggers off, as an attacker with
// database access (not the application) could.
func tamper(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, s := range []string{
		`ALTER TABLE ledger_transactions DISABLE TRIGGER ledger_transactions_append_only`,
		`ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	tag, err := conn.Exec(ctx, sql, args...)
	if err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("tamper %q: %v (%d rows)", sql, err, tag.RowsAffected())
	}
}

// chain builds a user with four transactions: grant 100, spend 10, 20, 30.
func chain(t *testing.T) (*storagetest.DB, *ledger.Ledger, string, []ledger.Transaction) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	bystander := MustCreateUser(t, db.Pool)
	MustGrant(t, l, bystander, 7)
	u := MustCreateUser(t, db.Pool)
	txs := []ledger.Transaction{MustGrant(t, l, u, 100), MustSpend(t, l, u, 10), MustSpend(t, l, u, 20), MustSpend(t, l, u, 30)}
	MustSpend(t, l, bystander, 7)
	MustVerifyClean(t, l)
	return db, l, u, txs
}

func mustBroken(t *testing.T, l *ledger.Ledger) ledger.Report {
	t.Helper()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatalf("verify passed a tampered ledger: %s", rep)
	}
	t.Logf("%s", rep)
	return rep
}

func TestVerify_DetectsTamperedAmount(t *testing.T) {
	t.Parallel()
	db, l, u, txs := chain(t)
	victim := txs[2]
	// Change the amount consistently everywhere but the hash: the entries
	// still balance, so only the chain can tell.
	tamper(t, db.Pool, `UPDATE ledger_transactions SET amount = 2 WHERE id = $1`, victim.ID)
	rep := mustBroken(t, l)
	p := rep.First()
	if p.Check != "hash" || p.TransactionID != victim.ID || p.UserID != u || p.Seq != 3 {
		t.Fatalf("first problem = %+v, want hash of transaction %s", p, victim.ID)
	}
}

// TestVerify_DetectsTamperedClient: the charging client is covered by the
// hash once set, and setting one on a transaction that had none breaks it too.
func TestVerify_DetectsTamperedClient(t *testing.T) {
	t.Parallel()
	for name, from := range map[string]string{"Changed": "svc", "Added": ""} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			db := storagetest.NewDB(t)
			l := ledger.New(db.Pool, nil)
			u := MustCreateUser(t, db.Pool)
			MustGrant(t, l, u, 10)
			res, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 1, Reference: ref("spend"),
				Origin: ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorClient, ID: "svc"}, ClientID: from}})
			if err != nil {
				t.Fatal(err)
			}
			MustVerifyClean(t, l)
			tamper(t, db.Pool, `UPDATE ledger_transactions SET client_id = 'other' WHERE id = $1`, res.Transaction.ID)
			if p := mustBroken(t, l).First(); p.Check != "hash" || p.TransactionID != res.Transaction.ID {
				t.Fatalf("first problem = %+v, want hash of transaction %s", p, res.Transaction.ID)
			}
		})
	}
}

func TestVerify_DetectsTamperedEntry(t *testing.T) {
	t.Parallel()
	db, l, _, txs := chain(t)
	victim := txs[1]
	tamper(t, db.Pool, `UPDATE ledger_entries SET amount = -1 WHERE transaction_id = $1 AND amount = -10`, victim.ID)
	rep := mustBroken(t, l)
	found := map[string]bool{}
	for _, p := range rep.Problems {
		if p.TransactionID == victim.ID {
			found[p.Check] = true
		}
	}
	if !found["entry"] || !found["double_entry"] {
		t.Fatalf("problems %v do not name transaction %s as entry and double_entry", rep.Problems, victim.ID)
	}
}

func TestVerify_DetectsTamperedHash(t *testing.T) {
	t.Parallel()
	db, l, _, txs := chain(t)
	victim := txs[1]
	tamper(t, db.Pool, `UPDATE ledger_transactions SET hash = sha256('forged') WHERE id = $1`, victim.ID)
	p := mustBroken(t, l).First()
	if p.Check != "hash" || p.TransactionID != victim.ID {
		t.Fatalf("first problem = %+v, want hash of transaction %s", p, victim.ID)
	}
}

func TestVerify_DetectsRewrittenChain(t *testing.T) {
	t.Parallel()
	// Forging a hash that matches the altered fields still breaks the link
	// from the next transaction.
	db, l, _, txs := chain(t)
	tamper(t, db.Pool, `UPDATE ledger_transactions SET prev_hash = sha256('other') WHERE id = $1`, txs[3].ID)
	p := mustBroken(t, l).First()
	if p.Check != "chain" || p.TransactionID != txs[3].ID {
		t.Fatalf("first problem = %+v, want chain at transaction %s", p, txs[3].ID)
	}
}

func TestVerify_DetectsDeletedTransaction(t *testing.T) {
	t.Parallel()
	db, l, u, txs := chain(t)
	victim := txs[1]
	tamper(t, db.Pool, `DELETE FROM ledger_entries WHERE transaction_id = $1`, victim.ID)
	tamper(t, db.Pool, `DELETE FROM ledger_transactions WHERE id = $1`, victim.ID)
	rep := mustBroken(t, l)
	p := rep.First()
	if p.Check != "sequence" || p.UserID != u || p.TransactionID != txs[2].ID || !strings.Contains(p.Detail, "expected seq 2") {
		t.Fatalf("first problem = %+v, want the missing seq 2 before transaction %s", p, txs[2].ID)
	}
	var balance bool
	for _, q := range rep.Problems {
		balance = balance || (q.Check == "balance" && q.UserID == u)
	}
	if !balance {
		t.Fatalf("no balance problem for user %s in %v", u, rep.Problems)
	}
}

func TestVerify_DetectsDeletedLastTransaction(t *testing.T) {
	t.Parallel()
	db, l, u, txs := chain(t)
	victim := txs[3]
	tamper(t, db.Pool, `DELETE FROM ledger_entries WHERE transaction_id = $1`, victim.ID)
	tamper(t, db.Pool, `DELETE FROM ledger_transactions WHERE id = $1`, victim.ID)
	// Even with the cached balance "fixed", the account's head betrays it.
	tamper(t, db.Pool, `UPDATE ledger_accounts SET balance = 70 WHERE user_id = $1`, u)
	p := mustBroken(t, l).First()
	if p.Check != "head" || p.UserID != u || p.Seq != 4 {
		t.Fatalf("first problem = %+v, want head seq 4 of user %s", p, u)
	}
}

func TestVerify_DetectsTamperedBalance(t *testing.T) {
	t.Parallel()
	db, l, u, _ := chain(t)
	tamper(t, db.Pool, `UPDATE ledger_accounts SET balance = balance + 1000 WHERE user_id = $1`, u)
	p := mustBroken(t, l).First()
	if p.Check != "balance" || p.UserID != u {
		t.Fatalf("first problem = %+v, want balance of user %s", p, u)
	}
}

func TestLedger_HistoryIsAppendOnly(t *testing.T) {
	t.Parallel()
	db, l, _, txs := chain(t)
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE ledger_transactions SET amount = 1 WHERE id = $1`,
		`DELETE FROM ledger_transactions WHERE id = $1`,
		`DELETE FROM ledger_entries WHERE transaction_id = $1`,
	} {
		if _, err := db.Pool.Exec(ctx, sql, txs[1].ID); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Fatalf("%s: err = %v, want append-only", sql, err)
		}
	}
	MustVerifyClean(t, l)
}

func TestLedger_UnbalancedEntriesRejectedAtCommit(t *testing.T) {
	t.Parallel()
	db, _, u, _ := chain(t)
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO ledger_entries (transaction_id, account_id, amount)
		SELECT t.id, t.account_id, 5 FROM ledger_transactions t JOIN ledger_accounts a ON a.id = t.account_id
		WHERE a.user_id = $1 AND t.seq = 1`, u); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err == nil || !strings.Contains(err.Error(), "ledger_entries_balanced") && !strings.Contains(err.Error(), "sum to") {
		t.Fatalf("commit: err = %v, want the double-entry trigger to refuse", err)
	}
}

func TestReport_JSONAndString(t *testing.T) {
	t.Parallel()
	_, l, _, _ := chain(t)
	rep := MustVerifyClean(t, l)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["ok"] != true || got["transactions"] != float64(6) || got["revenue"] != float64(67) {
		t.Fatalf("json = %s", b)
	}
	if s := rep.String(); !strings.HasPrefix(s, "ledger OK: ") {
		t.Fatalf("String() = %q", s)
	}
}
