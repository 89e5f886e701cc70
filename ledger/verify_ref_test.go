package ledger

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// VerifyReference is Verify as it was before it was made fast (one probe of
// ledger_entries per transaction and per account): the tests compare the
// two reports on tampered ledgers, so the fast one keeps every check, its
// order of problems and its truncation.
func VerifyReference(ctx context.Context, pool *pgxpool.Pool) (Report, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Report{}, fmt.Errorf("ledger: verify: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	v := &refVerifier{r: Report{CheckedAt: time.Now().UTC(), Issued: new(big.Int), Revenue: new(big.Int), UserBalances: new(big.Int)}}
	for _, step := range []func(context.Context, pgx.Tx) error{v.loadAccounts, v.checkChains, v.checkDoubleEntry, v.checkRefunds} {
		if err := step(ctx, tx); err != nil {
			return Report{}, fmt.Errorf("ledger: verify: %w", err)
		}
	}
	v.checkBalances()
	return v.r, nil
}

type refAcctState struct {
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

type refVerifier struct {
	r        Report
	accounts map[int64]*refAcctState
	order    []*refAcctState
}

func (v *refVerifier) add(p Problem) {
	if len(v.r.Problems) >= MaxProblems {
		v.r.Truncated = true
		return
	}
	v.r.Problems = append(v.r.Problems, p)
}

func (v *refVerifier) loadAccounts(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT a.id, a.kind, COALESCE(a.user_id::text, ''), COALESCE(a.name, ''), a.balance, a.head_seq,
			COALESCE((SELECT sum(e.amount) FROM ledger_entries e WHERE e.account_id = a.id), 0)::text
		FROM ledger_accounts a ORDER BY a.id`)
	if err != nil {
		return err
	}
	v.accounts = map[int64]*refAcctState{}
	for rows.Next() {
		a := &refAcctState{lastHash: genesisHash}
		var sum string
		if err := rows.Scan(&a.id, &a.kind, &a.userID, &a.name, &a.balance, &a.headSeq, &sum); err != nil {
			return err
		}
		var ok bool
		if a.entries, ok = new(big.Int).SetString(sum, 10); !ok {
			return fmt.Errorf("account %d: entries sum %q is not an integer", a.id, sum)
		}
		v.accounts[a.id] = a
		v.order = append(v.order, a)
	}
	v.r.Accounts = len(v.order)
	return rows.Err()
}

// checkChains walks every user account's transactions in chain order.
func (v *refVerifier) checkChains(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT `+txColumns+`, ue.amount, ue.n FROM ledger_transactions t
		LEFT JOIN LATERAL (SELECT sum(e.amount)::text AS amount, count(*) AS n FROM ledger_entries e
			WHERE e.transaction_id = t.id AND e.account_id = t.account_id) ue ON true
		ORDER BY t.account_id, t.seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var userEntry *string
		var n int64
		t := &Transaction{}
		if err := scanTransactionAnd(rows, t, &userEntry, &n); err != nil {
			return err
		}
		v.r.Transactions++
		v.checkTransaction(t, userEntry, n)
	}
	return rows.Err()
}

func (v *refVerifier) checkTransaction(t *Transaction, userEntry *string, n int64) {
	a := v.accounts[t.accountID]
	if a == nil || a.kind != "user" {
		v.add(Problem{Check: "chain", AccountID: t.accountID, TransactionID: t.ID, Seq: t.Seq, Detail: "transaction posted to a non-user account"})
		return
	}
	t.UserID = a.userID
	prob := func(check, format string, args ...any) {
		if !a.broken {
			v.add(Problem{Check: check, AccountID: a.id, UserID: a.userID, TransactionID: t.ID, Seq: t.Seq, Detail: fmt.Sprintf(format, args...)})
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
	if userEntry == nil || *userEntry != strconv.FormatInt(signed, 10) || n != 1 {
		got := "none"
		if userEntry != nil {
			got = fmt.Sprintf("%s in %d entries", *userEntry, n)
		}
		v.add(Problem{Check: "entry", AccountID: a.id, UserID: a.userID, TransactionID: t.ID, Seq: t.Seq,
			Detail: fmt.Sprintf("the user's entry should be %+d, found %s", signed, got)})
	}
	a.lastSeq, a.lastBalance, a.lastHash = t.Seq, t.BalanceAfter, t.hash
}

func (v *refVerifier) checkDoubleEntry(ctx context.Context, tx pgx.Tx) error {
	var total string
	if err := tx.QueryRow(ctx, `SELECT count(*), COALESCE(sum(amount), 0)::text FROM ledger_entries`).Scan(&v.r.Entries, &total); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT t.id::text, t.account_id, t.seq, count(e.id), COALESCE(sum(e.amount), 0)::text
		FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id
		GROUP BY t.id HAVING count(e.id) <> 2 OR COALESCE(sum(e.amount), 0) <> 0
		ORDER BY t.account_id, t.seq`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var acct, seq, n int64
		var sum string
		if err := rows.Scan(&id, &acct, &seq, &n, &sum); err != nil {
			return err
		}
		p := Problem{Check: "double_entry", AccountID: acct, TransactionID: id, Seq: seq,
			Detail: fmt.Sprintf("%d entries summing to %s (want 2 entries summing to 0)", n, sum)}
		if a := v.accounts[acct]; a != nil {
			p.UserID = a.userID
		}
		v.add(p)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if total != "0" {
		v.add(Problem{Check: "double_entry", Detail: fmt.Sprintf("all entries sum to %s, not 0", total)})
	}
	return nil
}

func (v *refVerifier) checkRefunds(ctx context.Context, tx pgx.Tx) error {
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
		v.add(p)
	}
	return rows.Err()
}

// checkBalances compares each account's cached balance and chain head with
// its entries and its last transaction.
func (v *refVerifier) checkBalances() {
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
