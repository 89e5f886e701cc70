package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// holdAccount locks user's account row from another transaction until the
// returned func is called, so that a batch touching it blocks.
func holdAccount(t *testing.T, pool *pgxpool.Pool, user string) (release func()) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM ledger_accounts WHERE user_id = $1 FOR UPDATE`, user); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { _ = tx.Rollback(ctx) }) }
	t.Cleanup(release)
	return release
}

type answer struct {
	res ledger.Result
	err error
}

// queued posts with one batch in flight at most: the first posting is taken
// by a batch that blocks on the held account, and every later one (started in
// order, each after the previous is queued) waits for the same next batch.
type queued struct {
	t       *testing.T
	l       *ledger.Ledger
	answers []chan answer
}

func (q *queued) post(ctx context.Context, f func(context.Context) (ledger.Result, error)) chan answer {
	q.t.Helper()
	ch := make(chan answer, 1)
	before, _ := q.l.BatchState()
	if len(q.answers) == 0 {
		testkit.Eventually(q.t, 10*time.Second, "the batcher to be idle", func() bool { n, f := q.l.BatchState(); return n == 0 && f == 0 })
	}
	go func() {
		res, err := f(ctx)
		ch <- answer{res, err}
	}()
	if len(q.answers) == 0 {
		testkit.Eventually(q.t, 10*time.Second, "the first posting to be taken by a batch", func() bool { n, f := q.l.BatchState(); return n == 0 && f == 1 })
	} else {
		testkit.Eventually(q.t, 10*time.Second, "the posting to queue", func() bool { n, _ := q.l.BatchState(); return n == before+1 })
	}
	q.answers = append(q.answers, ch)
	return ch
}

func spendOf(l *ledger.Ledger, p ledger.Posting) func(context.Context) (ledger.Result, error) {
	return func(ctx context.Context) (ledger.Result, error) { return l.Spend(ctx, p) }
}

func TestBatch_QueuedPostingsShareOneTransaction(t *testing.T) {
	db := storagetest.NewDB(t)
	core, logs := observer.New(zapcore.InfoLevel)
	l := ledger.New(db.Pool, zap.New(core))
	l.SetBatchLimits(64, 1)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 10)
	release := holdAccount(t, db.Pool, u)

	q := &queued{t: t, l: l}
	p := func(ref string, amount int64) ledger.Posting {
		return ledger.Posting{UserID: u, Amount: amount, Reference: ref, Description: "d", Origin: testOrigin}
	}
	first := q.post(ctx, spendOf(l, p("q-0", 1)))    // alone in the blocked batch: 10 → 9
	ok1 := q.post(ctx, spendOf(l, p("q-1", 3)))      // 9 → 6
	replay := q.post(ctx, spendOf(l, p("q-1", 3)))   // same batch, same body: replay
	conflict := q.post(ctx, spendOf(l, p("q-1", 4))) // same batch, other body
	poor := q.post(ctx, spendOf(l, p("q-2", 7)))     // 6 < 7: refused, writes nothing
	grant := q.post(ctx, func(ctx context.Context) (ledger.Result, error) {
		return l.Grant(ctx, p("q-3", 5)) // 6 → 11
	})
	retried := q.post(ctx, spendOf(l, p("q-2", 7))) // the refused reference, now affordable: 11 → 4
	replayOld := q.post(ctx, spendOf(l, p("q-0", 1)))
	adjust := q.post(ctx, func(ctx context.Context) (ledger.Result, error) {
		return l.Adjust(ctx, ledger.AdjustPosting{Posting: p("q-4", 4), Direction: ledger.Debit, Reason: "fix"}) // 4 → 0
	})
	release()

	get := func(ch chan answer) answer {
		t.Helper()
		select {
		case a := <-ch:
			return a
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
		}
		return answer{}
	}
	a0 := get(first)
	if a0.err != nil || a0.res.Balance != 9 {
		t.Fatalf("first = %+v, %v", a0.res, a0.err)
	}
	a1 := get(ok1)
	if a1.err != nil || a1.res.Replayed || a1.res.Balance != 6 || a1.res.Transaction.Seq != 3 {
		t.Fatalf("q-1 = %+v, %v", a1.res, a1.err)
	}
	if a := get(replay); a.err != nil || !a.res.Replayed || a.res.Transaction.ID != a1.res.Transaction.ID || a.res.Balance != 6 {
		t.Fatalf("replay of q-1 in the same batch = %+v, %v", a.res, a.err)
	}
	if a := get(conflict); !errors.Is(a.err, ledger.ErrReferenceConflict) {
		t.Fatalf("conflicting q-1 = %+v, %v; want ErrReferenceConflict", a.res, a.err)
	}
	var ie *ledger.InsufficientCreditsError
	if a := get(poor); !errors.As(a.err, &ie) || ie.Balance != 6 || ie.Amount != 7 {
		t.Fatalf("q-2 = %+v, %v; want insufficient credits at balance 6", a.res, a.err)
	}
	if a := get(grant); a.err != nil || a.res.Balance != 11 {
		t.Fatalf("grant q-3 = %+v, %v", a.res, a.err)
	}
	a2 := get(retried)
	if a2.err != nil || a2.res.Replayed || a2.res.Balance != 4 {
		t.Fatalf("retried q-2 = %+v, %v", a2.res, a2.err)
	}
	if a := get(replayOld); a.err != nil || !a.res.Replayed || a.res.Transaction.ID != a0.res.Transaction.ID || a.res.Balance != 4 {
		t.Fatalf("replay of q-0 from an earlier batch = %+v, %v", a.res, a.err)
	}
	if a := get(adjust); a.err != nil || a.res.Balance != 0 || a.res.Transaction.Seq != 6 {
		t.Fatalf("adjust = %+v, %v", a.res, a.err)
	}

	// Everything after the first posting committed in one database transaction.
	var txs, n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text), count(*) FROM ledger_transactions
		WHERE reference IN ('q-1', 'q-2', 'q-3', 'q-4')`).Scan(&txs, &n); err != nil || txs != 1 || n != 4 {
		t.Fatalf("%d postings in %d database transactions (%v); want 4 in 1", n, txs, err)
	}
	// Refusals are audited like on the single path; replays as replays.
	var failed, replays int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE outcome = 'failure'),
			count(*) FILTER (WHERE details->>'replayed' = 'true')
		FROM audit_events WHERE target_id = $1`, u).Scan(&failed, &replays); err != nil || failed != 2 || replays != 2 {
		t.Fatalf("audit: %d failures, %d replays (%v); want 2 and 2", failed, replays, err)
	}
	if b := MustBalance(t, l, u); b != 0 {
		t.Fatalf("balance = %d, want 0", b)
	}
	if logs.FilterMessage("ledger: batch failed, posting its postings one by one").Len() != 0 {
		t.Fatal("the batch fell back to single postings")
	}
	MustVerifyClean(t, l)
}

func TestBatch_FailingPostingDoesNotFailTheOthers(t *testing.T) {
	db := storagetest.NewDB(t)
	core, logs := observer.New(zapcore.InfoLevel)
	l := ledger.New(db.Pool, zap.New(core))
	l.SetBatchLimits(64, 1)
	ctx := context.Background()
	u, v := MustCreateUser(t, db.Pool), MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 100)
	MustGrant(t, l, v, 100)
	release := holdAccount(t, db.Pool, u)

	q := &queued{t: t, l: l}
	q.post(ctx, spendOf(l, ledger.Posting{UserID: u, Amount: 1, Reference: "f-0", Origin: testOrigin}))
	var good []chan answer
	for i := range 5 {
		good = append(good, q.post(ctx, spendOf(l, ledger.Posting{UserID: []string{u, v}[i%2], Amount: 2, Reference: fmt.Sprintf("f-%d", i+1), Origin: testOrigin})))
	}
	// The database refuses this actor type (CHECK), which Go does not check:
	// the batch's transaction fails, for a reason that is not a refusal.
	bad := q.post(ctx, spendOf(l, ledger.Posting{UserID: v, Amount: 3, Reference: "f-bad",
		Origin: ledger.Origin{Actor: ledger.Actor{Type: "robot", ID: "r2"}}}))
	good = append(good, q.post(ctx, spendOf(l, ledger.Posting{UserID: v, Amount: 2, Reference: "f-6", Origin: testOrigin})))
	release()

	for i, ch := range good {
		if a := <-ch; a.err != nil || a.res.Replayed {
			t.Fatalf("good posting %d = %+v, %v", i, a.res, a.err)
		}
	}
	if a := <-bad; a.err == nil || errors.Is(a.err, ledger.ErrInsufficientCredits) || errors.Is(a.err, ledger.ErrReferenceConflict) {
		t.Fatalf("bad posting = %+v, %v; want a database error", a.res, a.err)
	}
	if logs.FilterMessage("ledger: batch failed, posting its postings one by one").Len() != 1 {
		t.Fatalf("want one batch fallback logged, got %v", logs.All())
	}
	if bu, bv := MustBalance(t, l, u), MustBalance(t, l, v); bu != 100-1-3*2 || bv != 100-3*2 {
		t.Fatalf("balances %d, %d; want 93, 94", bu, bv)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM ledger_transactions WHERE reference = 'f-bad'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("bad posting written %d times (%v)", n, err)
	}
	MustVerifyClean(t, l)
}

func TestBatch_CancelledCallers(t *testing.T) {
	db := storagetest.NewDB(t)
	core, logs := observer.New(zapcore.InfoLevel)
	l := ledger.New(db.Pool, zap.New(core))
	l.SetBatchLimits(64, 1)
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 100)
	release := holdAccount(t, db.Pool, u)

	ctx, cancel := context.WithCancel(context.Background())
	q := &queued{t: t, l: l}
	inDB := q.post(ctx, spendOf(l, ledger.Posting{UserID: u, Amount: 10, Reference: "c-taken", Origin: testOrigin}))
	waiting := []chan answer{
		q.post(ctx, spendOf(l, ledger.Posting{UserID: u, Amount: 20, Reference: "c-queued-1", Origin: testOrigin})),
		q.post(ctx, spendOf(l, ledger.Posting{UserID: u, Amount: 30, Reference: "c-queued-2", Origin: testOrigin})),
	}
	cancel()
	// Every caller returns at once, the account still being locked.
	for i, ch := range append(waiting, inDB) {
		select {
		case a := <-ch:
			if !errors.Is(a.err, context.Canceled) {
				t.Fatalf("caller %d: err = %v, want context.Canceled", i, a.err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("caller %d did not return after its context was cancelled", i)
		}
	}
	if n, _ := l.BatchState(); n != 0 {
		t.Fatalf("%d withdrawn postings still queued", n)
	}
	release()
	// The taken posting reaches the database; its outcome is logged.
	testkit.Eventually(t, 10*time.Second, "the late outcome to be logged", func() bool {
		return logs.FilterMessage("ledger: posting committed after its caller left").Len() == 1
	})
	e := logs.FilterMessage("ledger: posting committed after its caller left").All()[0].ContextMap()
	if e["reference"] != "c-taken" || e["balance"] != int64(90) {
		t.Fatalf("logged %v", e)
	}
	if b := MustBalance(t, l, u); b != 90 {
		t.Fatalf("balance = %d, want 90 (only the posting that reached the database)", b)
	}
	res, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 10, Reference: "c-taken", Origin: testOrigin})
	if err != nil || !res.Replayed || res.Transaction.ID != e["transaction_id"] {
		t.Fatalf("retry = %+v, %v; want the logged transaction replayed", res, err)
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_transactions WHERE reference LIKE 'c-queued-%'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("withdrawn postings written: %d (%v)", n, err)
	}
	MustVerifyClean(t, l)
}

func TestBatch_HotAccountManyGoroutines(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	MustGrant(t, l, u, 200)

	// 300 spends of 1 over 150 references (each sent twice, same body) plus
	// 100 with their own reference: 250 distinct spends for 200 credits.
	var mu sync.Mutex
	byRef := map[string]string{} // reference → transaction id of its successes
	var fresh, replays, refused atomic.Int64
	parallel(400, func(i int) {
		r := fmt.Sprintf("u-%d", i)
		if i < 300 {
			r = fmt.Sprintf("d-%d", i%150)
		}
		res, err := l.Spend(context.Background(), ledger.Posting{UserID: u, Amount: 1, Reference: r, Description: "hot", Origin: testOrigin})
		switch {
		case errors.Is(err, ledger.ErrInsufficientCredits):
			refused.Add(1)
			return
		case err != nil:
			t.Errorf("spend %s: %v", r, err)
			return
		case res.Replayed:
			replays.Add(1)
		default:
			fresh.Add(1)
		}
		mu.Lock()
		defer mu.Unlock()
		if id, ok := byRef[r]; ok && id != res.Transaction.ID {
			t.Errorf("reference %s answered with transactions %s and %s", r, id, res.Transaction.ID)
		}
		byRef[r] = res.Transaction.ID
	})
	if fresh.Load() != 200 || fresh.Load()+replays.Load()+refused.Load() != 400 {
		t.Fatalf("fresh %d, replays %d, refused %d; want 200 fresh of 400", fresh.Load(), replays.Load(), refused.Load())
	}
	if b := MustBalance(t, l, u); b != 0 {
		t.Fatalf("balance = %d, want 0", b)
	}
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ledger_transactions t JOIN ledger_accounts a ON a.id = t.account_id
		WHERE a.user_id = $1 AND t.kind = 'spend'`, u).Scan(&n); err != nil || n != 200 {
		t.Fatalf("%d spends recorded (%v), want 200", n, err)
	}
	rep := MustVerifyClean(t, l)
	if rep.Revenue.Int64() != 200 {
		t.Fatalf("report: %s", rep)
	}
}

func TestBatch_ManyAccountsMixedKinds(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	const users = 20
	ids := make([]string, users)
	for i := range ids {
		ids[i] = MustCreateUser(t, db.Pool)
	}
	want := make([]atomic.Int64, users)
	parallel(600, func(i int) {
		ctx := context.Background()
		k := i % users
		p := ledger.Posting{UserID: ids[k], Amount: int64(1 + rand.IntN(5)), Reference: fmt.Sprintf("m-%d", i), Origin: testOrigin}
		var res ledger.Result
		var err error
		signed := p.Amount
		switch i % 4 {
		case 0:
			res, err = l.Grant(ctx, p)
		case 1:
			res, err = l.Adjust(ctx, ledger.AdjustPosting{Posting: p, Direction: ledger.Credit, Reason: "bonus"})
		case 2:
			res, err = l.Spend(ctx, p)
			signed = -signed
		default:
			res, err = l.Adjust(ctx, ledger.AdjustPosting{Posting: p, Direction: ledger.Debit, Reason: "claw back"})
			signed = -signed
		}
		switch {
		case errors.Is(err, ledger.ErrInsufficientCredits):
		case err != nil:
			t.Errorf("posting %d: %v", i, err)
		case res.Replayed || res.Balance < 0 || res.Transaction.BalanceAfter != res.Balance:
			t.Errorf("posting %d: %+v", i, res)
		default:
			want[k].Add(signed)
		}
	})
	for k, id := range ids {
		if b := MustBalance(t, l, id); b != want[k].Load() {
			t.Fatalf("user %d: balance %d, want %d", k, b, want[k].Load())
		}
	}
	MustVerifyClean(t, l)
}

// Postings for a user whose account row is missing (a user older than the
// account trigger) take the single path, which creates it.
func TestBatch_UserWithoutAccount(t *testing.T) {
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	ctx := context.Background()
	u := MustCreateUser(t, db.Pool)
	if _, err := db.Pool.Exec(ctx, `DELETE FROM ledger_accounts WHERE user_id = $1`, u); err != nil {
		t.Fatal(err)
	}
	parallel(10, func(i int) {
		if _, err := l.Grant(ctx, ledger.Posting{UserID: u, Amount: 1, Reference: fmt.Sprintf("g-%d", i), Origin: testOrigin}); err != nil {
			t.Errorf("grant: %v", err)
		}
	})
	if b := MustBalance(t, l, u); b != 10 {
		t.Fatalf("balance = %d, want 10", b)
	}
	MustVerifyClean(t, l)
}

// Two replicas' batches lock overlapping accounts in one order (by id), so
// they queue behind each other instead of deadlocking; every posting lands.
func TestBatch_TwoReplicasOverlappingAccounts(t *testing.T) {
	db := storagetest.NewDB(t)
	replicas := []*ledger.Ledger{ledger.New(db.Pool, nil), ledger.New(db.Pool, nil)}
	const users = 8
	ids := make([]string, users)
	for i := range ids {
		ids[i] = MustCreateUser(t, db.Pool)
		MustGrant(t, replicas[0], ids[i], 1000)
	}
	want := make([]atomic.Int64, users)
	parallel(400, func(i int) {
		k := (i * 7) % users // consecutive postings touch accounts in scrambled order
		amount := int64(1 + i%3)
		_, err := replicas[i%2].Spend(context.Background(), ledger.Posting{UserID: ids[k], Amount: amount, Reference: fmt.Sprintf("r-%d", i), Origin: testOrigin})
		if err != nil {
			t.Errorf("spend %d: %v", i, err)
			return
		}
		want[k].Add(amount)
	})
	for k, id := range ids {
		if b := MustBalance(t, replicas[1], id); b != 1000-want[k].Load() {
			t.Fatalf("user %d: balance %d, want %d", k, b, 1000-want[k].Load())
		}
	}
	MustVerifyClean(t, replicas[1])
}
