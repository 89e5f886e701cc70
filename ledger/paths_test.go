package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// step is one posting of a random script, naming users and spends by their
// index so that each path resolves them to its own.
type step struct {
	kind    ledger.Kind
	user    int
	amount  int64
	ref     string
	desc    string
	dir     ledger.Direction
	refunds int    // index of the spend step a refund refers to, or -1
	charge  string // the charging client, "" for an admin's posting
	caps    ledger.ChargeCaps
}

// chunk is a run of steps that the grouped path posts as one group commit.
type chunk []int

// randomScript returns about n steps in chunks of 1 to 8 (and bursts). Refunds refer only to
// spends of earlier chunks (a group learns its spends' ids at its commit);
// replays and conflicting reuses of a reference may refer to any earlier step.
func randomScript(rng *rand.Rand, users, n int) ([]step, []chunk) {
	var steps []step
	var chunks []chunk
	spendsBefore := 0 // spends in earlier chunks, by step index
	var spends []int
	for len(steps) < n {
		size := 1 + rng.IntN(8)
		var c chunk
		for range size {
			i := len(steps)
			s := step{user: rng.IntN(users), ref: fmt.Sprintf("r%d", i), desc: "d", refunds: -1}
			switch r := rng.IntN(100); {
			case r < 20:
				s.kind, s.amount = ledger.KindGrant, 1+rng.Int64N(500)
				if rng.IntN(4) == 0 {
					s.amount = 3 << 61 // two of them overflow
				}
			case r < 55:
				s.kind, s.amount = ledger.KindSpend, 1+rng.Int64N(300)
				if rng.IntN(2) == 0 {
					s.charge = fmt.Sprintf("svc%d", rng.IntN(3))
					s.caps = [...]ledger.ChargeCaps{{}, {PerSpend: 200}, {PerUserPerDay: 400}, {PerSpend: 250, PerUserPerDay: 700}}[rng.IntN(4)]
				}
			case r < 65:
				s.kind, s.amount = ledger.KindAdjust, 1+rng.Int64N(200)
				s.dir = [...]ledger.Direction{ledger.Credit, ledger.Debit}[rng.IntN(2)]
			case r < 80 && spendsBefore > 0:
				s.kind, s.amount = ledger.KindRefund, 1+rng.Int64N(150)
				s.refunds = spends[rng.IntN(spendsBefore)]
				if rng.IntN(5) > 0 {
					s.user = steps[s.refunds].user // else: another user's spend
				}
				if rng.IntN(10) == 0 {
					s.refunds = -2 // a spend that does not exist
				}
			case i > 0:
				// Reuse an earlier reference: the same request (a replay) or,
				// one time in three, another amount (a conflict).
				s = steps[rng.IntN(i)]
				if rng.IntN(3) == 0 {
					s.amount++
				}
			default:
				s.kind, s.amount = ledger.KindGrant, 100
			}
			if s.kind == ledger.KindSpend && s.refunds == -1 {
				spends = append(spends, i)
			}
			steps = append(steps, s)
			c = append(c, i)
			if s.caps.PerUserPerDay > 0 && rng.IntN(2) == 0 {
				// A burst of the same client's charges in one group, so that
				// the daily cap is crossed inside groups too.
				for range 1 + rng.IntN(3) {
					b := s
					b.ref, b.amount = fmt.Sprintf("r%d", len(steps)), 1+rng.Int64N(200)
					spends = append(spends, len(steps))
					c = append(c, len(steps))
					steps = append(steps, b)
				}
			}
		}
		chunks = append(chunks, c)
		spendsBefore = len(spends)
	}
	return steps, chunks
}

// path is one way of posting a script: its own users, and the outcomes.
type path struct {
	users []string
	res   []ledger.Result
	errs  []error
}

func (p *path) op(steps []step, i int) ledger.Op {
	s := steps[i]
	o := ledger.Op{Kind: s.kind, Direction: s.dir, Posting: ledger.Posting{
		UserID: p.users[s.user], Amount: s.amount, Reference: s.ref, Description: s.desc, Origin: testOrigin,
	}}
	if s.kind == ledger.KindAdjust {
		o.Reason = "correction"
	}
	if s.charge != "" {
		o.Caps = s.caps
		o.Origin = ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorClient, ID: s.charge}, ClientID: s.charge, RequestID: "req-svc"}
	}
	switch {
	case s.refunds == -2:
		o.SpendID = "00000000-0000-4000-8000-00000000dead"
	case s.refunds >= 0:
		o.SpendID = p.res[s.refunds].Transaction.ID
		if o.SpendID == "" { // the spend was refused
			o.SpendID = "00000000-0000-4000-8000-00000000beef"
		}
	}
	return o
}

// TestPostingPaths_SameRowsBalancesAndChain posts the same random postings
// once alone each (the single path) and once in group commits (the batch
// path) and requires the same outcomes, rows, entries, audit events,
// balances and chain links from both.
func TestPostingPaths_SameRowsBalancesAndChain(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("Seed%d", seed), func(t *testing.T) {
			t.Parallel()
			db := storagetest.NewDB(t)
			core, logs := observer.New(zap.WarnLevel)
			l := ledger.New(db.Pool, zap.New(core))
			ctx := context.Background()
			const users = 3
			steps, chunks := randomScript(rand.New(rand.NewPCG(seed, 0x5eed)), users, 160)
			alone, grouped := &path{}, &path{}
			for _, p := range []*path{alone, grouped} {
				for range users {
					p.users = append(p.users, MustCreateUser(t, db.Pool))
				}
				p.res, p.errs = make([]ledger.Result, len(steps)), make([]error, len(steps))
			}
			for _, c := range chunks {
				ops := make([]ledger.Op, len(c))
				for j, i := range c {
					alone.res[i], alone.errs[i] = l.PostAlone(ctx, alone.op(steps, i))
					ops[j] = grouped.op(steps, i)
				}
				res, errs := l.PostGroup(ctx, ops)
				for j, i := range c {
					grouped.res[i], grouped.errs[i] = res[j], errs[j]
				}
			}
			if logs.Len() > 0 {
				t.Fatalf("a group commit failed and was posted one by one: %v", logs.All()[0].Message)
			}

			kinds := map[string]int{}
			for i := range steps {
				a, g := outcomeOf(alone.res[i], alone.errs[i]), outcomeOf(grouped.res[i], grouped.errs[i])
				if !reflect.DeepEqual(a, g) {
					t.Fatalf("step %d %+v: alone %+v, grouped %+v", i, steps[i], a, g)
				}
				kinds[a.code]++
			}
			t.Logf("outcomes: %v", kinds)
			for _, want := range []string{"ok", "replayed", "insufficient_credits", "reference_conflict", "charge_cap_exceeded", "spend_not_found", "refund_exceeds_spend", "balance_overflow"} {
				if kinds[want] == 0 {
					t.Errorf("the script produced no %q outcome; make it reach every rule", want)
				}
			}
			for u := range users {
				a, g := readAccount(t, db, alone.users[u]), readAccount(t, db, grouped.users[u])
				if !reflect.DeepEqual(a, g) {
					t.Fatalf("user %d differs:\n%s", u, firstDifference(a, g))
				}
			}
			MustVerifyClean(t, l)
		})
	}
}

// outcome is a posting's answer without what differs by path by design
// (ids, users, times, hashes).
type outcome struct {
	code                   string
	seq, balance, after    int64
	kind, refundOf, client string
}

func outcomeOf(r ledger.Result, err error) outcome {
	if err != nil {
		return outcome{code: errCode(err)}
	}
	o := outcome{code: "ok", seq: r.Transaction.Seq, balance: r.Balance, after: r.Transaction.BalanceAfter,
		kind: string(r.Transaction.Kind), client: r.Transaction.ClientID}
	if r.Replayed {
		o.code = "replayed"
	}
	if r.Transaction.RefundOf != "" {
		o.refundOf = "set"
	}
	return o
}

func errCode(err error) string {
	for code, target := range map[string]error{
		"insufficient_credits": ledger.ErrInsufficientCredits, "reference_conflict": ledger.ErrReferenceConflict,
		"refund_exceeds_spend": ledger.ErrRefundExceedsSpend, "spend_not_found": ledger.ErrSpendNotFound,
		"balance_overflow": ledger.ErrBalanceOverflow, "charge_cap_exceeded": ledger.ErrChargeCapExceeded,
	} {
		if errors.Is(err, target) {
			return code
		}
	}
	return "error: " + err.Error()
}

// account is one user's ledger as rows, with the user's own ids replaced.
type account struct {
	balance, headSeq int64
	rows             []txRow
	audit            []string
}

type txRow struct {
	seq                                     int64
	kind, direction                         string
	amount                                  int64
	reference, description, reason          string
	refundOfSeq                             int64 // seq of the refunded spend, 0 for none
	balanceAfter                            int64
	actorType, actorID, clientID, requestID string
	fingerprint                             string
	linked                                  bool   // prev_hash is the previous transaction's hash
	entries                                 string // "user:±n,<system account>:∓n"
}

func readAccount(t *testing.T, db *storagetest.DB, user string) account {
	t.Helper()
	ctx := context.Background()
	var a account
	var id int64
	if err := db.Pool.QueryRow(ctx, `SELECT id, balance, head_seq FROM ledger_accounts WHERE user_id = $1`, user).
		Scan(&id, &a.balance, &a.headSeq); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT t.seq, t.kind, t.direction, t.amount, t.reference, t.description, t.reason,
			COALESCE(s.seq, 0), t.balance_after, t.actor_type, t.actor_id, t.client_id, t.request_id, encode(t.fingerprint, 'hex'),
			t.prev_hash = COALESCE(lag(t.hash) OVER (ORDER BY t.seq), decode(repeat('00', 32), 'hex')),
			(SELECT string_agg(CASE WHEN e.account_id = t.account_id THEN 'user' ELSE e.account_id::text END || ':' || e.amount, ',' ORDER BY e.id)
				FROM ledger_entries e WHERE e.transaction_id = t.id)
		FROM ledger_transactions t LEFT JOIN ledger_transactions s ON s.id = t.refund_of
		WHERE t.account_id = $1 ORDER BY t.seq`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var r txRow
		if err := rows.Scan(&r.seq, &r.kind, &r.direction, &r.amount, &r.reference, &r.description, &r.reason,
			&r.refundOfSeq, &r.balanceAfter, &r.actorType, &r.actorID, &r.clientID, &r.requestID, &r.fingerprint,
			&r.linked, &r.entries); err != nil {
			t.Fatal(err)
		}
		if r.kind == string(ledger.KindRefund) {
			r.fingerprint = "" // it covers the spend's id, which differs by path
		}
		if !r.linked {
			t.Fatalf("user %s seq %d: prev_hash is not the previous transaction's hash", user, r.seq)
		}
		a.rows = append(a.rows, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	arows, err := db.Pool.Query(ctx, `SELECT type || ' ' || outcome || ' ' || COALESCE(details->>'error', '') || ' ' || count(*)
		FROM audit_events WHERE target_id = $1 GROUP BY type, outcome, details->>'error' ORDER BY 1`, user)
	if err != nil {
		t.Fatal(err)
	}
	defer arows.Close()
	for arows.Next() {
		var s string
		if err := arows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		a.audit = append(a.audit, s)
	}
	if err := arows.Err(); err != nil {
		t.Fatal(err)
	}
	return a
}

func firstDifference(a, g account) string {
	for i := range min(len(a.rows), len(g.rows)) {
		if a.rows[i] != g.rows[i] {
			return fmt.Sprintf("alone   %+v\ngrouped %+v", a.rows[i], g.rows[i])
		}
	}
	return fmt.Sprintf("alone   balance %d head %d, %d rows, audit %v\ngrouped balance %d head %d, %d rows, audit %v",
		a.balance, a.headSeq, len(a.rows), a.audit, g.balance, g.headSeq, len(g.rows), g.audit)
}
