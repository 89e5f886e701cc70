package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// settle decides ps in order on b (decide.go) and writes the outcome in tx,
// in one round trip: the moved accounts, the new transactions with their
// entries, and an audit event for every posting decided, refusals included.
// It returns one outcome per posting; an error means tx must roll back.
func (l *Ledger) settle(ctx context.Context, tx pgx.Tx, b *book, ps []*pending) ([]decided, error) {
	ds := make([]decided, len(ps))
	var news []*Transaction
	var events []audit.Event
	for i, p := range ps {
		d := b.decide(p.o)
		ds[i] = d
		if d.solo {
			continue
		}
		if d.write != nil {
			news = append(news, d.write)
		}
		events = append(events, d.event(p.ctx, p.o))
	}
	wb := &pgx.Batch{}
	queueAccountMoves(wb, b)
	queueInserts(wb, news)
	if err := audit.QueueAll(wb, l.log, events); err != nil {
		return nil, err
	}
	if wb.Len() > 0 {
		if err := tx.SendBatch(ctx, wb).Close(); err != nil {
			return nil, fmt.Errorf("ledger: write %d transactions: %w", len(news), err)
		}
	}
	return ds, nil
}

// queueAccountMoves queues the new balance and chain head of every account a
// posting moved. The update is guarded: an account that is not as it was
// locked aborts the transaction, and CHECK (balance >= 0) stands behind the
// balances.
func queueAccountMoves(wb *pgx.Batch, b *book) {
	var args []any
	for _, a := range b.byID {
		if a.moved() {
			args = append(args, a.id, a.lockedBalance, a.lockedSeq, a.balance, a.headSeq)
		}
	}
	n := len(args) / 5
	if n == 0 {
		return
	}
	wb.Queue(`UPDATE ledger_accounts a SET balance = u.balance, head_seq = u.head_seq
		FROM (VALUES `+storage.Values(n, 5, "bigint", "bigint", "bigint", "bigint", "bigint")+`) u(id, locked_balance, locked_seq, balance, head_seq)
		WHERE a.id = u.id AND a.balance = u.locked_balance AND a.head_seq = u.locked_seq`, args...).
		Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() != int64(n) {
				return fmt.Errorf("ledger: %d of %d accounts moved under their locks", int64(n)-ct.RowsAffected(), n)
			}
			return nil
		})
}

// txInsertColumns are the columns queueInserts writes, in its order.
const txInsertColumns = 19

// queueInserts queues the INSERTs of ts and of their two entries each: the
// user's, then the system account's on the other side.
func queueInserts(wb *pgx.Batch, ts []*Transaction) {
	if len(ts) == 0 {
		return
	}
	args := make([]any, 0, txInsertColumns*len(ts))
	entries := make([]any, 0, 6*len(ts))
	for _, t := range ts {
		var refundOf any
		if t.RefundOf != "" {
			refundOf = t.RefundOf
		}
		args = append(args, t.ID, t.accountID, t.Seq, string(t.Kind), string(t.Direction), t.Amount, t.Reference, t.Description,
			t.Reason, refundOf, t.BalanceAfter, t.Actor.Type, t.Actor.ID, t.ClientID, t.RequestID, t.fingerprint, t.prevHash, t.hash, t.CreatedAt)
		signed := t.Amount
		if t.Direction == Debit {
			signed = -signed
		}
		entries = append(entries, t.ID, t.accountID, signed, t.ID, counterAccount(t.Kind), -signed)
	}
	wb.Queue(`INSERT INTO ledger_transactions (id, account_id, seq, kind, direction, amount, reference, description,
			reason, refund_of, balance_after, actor_type, actor_id, client_id, request_id, fingerprint, prev_hash, hash, created_at)
		VALUES `+storage.Values(len(ts), txInsertColumns), args...)
	wb.Queue(`INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES `+storage.Values(2*len(ts), 3), entries...)
}

// counterAccount is the system account on the other side of a transaction
// of kind k: revenue for spends and their refunds, issuance otherwise.
func counterAccount(k Kind) int64 {
	if k == KindSpend || k == KindRefund {
		return revenueAccount
	}
	return issuanceAccount
}
