package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

func TestLedger_GrantSpendRefundAdjust(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)

	if b := MustBalance(t, l, u); b != 0 {
		t.Fatalf("new user balance = %d, want 0", b)
	}
	g := MustGrant(t, l, u, 100)
	if g.Kind != ledger.KindGrant || g.BalanceAfter != 100 || g.Seq != 1 || g.Direction != ledger.Credit {
		t.Fatalf("grant = %+v", g)
	}
	s := MustSpend(t, l, u, 30)
	if s.BalanceAfter != 70 || s.Seq != 2 {
		t.Fatalf("spend = %+v", s)
	}
	r, err := l.Refund(ctx, ledger.RefundPosting{Posting: ledger.Posting{UserID: u, Amount: 10, Reference: "r1", Origin: testOrigin}, SpendID: s.ID})
	if err != nil || r.Transaction.BalanceAfter != 80 || r.Transaction.RefundOf != s.ID {
		t.Fatalf("refund = %+v, %v", r, err)
	}
	a, err := l.Adjust(ctx, ledger.AdjustPosting{Posting: ledger.Posting{UserID: u, Amount: 80, Reference: "a1", Origin: testOrigin},
		Direction: ledger.Debit, Reason: "test correction"})
	if err != nil || a.Transaction.BalanceAfter != 0 {
		t.Fatalf("adjust = %+v, %v", a, err)
	}
	rep := MustVerifyClean(t, l)
	if rep.Issued.Int64() != 100-80 || rep.Revenue.Int64() != 20 || rep.UserBalances.Int64() != 0 || rep.Transactions != 4 {
		t.Fatalf("report totals: %s", rep)
	}
}

func TestSpend_InsufficientWritesNothing(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 5)
	_, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 6, Reference: "big", Origin: testOrigin})
	var ie *ledger.InsufficientCreditsError
	if !errors.As(err, &ie) || !errors.Is(err, ledger.ErrInsufficientCredits) || ie.Balance != 5 {
		t.Fatalf("err = %v, want insufficient credits with balance 5", err)
	}
	if b := MustBalance(t, l, u); b != 5 {
		t.Fatalf("balance = %d, want 5", b)
	}
	// The same reference may be retried once the money is there.
	MustGrant(t, l, u, 1)
	if _, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 6, Reference: "big", Origin: testOrigin}); err != nil {
		t.Fatalf("retry after top-up: %v", err)
	}
	MustVerifyClean(t, l)
}

func TestSpend_ReferenceIdempotent(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 10)
	p := ledger.Posting{UserID: u, Amount: 3, Reference: "order-1", Description: "coffee", Origin: testOrigin}
	first, err := l.Spend(ctx, p)
	if err != nil || first.Replayed {
		t.Fatalf("first = %+v, %v", first, err)
	}
	t.Run("OK_SameBodyReplays", func(t *testing.T) {
		again, err := l.Spend(ctx, p)
		if err != nil || !again.Replayed || again.Transaction.ID != first.Transaction.ID || again.Balance != 7 {
			t.Fatalf("again = %+v, %v", again, err)
		}
	})
	t.Run("ErrReferenceConflict_OtherAmount", func(t *testing.T) {
		q := p
		q.Amount = 4
		if _, err := l.Spend(ctx, q); !errors.Is(err, ledger.ErrReferenceConflict) {
			t.Fatalf("err = %v, want ErrReferenceConflict", err)
		}
	})
	t.Run("ErrReferenceConflict_OtherKind", func(t *testing.T) {
		if _, err := l.Grant(ctx, p); !errors.Is(err, ledger.ErrReferenceConflict) {
			t.Fatalf("err = %v, want ErrReferenceConflict", err)
		}
	})
	t.Run("OK_ReferenceIsPerUser", func(t *testing.T) {
		v := MustCreateUser(t, db.Pool)
		MustGrant(t, l, v, 3)
		q := p
		q.UserID = v
		res, err := l.Spend(ctx, q)
		if err != nil || res.Replayed {
			t.Fatalf("other user's spend = %+v, %v", res, err)
		}
	})
	if b := MustBalance(t, l, u); b != 7 {
		t.Fatalf("balance = %d, want 7", b)
	}
	MustVerifyClean(t, l)
}

func TestPosting_Validation(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 10)
	long := make([]byte, 1001)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name  string
		p     ledger.Posting
		field string
	}{
		{"ErrZeroAmount", ledger.Posting{UserID: u, Amount: 0, Reference: "x"}, "amount"},
		{"ErrNegativeAmount", ledger.Posting{UserID: u, Amount: -1, Reference: "x"}, "amount"},
		{"ErrMissingReference", ledger.Posting{UserID: u, Amount: 1}, "reference"},
		{"ErrLongReference", ledger.Posting{UserID: u, Amount: 1, Reference: string(long[:129])}, "reference"},
		{"ErrLongDescription", ledger.Posting{UserID: u, Amount: 1, Reference: "x", Description: string(long)}, "description"},
		{"ErrNULInReference", ledger.Posting{UserID: u, Amount: 1, Reference: "a\x00b"}, "reference"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Spend(ctx, tc.p)
			var ve *ledger.ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("err = %v, want validation error on %s", err, tc.field)
			}
		})
	}
	t.Run("ErrAdjustWithoutReason", func(t *testing.T) {
		_, err := l.Adjust(ctx, ledger.AdjustPosting{Posting: ledger.Posting{UserID: u, Amount: 1, Reference: "adj"}, Direction: ledger.Credit})
		var ve *ledger.ValidationError
		if !errors.As(err, &ve) || ve.Field != "reason" {
			t.Fatalf("err = %v, want validation error on reason", err)
		}
	})
	t.Run("ErrUserNotFound", func(t *testing.T) {
		for _, id := range []string{"00000000-0000-4000-8000-000000000000", "not-a-uuid", ""} {
			if _, err := l.Grant(ctx, ledger.Posting{UserID: id, Amount: 1, Reference: "x"}); !errors.Is(err, ledger.ErrUserNotFound) {
				t.Fatalf("grant to %q: err = %v, want ErrUserNotFound", id, err)
			}
		}
	})
	t.Run("ErrBalanceOverflow", func(t *testing.T) {
		v := MustCreateUser(t, db.Pool)
		MustGrant(t, l, v, 1<<62)
		MustGrant(t, l, v, (1<<63-1)-(1<<62)) // balance is now the largest int64
		if _, err := l.Grant(ctx, ledger.Posting{UserID: v, Amount: 1, Reference: "one-more"}); !errors.Is(err, ledger.ErrBalanceOverflow) {
			t.Fatalf("err = %v, want ErrBalanceOverflow", err)
		}
	})
	if b := MustBalance(t, l, u); b != 10 {
		t.Fatalf("balance = %d, want 10", b)
	}
	MustVerifyClean(t, l)
}

func TestRefund_NeverExceedsSpend(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 100)
	s := MustSpend(t, l, u, 50)
	refund := func(amount int64, spend string) error {
		_, err := l.Refund(ctx, ledger.RefundPosting{Posting: ledger.Posting{UserID: u, Amount: amount, Reference: ref("refund"), Origin: testOrigin}, SpendID: spend})
		return err
	}
	if err := refund(30, s.ID); err != nil {
		t.Fatal(err)
	}
	var re *ledger.RefundExceedsError
	if err := refund(21, s.ID); !errors.As(err, &re) || re.Remaining != 20 {
		t.Fatalf("err = %v, want RefundExceedsError with 20 remaining", err)
	}
	if err := refund(20, s.ID); err != nil {
		t.Fatal(err)
	}
	if err := refund(1, s.ID); !errors.Is(err, ledger.ErrRefundExceedsSpend) {
		t.Fatalf("err = %v, want ErrRefundExceedsSpend", err)
	}
	g := MustGrant(t, l, u, 1)
	if err := refund(1, g.ID); !errors.Is(err, ledger.ErrSpendNotFound) {
		t.Fatalf("refund of a grant: err = %v, want ErrSpendNotFound", err)
	}
	other := MustCreateUser(t, db.Pool)
	MustGrant(t, l, other, 5)
	os := MustSpend(t, l, other, 5)
	if err := refund(1, os.ID); !errors.Is(err, ledger.ErrSpendNotFound) {
		t.Fatalf("refund of another user's spend: err = %v, want ErrSpendNotFound", err)
	}
	if b := MustBalance(t, l, u); b != 101 {
		t.Fatalf("balance = %d, want 101", b)
	}
	MustVerifyClean(t, l)
}

func TestSpend_RecordsActorAndRequestID(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 5)
	origin := ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorClient, ID: "svc-1"}, RequestID: "req-42", IP: "192.0.2.1"}
	res, err := l.Spend(ctx, ledger.Posting{UserID: u, Amount: 1, Reference: "x", Origin: origin})
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Get(ctx, u, res.Transaction.ID)
	if err != nil || got.Actor != origin.Actor || got.RequestID != "req-42" || got.Hash != res.Transaction.Hash {
		t.Fatalf("stored = %+v, %v", got, err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE type = 'credits.spent' AND actor_type = 'client'
		AND actor_id = 'svc-1' AND target_id = $1 AND request_id = 'req-42' AND ip = '192.0.2.1'`, u).Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit events = %d, %v; want 1", n, err)
	}
}

func TestAccount_CreatedWithUser(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	u := MustCreateUser(t, db.Pool)
	var bal int64
	if err := db.Pool.QueryRow(context.Background(), `SELECT balance FROM ledger_accounts WHERE user_id = $1`, u).Scan(&bal); err != nil || bal != 0 {
		t.Fatalf("account balance = %d, %v", bal, err)
	}
	if _, err := db.Pool.Exec(context.Background(), `UPDATE ledger_accounts SET balance = -1 WHERE user_id = $1`, u); err == nil {
		t.Fatal("CHECK (balance >= 0) did not reject a negative balance")
	}
}

func TestAccount_UserWithHistoryCannotBeDeleted(t *testing.T) {
	t.Parallel()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	empty := MustCreateUser(t, db.Pool)
	if _, err := db.Pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, empty); err != nil {
		t.Fatalf("deleting a user without ledger history: %v", err)
	}
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 1)
	if _, err := db.Pool.Exec(ctx, `DELETE FROM users WHERE id = $1`, u); err == nil {
		t.Fatal("deleted a user whose account has transactions")
	}
	// A posting with no actor is recorded as the system's.
	res, err := l.Spend(ctx, ledger.Posting{UserID: u, Amount: 1, Reference: "job"})
	if err != nil || res.Transaction.Actor.Type != ledger.ActorSystem {
		t.Fatalf("spend = %+v, %v", res, err)
	}
	MustVerifyClean(t, l)
}
