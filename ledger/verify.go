package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxProblems bounds Report.Problems; Truncated says more were found.
const MaxProblems = 1000

// Report is the outcome of Verify. A zero-problem report means every
// invariant held in one consistent snapshot of the ledger.
type Report struct {
	CheckedAt    time.Time `json:"checked_at"`
	Accounts     int       `json:"accounts"`
	Transactions int64     `json:"transactions"`
	Entries      int64     `json:"entries"`
	// Issued is what the issuance account gave out (the negation of its
	// balance); Revenue is the revenue account's balance; UserBalances is the
	// total of the user accounts' cached balances.
	// They are exact integers of any size (a ledger may hold more than an
	// int64 in total), rendered as JSON numbers.
	Issued       *big.Int `json:"issued"`
	Revenue      *big.Int `json:"revenue"`
	UserBalances *big.Int `json:"user_balances"`
	// Problems lists broken invariants, each naming the first broken record
	// of its account (chain problems after the first in one account follow
	// from it and are not repeated).
	Problems  []Problem `json:"problems"`
	Truncated bool      `json:"truncated,omitempty"`
}

// Problem is one broken invariant.
type Problem struct {
	// Check is one of: hash, chain, sequence, head, balance, balance_after,
	// entry, double_entry, refund.
	Check         string `json:"check"`
	AccountID     int64  `json:"account_id,omitempty"`
	UserID        string `json:"user_id,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
	Seq           int64  `json:"seq,omitempty"`
	Detail        string `json:"detail"`
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Check)
	if p.TransactionID != "" {
		fmt.Fprintf(&b, " transaction %s", p.TransactionID)
	}
	if p.AccountID != 0 {
		fmt.Fprintf(&b, " account %d", p.AccountID)
	}
	if p.UserID != "" {
		fmt.Fprintf(&b, " (user %s)", p.UserID)
	}
	if p.Seq != 0 {
		fmt.Fprintf(&b, " seq %d", p.Seq)
	}
	b.WriteString(": ")
	b.WriteString(p.Detail)
	return b.String()
}

// OK reports whether no invariant is broken.
func (r Report) OK() bool { return len(r.Problems) == 0 && !r.Truncated }

// First returns the first problem found, or nil.
func (r Report) First() *Problem {
	if len(r.Problems) == 0 {
		return nil
	}
	return &r.Problems[0]
}

// String is a human summary: one line of totals, then one line per problem.
func (r Report) String() string {
	var b strings.Builder
	status := "OK"
	if !r.OK() {
		status = fmt.Sprintf("BROKEN (%d problem(s))", len(r.Problems))
		if r.Truncated {
			status = fmt.Sprintf("BROKEN (more than %d problems)", len(r.Problems))
		}
	}
	fmt.Fprintf(&b, "ledger %s: %d accounts, %d transactions, %d entries; issued %v, revenue %v, user balances %v",
		status, r.Accounts, r.Transactions, r.Entries, r.Issued, r.Revenue, r.UserBalances)
	for _, p := range r.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// MarshalJSON adds "ok" to the report's fields.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	return json.Marshal(struct {
		OK bool `json:"ok"`
		plain
	}{r.OK(), plain(r)})
}

// Verify checks the whole ledger; see the package function Verify.
func (l *Ledger) Verify(ctx context.Context) (Report, error) { return Verify(ctx, l.pool) }

// Verify recomputes, in one REPEATABLE READ snapshot, every account's hash
// chain (sequence, prev_hash, hash, balance_after), every cached balance
// against the sum of its entries, double entry for every transaction, and
// that no spend was refunded beyond its amount. Broken invariants are
// Problems in the Report; the error is only for failing to read the ledger.
// Reading takes no locks, so postings continue while it runs.
//
// Each table is read in whole passes, never by an index probe per row (at
// 25 M transactions those took over an hour): the chains are walked in one
// ordered scan of the transactions, the entries are summed per account by
// one aggregate, and they are matched with their transactions by one sorted
// merge join that returns only the transactions whose entries are wrong.
// The join runs beside the walk on a second connection that shares the
// snapshot (pg_export_snapshot), when the pool can give one.
func Verify(ctx context.Context, pool *pgxpool.Pool) (Report, error) {
	return verify(ctx, pool, verifyHooks{})
}

// verifyHooks are for tests, which change the ledger or take locks there.
type verifyHooks struct {
	// beforeJoin runs once the join's connection has the snapshot and
	// before it reads; beforeWalk after the entries are summed and before
	// the chains are walked.
	beforeJoin, beforeWalk func()
}

// verify is Verify, with hooks.
func verify(ctx context.Context, pool *pgxpool.Pool, hooks verifyHooks) (Report, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Report{}, fmt.Errorf("ledger: verify: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	v := &verifier{r: Report{CheckedAt: time.Now().UTC(), Issued: new(big.Int), Revenue: new(big.Int), UserBalances: new(big.Int)}}
	// Memory for the per-account hash aggregate (a million groups), or the
	// walk's sort where the table is not in chain order.
	if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
		return Report{}, fmt.Errorf("ledger: verify: %w", err)
	}
	if err := v.loadAccounts(ctx, tx); err != nil {
		return Report{}, fmt.Errorf("ledger: verify: %w", err)
	}
	// The entries join on its own connection, in the same snapshot; without
	// one (a pool of one, or none free) it runs after the walk instead. It
	// is set up before this transaction reads (and locks) the tables the
	// join reads: see sharedSnapshot.
	tx2, err := sharedSnapshot(ctx, pool, tx)
	if err == nil {
		defer func() { _ = tx2.Rollback(context.WithoutCancel(ctx)) }()
	}
	joined := make(chan error, 1)
	joinCtx, cancelJoin := context.WithCancel(ctx)
	defer cancelJoin()
	if tx2 != nil {
		go func() {
			if hooks.beforeJoin != nil {
				hooks.beforeJoin()
			}
			err := v.findEntryProblems(joinCtx, tx2)
			// Its locks go now, not when the walk ends: a lock request
			// queued behind them would hold up the walk's next read.
			if rbErr := tx2.Rollback(context.WithoutCancel(joinCtx)); err == nil && rbErr != nil {
				err = rbErr
			}
			joined <- err
		}()
	}
	beforeWalk := func(context.Context, pgx.Tx) error {
		if hooks.beforeWalk != nil {
			hooks.beforeWalk()
		}
		return nil
	}
	for _, step := range []func(context.Context, pgx.Tx) error{v.sumEntries, beforeWalk, v.checkChains, v.checkRefunds} {
		if err := step(ctx, tx); err != nil {
			if tx2 != nil {
				cancelJoin()
				<-joined
			}
			return Report{}, fmt.Errorf("ledger: verify: %w", err)
		}
	}
	if tx2 != nil {
		err = <-joined
	} else if err = joinSettings(ctx, tx); err == nil {
		err = v.findEntryProblems(ctx, tx)
	}
	if err != nil {
		return Report{}, fmt.Errorf("ledger: verify: %w", err)
	}
	v.report()
	return v.r, nil
}

// sharedSnapshot begins a second read-only transaction in tx's snapshot,
// ready for findEntryProblems, or fails (and tx goes on alone).
//
// It takes a connection only if one is free: Verify calls each holding one
// and waiting for another would otherwise fill a pool and wait forever. Of
// Verify calls holding one connection each, the last to take its own sees
// the pool full, so not all of them wait.
//
// It runs before tx reads the tables the join reads, and the second
// transaction takes every lock its join needs (by planning it) before it
// returns. A lock the join waited for later could be queued behind an
// exclusive request (a migration, REINDEX, VACUUM FULL) that itself waits
// for tx's locks, while tx waits in Go for the join, where the server's
// deadlock detector cannot see it: all of them, and all postings queued
// behind the exclusive lock, would wait forever.
func sharedSnapshot(ctx context.Context, pool *pgxpool.Pool, tx pgx.Tx) (pgx.Tx, error) {
	if pool.Config().MaxConns < 2 {
		return nil, errors.New("a pool of one connection")
	}
	if st := pool.Stat(); st.AcquiredConns()+st.ConstructingConns() >= st.MaxConns() {
		return nil, errors.New("no free connection")
	}
	var snap string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snap); err != nil {
		return nil, err
	}
	tx2, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	if _, err := tx2.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+strings.ReplaceAll(snap, `'`, `''`)+`'`); err != nil {
		_ = tx2.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := joinSettings(ctx, tx2); err != nil {
		_ = tx2.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	// Planning locks the tables and all their indexes until tx2 ends.
	if _, err := tx2.Exec(ctx, `EXPLAIN `+entryProblemsQuery); err != nil {
		_ = tx2.Rollback(context.WithoutCancel(ctx))
		return nil, err
	}
	return tx2, nil
}

type acctState struct {
	id      int64
	kind    string
	userID  string
	name    string
	balance *int64
	headSeq int64
	entries *big.Int // sum of the account's entries
	// chain walk
	lastSeq     int64
	lastBalance int64
	lastHash    []byte
	broken      bool
}

// entryRow is a transaction whose entries are wrong: not exactly one entry
// on its own account for its signed amount, or not two entries summing to 0.
type entryRow struct {
	id           string
	account, seq int64
	direction    Direction
	amount       int64
	n            int64  // all its entries
	total        string // their sum
	userN        int64  // its entries on its own account
	userAmount   *string
}

// walkProblem is a problem found by the chain walk, at its transaction.
type walkProblem struct {
	account, seq int64
	p            Problem
}

type verifier struct {
	r        Report
	accounts map[int64]*acctState
	order    []*acctState
	total    *big.Int // of all entries

	// Each list is in chain order (account, seq) and holds at most
	// MaxProblems+1 problems, enough to fill and truncate the report. The
	// walk's and the join's run concurrently: report merges them.
	walk        []walkProblem // sequence, chain, hash, balance_after
	userEntries []entryRow    // entry
	doubleEntry []entryRow    // double_entry
	refunds     []Problem     // refund
}

func (v *verifier) add(p Problem) {
	if len(v.r.Problems) >= MaxProblems {
		v.r.Truncated = true
		return
	}
	v.r.Problems = append(v.r.Problems, p)
}

func (v *verifier) loadAccounts(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT a.id, a.kind, COALESCE(a.user_id::text, ''), COALESCE(a.name, ''), a.balance, a.head_seq
		FROM ledger_accounts a ORDER BY a.id`)
	if err != nil {
		return err
	}
	v.accounts = map[int64]*acctState{}
	for rows.Next() {
		a := &acctState{lastHash: genesisHash, entries: new(big.Int)}
		if err := rows.Scan(&a.id, &a.kind, &a.userID, &a.name, &a.balance, &a.headSeq); err != nil {
			return err
		}
		v.accounts[a.id] = a
		v.order = append(v.order, a)
	}
	v.r.Accounts = len(v.order)
	return rows.Err()
}

// sumEntries sums every account's entries, and all entries, in one pass.
func (v *verifier) sumEntries(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT account_id, count(*), sum(amount)::text FROM ledger_entries GROUP BY account_id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	v.total = new(big.Int)
	for rows.Next() {
		// acct is NULL for entries of no account (a tampered schema): they
		// count in the totals only.
		var acct *int64
		var n int64
		var sum string
		if err := rows.Scan(&acct, &n, &sum); err != nil {
			return err
		}
		s, ok := new(big.Int).SetString(sum, 10)
		if !ok {
			return fmt.Errorf("entries sum %q is not an integer", sum)
		}
		v.r.Entries += n
		v.total.Add(v.total, s)
		if acct == nil {
			continue
		}
		if a := v.accounts[*acct]; a != nil {
			a.entries = s
		}
	}
	return rows.Err()
}

// joinSettings makes the planner sort both tables for findEntryProblems
// (see there).
func joinSettings(ctx context.Context, tx pgx.Tx) error {
	for _, s := range []string{`SET LOCAL work_mem = '64MB'`, `SET LOCAL enable_indexscan = off`, `SET LOCAL enable_bitmapscan = off`,
		`SET LOCAL enable_hashjoin = off`, `SET LOCAL enable_hashagg = off`} {
		if _, err := tx.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// entryProblemsQuery returns the transactions whose entries may be wrong.
const entryProblemsQuery = `SELECT t.id::text, t.account_id, t.seq, t.direction, t.amount,
			count(e.transaction_id), COALESCE(sum(e.amount), 0)::text,
			count(e.transaction_id) FILTER (WHERE e.account_id = t.account_id),
			(sum(e.amount) FILTER (WHERE e.account_id = t.account_id))::text
		FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
		GROUP BY t.id
		HAVING count(e.transaction_id) <> 2 OR COALESCE(sum(e.amount), 0) <> 0
			OR count(e.transaction_id) FILTER (WHERE e.account_id = t.account_id) <> 1
			OR sum(e.amount) FILTER (WHERE e.account_id = t.account_id) IS DISTINCT FROM
				CASE WHEN t.direction = 'debit' THEN -t.amount::numeric ELSE t.amount::numeric END
		ORDER BY t.account_id, t.seq`

// findEntryProblems matches every transaction with its entries and keeps
// those whose entries are wrong. It sorts both tables and merges them: an
// index merge join fetches heap rows in index order, one random read per
// row where the ids do not follow the table's physical order (a hash
// aggregate over every transaction spills instead). The HAVING is a cheap
// superset of the checks; the exact ones are made here, as before.
func (v *verifier) findEntryProblems(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, entryProblemsQuery)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var r entryRow
		var dir string
		if err := rows.Scan(&r.id, &r.account, &r.seq, &dir, &r.amount, &r.n, &r.total, &r.userN, &r.userAmount); err != nil {
			return err
		}
		r.direction = Direction(dir)
		// A transaction of a non-user account is reported by the walk,
		// without its entries (v.accounts is read-only by now).
		if a := v.accounts[r.account]; a != nil && a.kind == "user" && r.userEntryBroken() && len(v.userEntries) <= MaxProblems {
			v.userEntries = append(v.userEntries, r)
		}
		if (r.n != 2 || r.total != "0") && len(v.doubleEntry) <= MaxProblems {
			v.doubleEntry = append(v.doubleEntry, r)
		}
	}
	return rows.Err()
}

func (r entryRow) signed() int64 {
	if r.direction == Debit {
		return -r.amount
	}
	return r.amount
}

func (r entryRow) userEntryBroken() bool {
	return r.userAmount == nil || *r.userAmount != strconv.FormatInt(r.signed(), 10) || r.userN != 1
}

// checkChains walks every user account's transactions in chain order.
func (v *verifier) checkChains(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT `+txColumns+` FROM ledger_transactions t ORDER BY t.account_id, t.seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		t := &Transaction{}
		if err := scanTransactionAnd(rows, t); err != nil {
			return err
		}
		v.r.Transactions++
		v.checkTransaction(t)
	}
	return rows.Err()
}

func (v *verifier) checkTransaction(t *Transaction) {
	a := v.accounts[t.accountID]
	if a == nil || a.kind != "user" {
		v.walked(t, Problem{Check: "chain", AccountID: t.accountID, TransactionID: t.ID, Seq: t.Seq, Detail: "transaction posted to a non-user account"})
		return
	}
	t.UserID = a.userID
	prob := func(check, format string, args ...any) {
		if !a.broken {
			v.walked(t, Problem{Check: check, AccountID: a.id, UserID: a.userID, TransactionID: t.ID, Seq: t.Seq, Detail: fmt.Sprintf(format, args...)})
		}
		a.broken = true
	}
	signed := t.Amount
	if t.Direction == Debit {
		signed = -signed
	}
	switch {
	case t.Seq != a.lastSeq+1:
		prob("sequence", "expected seq %d, found %d: transaction(s) %d..%d of this account are missing", a.lastSeq+1, t.Seq, a.lastSeq+1, t.Seq-1)
	case !bytes.Equal(t.prevHash, a.lastHash):
		prob("chain", "prev_hash %x does not match the hash %x of seq %d", t.prevHash, a.lastHash, a.lastSeq)
	case !bytes.Equal(computeHash(t), t.hash):
		prob("hash", "stored hash %x does not match the recomputed %x: the record was altered", t.hash, computeHash(t))
	case a.lastBalance+signed != t.BalanceAfter:
		prob("balance_after", "balance_after %d, but the previous balance %d %+d gives %d", t.BalanceAfter, a.lastBalance, signed, a.lastBalance+signed)
	}
	a.lastSeq, a.lastBalance, a.lastHash = t.Seq, t.BalanceAfter, t.hash
}

func (v *verifier) walked(t *Transaction, p Problem) {
	if len(v.walk) <= MaxProblems {
		v.walk = append(v.walk, walkProblem{t.accountID, t.Seq, p})
	}
}

// report adds the problems in the order of the checks: the walk's and the
// user entries' merged in chain order (a transaction's chain problem before
// its entry's), then double entry, refunds, and the balances.
func (v *verifier) report() {
	w, u := v.walk, v.userEntries
	for len(w) > 0 || len(u) > 0 {
		if len(u) == 0 || len(w) > 0 && (w[0].account < u[0].account || w[0].account == u[0].account && w[0].seq <= u[0].seq) {
			v.add(w[0].p)
			w = w[1:]
			continue
		}
		r := u[0]
		u = u[1:]
		got := "none"
		if r.userAmount != nil {
			got = fmt.Sprintf("%s in %d entries", *r.userAmount, r.userN)
		}
		v.add(Problem{Check: "entry", AccountID: r.account, UserID: v.accounts[r.account].userID, TransactionID: r.id, Seq: r.seq,
			Detail: fmt.Sprintf("the user's entry should be %+d, found %s", r.signed(), got)})
	}
	for _, r := range v.doubleEntry {
		p := Problem{Check: "double_entry", AccountID: r.account, TransactionID: r.id, Seq: r.seq,
			Detail: fmt.Sprintf("%d entries summing to %s (want 2 entries summing to 0)", r.n, r.total)}
		if a := v.accounts[r.account]; a != nil {
			p.UserID = a.userID
		}
		v.add(p)
	}
	if v.total.Sign() != 0 {
		v.add(Problem{Check: "double_entry", Detail: fmt.Sprintf("all entries sum to %s, not 0", v.total)})
	}
	for _, p := range v.refunds {
		v.add(p)
	}
	v.checkBalances()
}

func (v *verifier) checkRefunds(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT s.id::text, s.account_id, s.seq, s.kind, s.amount, sum(r.amount)::text,
			bool_or(r.account_id <> s.account_id)
		FROM ledger_transactions s JOIN ledger_transactions r ON r.refund_of = s.id
		GROUP BY s.id
		HAVING sum(r.amount) > s.amount OR s.kind <> 'spend' OR bool_or(r.account_id <> s.account_id)
		ORDER BY s.account_id, s.seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, kind string
		var acct, seq, amount int64
		var refunded string
		var foreign bool
		if err := rows.Scan(&id, &acct, &seq, &kind, &amount, &refunded, &foreign); err != nil {
			return err
		}
		p := Problem{Check: "refund", AccountID: acct, TransactionID: id, Seq: seq,
			Detail: fmt.Sprintf("%s of %d refunded %s in total", kind, amount, refunded)}
		if kind != "spend" || foreign {
			p.Detail = fmt.Sprintf("refunds point at a %s (another account: %v)", kind, foreign)
		}
		if a := v.accounts[acct]; a != nil {
			p.UserID = a.userID
		}
		if len(v.refunds) <= MaxProblems {
			v.refunds = append(v.refunds, p)
		}
	}
	return rows.Err()
}

// checkBalances compares each account's cached balance and chain head with
// its entries and its last transaction.
func (v *verifier) checkBalances() {
	for _, a := range v.order {
		switch {
		case a.kind == "system" && a.name == "issuance":
			v.r.Issued.Neg(a.entries)
		case a.kind == "system" && a.name == "revenue":
			v.r.Revenue.Set(a.entries)
		}
		if a.kind != "user" {
			continue
		}
		bal := int64(0)
		if a.balance != nil {
			bal = *a.balance
		}
		v.r.UserBalances.Add(v.r.UserBalances, big.NewInt(bal))
		p := Problem{AccountID: a.id, UserID: a.userID}
		switch {
		case a.balance == nil || bal < 0:
			p.Check, p.Detail = "balance", "user account has no or a negative cached balance"
		case a.entries.Cmp(big.NewInt(bal)) != 0:
			p.Check, p.Detail = "balance", fmt.Sprintf("cached balance %d, but its entries sum to %s", bal, a.entries)
		case a.headSeq != a.lastSeq:
			p.Check, p.Seq = "head", a.headSeq
			p.Detail = fmt.Sprintf("account head is seq %d, but its last transaction is seq %d: transaction(s) missing", a.headSeq, a.lastSeq)
		case bal != a.lastBalance:
			p.Check, p.Seq = "balance", a.lastSeq
			p.Detail = fmt.Sprintf("cached balance %d, but the last transaction left %d", bal, a.lastBalance)
		default:
			continue
		}
		v.add(p)
	}
}
