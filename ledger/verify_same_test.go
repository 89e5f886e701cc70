package ledger_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// mustSameReport runs Verify and the reference (Verify as it was before it
// was made fast) and fails unless their reports agree in every field but
// the time, problems and their order included.
func mustSameReport(t *testing.T, pool *pgxpool.Pool) ledger.Report {
	t.Helper()
	ctx := context.Background()
	got, err := ledger.Verify(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ledger.VerifyReference(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	got.CheckedAt, want.CheckedAt = time.Time{}, time.Time{}
	if got.String() != want.String() || !reflect.DeepEqual(got.Problems, want.Problems) || got.Truncated != want.Truncated {
		t.Fatalf("Verify and the reference disagree:\n got: %s\nwant: %s", got, want)
	}
	return got
}

func hasCheck(rep ledger.Report, check, txID string) bool {
	for _, p := range rep.Problems {
		if p.Check == check && (txID == "" || p.TransactionID == txID) {
			return true
		}
	}
	return false
}

// TestVerify_SameAsReference tampers with a ledger step by step, so that
// every kind of problem appears, several at once, and checks after each
// step that Verify reports exactly what the reference reports.
func TestVerify_SameAsReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u1, u2, u3 := MustCreateUser(t, db.Pool), MustCreateUser(t, db.Pool), MustCreateUser(t, db.Pool)
	MustGrant(t, l, u1, 100)
	s1 := MustSpend(t, l, u1, 10)
	s2 := MustSpend(t, l, u1, 20)
	rf, err := l.Refund(ctx, ledger.RefundPosting{Posting: ledger.Posting{UserID: u1, Amount: 5, Reference: ref("refund"), Origin: testOrigin}, SpendID: s1.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Adjust(ctx, ledger.AdjustPosting{Posting: ledger.Posting{UserID: u1, Amount: 3, Reference: ref("adjust"), Origin: testOrigin},
		Direction: ledger.Credit, Reason: "goodwill"}); err != nil {
		t.Fatal(err)
	}
	g2 := MustGrant(t, l, u2, 50)
	sp2 := MustSpend(t, l, u2, 5)
	MustSpend(t, l, u2, 6)
	g3 := MustGrant(t, l, u3, 7)
	if rep := mustSameReport(t, db.Pool); !rep.OK() || rep.Transactions != 9 || rep.Entries != 18 {
		t.Fatalf("clean ledger: %s", rep)
	}
	acct := func(u string) int64 {
		var id int64
		if err := db.Pool.QueryRow(ctx, `SELECT id FROM ledger_accounts WHERE user_id = $1`, u).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	a1, a2, a3 := acct(u1), acct(u2), acct(u3)
	for _, step := range []struct {
		name, check, txID string
		sql               string
		args              []any
	}{
		{"UserEntryAltered", "entry", s2.ID, `UPDATE ledger_entries SET amount = amount - 1 WHERE transaction_id = $1 AND account_id = $2`, []any{s2.ID, a1}},
		{"EntriesDeleted", "double_entry", sp2.ID, `DELETE FROM ledger_entries WHERE transaction_id = $1`, []any{sp2.ID}},
		{"EntryMovedToAnotherUser", "entry", g2.ID, `UPDATE ledger_entries SET account_id = $3 WHERE transaction_id = $1 AND account_id = $2`, []any{g2.ID, a2, a3}},
		{"RefundedBeyondTheSpend", "refund", s1.ID, `UPDATE ledger_transactions SET amount = 50 WHERE id = $1`, []any{rf.Transaction.ID}},
		{"ExtraEntries", "double_entry", s1.ID, `INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES ($1, $2, 4), ($1, 2, -4)`, []any{s1.ID, a1}},
		{"TransactionOnASystemAccount", "chain", g3.ID, `UPDATE ledger_transactions SET account_id = 2 WHERE id = $1`, []any{g3.ID}},
		{"TransactionDeleted", "sequence", "", `DELETE FROM ledger_transactions WHERE id = $1`, []any{sp2.ID}},
		{"BalanceAltered", "balance", "", `UPDATE ledger_accounts SET balance = balance + 1 WHERE id = $1`, []any{a1}},
		{"RefundOfAGrant", "refund", g2.ID, `UPDATE ledger_transactions SET refund_of = $1 WHERE id = $2`, []any{g2.ID, rf.Transaction.ID}},
	} {
		tamper(t, db.Pool, step.sql, step.args...)
		rep := mustSameReport(t, db.Pool)
		if !hasCheck(rep, step.check, step.txID) {
			t.Fatalf("%s: no %s problem for transaction %q in %s", step.name, step.check, step.txID, rep)
		}
	}
}

// TestVerify_SameAsReferenceTruncated: more problems than a report holds,
// from the chain walk and the entries alike, interleaved account by account.
func TestVerify_SameAsReferenceTruncated(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	tamper(t, db.Pool, `INSERT INTO users (email, password_hash) SELECT 'bulk' || g || '@example.test', 'x' FROM generate_series(1, 600) g`)
	// One forged transaction per account: its chain is broken and it has
	// no entries (1,200 problems before double entry and the heads).
	tamper(t, db.Pool, `INSERT INTO ledger_transactions (id, account_id, seq, kind, direction, amount, reference, balance_after,
			actor_type, fingerprint, prev_hash, hash, created_at)
		SELECT gen_random_uuid(), id, 1, 'grant', 'credit', 5, 'forged', 5, 'admin', '\x00', '\x00', '\x00', now()
		FROM ledger_accounts WHERE kind = 'user'`)
	rep := mustSameReport(t, db.Pool)
	if !rep.Truncated || len(rep.Problems) != ledger.MaxProblems || !hasCheck(rep, "chain", "") || !hasCheck(rep, "entry", "") {
		t.Fatalf("want a truncated report of chain and entry problems, got %d problems (truncated %v)", len(rep.Problems), rep.Truncated)
	}
}

// TestVerify_OneConnection: with no second connection to run the entries
// join beside the walk, Verify runs it after the walk (waiting for a second
// connection from a pool of one would never end).
func TestVerify_OneConnection(t *testing.T) {
	t.Parallel()
	db, _, _, txs := chain(t)
	tamper(t, db.Pool, `UPDATE ledger_entries SET amount = amount - 1 WHERE transaction_id = $1 AND amount < 0`, txs[2].ID)
	pool := poolOf(t, db.URL, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := ledger.Verify(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if !hasCheck(rep, "entry", txs[2].ID) || !hasCheck(rep, "double_entry", txs[2].ID) {
		t.Fatalf("want entry and double_entry problems for %s, got %s", txs[2].ID, rep)
	}
}

// TestVerify_JoinSharesTheSnapshot: the entries join runs on a second
// connection, but in the walk's snapshot: entries committed after Verify
// began are not seen by either, so they cannot make a clean ledger look
// broken (or a broken one look clean).
func TestVerify_JoinSharesTheSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, l, u, txs := chain(t)
	ran := false
	var insertErr error
	rep, err := ledger.VerifyBeforeJoin(ctx, db.Pool, func() {
		ran = true
		// Two more entries that balance each other pass the commit-time
		// double-entry trigger, but not Verify.
		_, insertErr = db.Pool.Exec(ctx, `INSERT INTO ledger_entries (transaction_id, account_id, amount)
			SELECT $1::uuid, id, 4 FROM ledger_accounts WHERE user_id = $2 UNION ALL SELECT $1::uuid, 2, -4`, txs[1].ID, u)
	})
	if err != nil || insertErr != nil {
		t.Fatal(err, insertErr)
	}
	if !ran {
		t.Fatal("the entries join did not run on a second connection")
	}
	if !rep.OK() {
		t.Fatalf("entries committed after Verify began were seen: %s", rep)
	}
	if rep := mustBroken(t, l); !hasCheck(rep, "double_entry", txs[1].ID) {
		t.Fatalf("the extra entries went unnoticed afterwards: %s", rep)
	}
}

// poolOf is a pool of at most n connections to url, closed with the test.
func poolOf(t *testing.T, url string, n int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = n
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
