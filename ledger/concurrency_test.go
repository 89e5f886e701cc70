package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// parallel runs fn(i) for i in [0,n) on n goroutines released at once.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

func TestSpend_NeverNegativeUnderConcurrency(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 150)

	var ok, insufficient, other atomic.Int64
	parallel(200, func(i int) {
		_, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 1, Reference: fmt.Sprintf("s-%d", i), Origin: testOrigin})
		switch {
		case err == nil:
			ok.Add(1)
		case errors.Is(err, ledger.ErrInsufficientCredits):
			insufficient.Add(1)
		default:
			other.Add(1)
			t.Errorf("spend %d: %v", i, err)
		}
	})
	if ok.Load() != 150 || insufficient.Load() != 50 || other.Load() != 0 {
		t.Fatalf("ok=%d insufficient=%d other=%d, want 150/50/0", ok.Load(), insufficient.Load(), other.Load())
	}
	if b := MustBalance(t, l, u); b != 0 {
		t.Fatalf("balance = %d, want 0", b)
	}
	rep := MustVerifyClean(t, l)
	if rep.Transactions != 151 || rep.Revenue.Int64() != 150 {
		t.Fatalf("report: %s", rep)
	}
}

func TestSpend_SameReferenceConcurrentlyPostsOnce(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	// Exactly enough for one spend: a replay must never be refused for
	// insufficient credits, nor debit again.
	MustGrant(t, l, u, 1)

	ids := make([]string, 50)
	var fresh atomic.Int64
	parallel(50, func(i int) {
		res, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 1, Reference: "same", Description: "once", Origin: testOrigin})
		if err != nil {
			t.Errorf("spend %d: %v", i, err)
			return
		}
		if !res.Replayed {
			fresh.Add(1)
		}
		ids[i] = res.Transaction.ID
	})
	if fresh.Load() != 1 {
		t.Fatalf("%d requests posted a new transaction, want 1", fresh.Load())
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("request %d got transaction %s, request 0 got %s", i, id, ids[0])
		}
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_transactions WHERE reference = 'same'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("transactions with the reference = %d, %v; want 1", n, err)
	}
	if b := MustBalance(t, l, u); b != 0 {
		t.Fatalf("balance = %d, want 0", b)
	}
	MustVerifyClean(t, l)
}

func TestRefund_NeverExceedsSpendUnderConcurrency(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 1000)
	s := MustSpend(t, l, u, 100)

	var refunded, refused, spent atomic.Int64
	parallel(80, func(i int) {
		ctx := context.Background()
		if i%2 == 0 { // 40 refunds of 10 against a spend of 100
			_, err := l.Refund(ctx, ledger.RefundPosting{SpendID: s.ID,
				Posting: ledger.Posting{UserID: u, Amount: 10, Reference: fmt.Sprintf("r-%d", i), Origin: testOrigin}})
			switch {
			case err == nil:
				refunded.Add(10)
			case errors.Is(err, ledger.ErrRefundExceedsSpend):
				refused.Add(1)
			default:
				t.Errorf("refund: %v", err)
			}
			return
		}
		if _, err := l.Spend(ctx, ledger.Posting{UserID: u, Amount: 5, Reference: fmt.Sprintf("s-%d", i), Origin: testOrigin}); err != nil {
			t.Errorf("spend: %v", err)
			return
		}
		spent.Add(5)
	})
	if refunded.Load() != 100 || refused.Load() != 30 {
		t.Fatalf("refunded %d with %d refused, want 100 with 30 refused", refunded.Load(), refused.Load())
	}
	if b, want := MustBalance(t, l, u), 1000-100+refunded.Load()-spent.Load(); b != want {
		t.Fatalf("balance = %d, want %d", b, want)
	}
	MustVerifyClean(t, l)
}

func TestSpend_ThousandUsersInParallelKeepBalancesEqualToEntries(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	const users = 1000
	rows, err := db.Pool.Query(ctx, `INSERT INTO users (email, password_hash)
		SELECT 'bulk' || g || '@example.test', 'x' FROM generate_series(1, $1) g RETURNING id::text`, users)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != users {
		t.Fatalf("created %d users: %v", len(ids), rows.Err())
	}

	// Each user gets 10, then two spends of 6 race each other (and everyone
	// else's): exactly one succeeds per user.
	expect := make([]atomic.Int64, users)
	run := func(jobs []func()) {
		work := make(chan func())
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for f := range work {
					f()
				}
			}()
		}
		for _, f := range jobs {
			work <- f
		}
		close(work)
		wg.Wait()
	}
	var grants, spends []func()
	for i, id := range ids {
		grants = append(grants, func() {
			if _, err := l.Grant(ctx, ledger.Posting{UserID: id, Amount: 10, Reference: "g", Origin: testOrigin}); err != nil {
				t.Errorf("grant: %v", err)
				return
			}
			expect[i].Add(10)
		})
	}
	for k := range 2 {
		for i, id := range ids {
			spends = append(spends, func() {
				_, err := l.Spend(ctx, ledger.Posting{UserID: id, Amount: 6, Reference: fmt.Sprintf("s%d", k), Origin: testOrigin})
				switch {
				case err == nil:
					expect[i].Add(-6)
				case errors.Is(err, ledger.ErrInsufficientCredits):
				default:
					t.Errorf("spend: %v", err)
				}
			})
		}
	}
	run(grants)
	run(spends)
	for i, id := range ids {
		if want := expect[i].Load(); want != 4 {
			t.Fatalf("user %s: expected balance %d, want 4", id, want)
		}
		if i%100 == 0 {
			if b := MustBalance(t, l, id); b != 4 {
				t.Fatalf("user %s: balance %d, want 4", id, b)
			}
		}
	}
	var bad int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger_accounts a WHERE a.kind = 'user' AND a.balance <>
		COALESCE((SELECT sum(amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d accounts whose balance differs from their entries (%v)", bad, err)
	}
	rep := MustVerifyClean(t, l)
	if rep.UserBalances.Int64() != 4*users || rep.Revenue.Int64() != 6*users {
		t.Fatalf("report: %s", rep)
	}
}

func TestVerify_CleanWhilePosting(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	us := []string{MustCreateUser(t, db.Pool), MustCreateUser(t, db.Pool), MustCreateUser(t, db.Pool)}
	for _, u := range us {
		MustGrant(t, l, u, 1000)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 1, Reference: ref("v"), Origin: testOrigin}); err != nil &&
					!errors.Is(err, ledger.ErrInsufficientCredits) {
					t.Errorf("spend: %v", err)
					return
				}
			}
		}()
	}
	for range 5 {
		MustVerifyClean(t, l)
	}
	close(done)
	wg.Wait()
	MustVerifyClean(t, l)
}
