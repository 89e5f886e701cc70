package ledger

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/authd/authd/internal/audit"
)

// book is what a posting transaction knows once it holds its account locks
// (read.go fills it): each locked account as the postings decided so far
// leave it, the transactions holding the postings' references, what is left
// of the spends being refunded, each charging client's charges today, and
// the database's time. decide reads and advances it: both the single and the
// group-commit path decide every posting here and nowhere else.
type book struct {
	accounts map[string]*lockedAccount // by user id
	byID     map[int64]*lockedAccount
	refs     map[refKey]*Transaction
	spends   map[string]*spendLeft // by spend id
	charged  map[chargeKey]int64   // today's service charges
	now      time.Time
}

func newBook() *book {
	return &book{
		accounts: map[string]*lockedAccount{}, byID: map[int64]*lockedAccount{},
		refs: map[refKey]*Transaction{}, spends: map[string]*spendLeft{}, charged: map[chargeKey]int64{},
	}
}

// lockedAccount is a user account under its row lock: as it was locked, and
// as the postings decided so far leave it.
type lockedAccount struct {
	id                       int64
	userID                   string
	lockedBalance, lockedSeq int64
	balance, headSeq         int64
	head                     []byte // hash of the chain head
}

// moved reports whether a posting was decided on the account.
func (a *lockedAccount) moved() bool { return a.headSeq != a.lockedSeq }

type refKey struct {
	account   int64
	reference string
}

// spendLeft is what is left to refund of one spend.
type spendLeft struct {
	account   int64
	remaining int64
}

// decided is one posting's outcome under the locks.
type decided struct {
	res Result
	err error // a refusal the caller caused
	// write is the new transaction to insert; nil for a replay or a refusal.
	write *Transaction
	// solo: the user has no account row; the single path creates it (or
	// reports ErrUserNotFound).
	solo bool
}

// decide applies the posting rule to o: a reference used before replays the
// transaction holding it (same body) or conflicts, whatever else has changed
// since; otherwise o must fit its client's caps, what is left of the spend it
// refunds, the balance (debits) and int64 (credits). A posting admitted moves
// b, so the next posting of the same account is decided after it.
func (b *book) decide(o *op) decided {
	a := b.accounts[o.UserID]
	if a == nil {
		return decided{solo: true}
	}
	key := refKey{a.id, o.Reference}
	if t := b.refs[key]; t != nil {
		if !bytes.Equal(t.fingerprint, o.fp) {
			return decided{err: fmt.Errorf("%w: reference %q", ErrReferenceConflict, o.Reference)}
		}
		return decided{res: Result{Transaction: *t, Replayed: true, Balance: a.balance}}
	}
	after, err := b.admit(o, a)
	if err != nil {
		return decided{err: err}
	}
	t := b.record(o, a, after)
	b.refs[key] = t
	return decided{res: Result{Transaction: *t, Balance: after}, write: t}
}

// admit returns a's balance after o, or why o is refused. It changes nothing.
func (b *book) admit(o *op, a *lockedAccount) (int64, error) {
	if !o.caps.none() {
		if err := o.caps.admit(o.Amount, b.charged[chargeKey{a.id, o.Origin.ClientID}]); err != nil {
			return 0, err
		}
	}
	if o.kind == KindRefund {
		s := b.spends[o.refundOf]
		if s == nil || s.account != a.id {
			return 0, ErrSpendNotFound
		}
		if o.Amount > s.remaining {
			return 0, &RefundExceedsError{Remaining: s.remaining, Amount: o.Amount}
		}
	}
	if o.direction == Debit {
		if a.balance < o.Amount {
			return 0, &InsufficientCreditsError{Balance: a.balance, Amount: o.Amount}
		}
		return a.balance - o.Amount, nil
	}
	if a.balance > maxInt64-o.Amount {
		return 0, ErrBalanceOverflow
	}
	return a.balance + o.Amount, nil
}

// record makes the transaction of an admitted o, chained to a's head, and
// moves a, the spend it refunds and its client's charges today past it.
func (b *book) record(o *op, a *lockedAccount, after int64) *Transaction {
	t := &Transaction{
		ID: newID(), UserID: o.UserID, Kind: o.kind, Direction: o.direction, Amount: o.Amount,
		Reference: o.Reference, Description: o.Description, Reason: o.reason, RefundOf: o.refundOf,
		Actor: o.Origin.Actor, ClientID: o.Origin.ClientID, RequestID: o.Origin.RequestID,
		BalanceAfter: after, Seq: a.headSeq + 1, CreatedAt: b.now,
		accountID: a.id, fingerprint: o.fp, prevHash: a.head,
	}
	t.hash = computeHash(t)
	t.Hash = fmt.Sprintf("%x", t.hash)
	a.balance, a.headSeq, a.head = after, t.Seq, t.hash
	if o.kind == KindRefund {
		b.spends[o.refundOf].remaining -= o.Amount
	}
	if isServiceCharge(t) {
		b.charged[chargeKey{a.id, t.ClientID}] += o.Amount
	}
	return t
}

// isServiceCharge says whether t counts towards its client's daily cap: a
// spend a service client made (chargedTodaySQL sums the same).
func isServiceCharge(t *Transaction) bool {
	return t.Kind == KindSpend && t.Actor.Type == ActorClient && t.ClientID != ""
}

// event is the audit event of o's outcome d.
func (d decided) event(ctx context.Context, o *op) audit.Event {
	if d.err != nil {
		return failureEvent(ctx, o, d.err)
	}
	return successEvent(ctx, o, &d.res.Transaction, d.res.Replayed)
}
