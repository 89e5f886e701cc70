package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// Posting asks to move Amount credits for one user. Reference is unique per
// user: repeating a posting with the same reference and body replays it.
type Posting struct {
	UserID      string
	Amount      int64
	Reference   string
	Description string
	Origin      Origin
}

// RefundPosting returns credits of one earlier spend (SpendID) to its user.
type RefundPosting struct {
	Posting
	SpendID string
}

// AdjustPosting is an administrator's correction, in either direction, with
// a mandatory Reason.
type AdjustPosting struct {
	Posting
	Direction Direction
	Reason    string
}

// Grant credits the user from the issuance account.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict, ErrBalanceOverflow.
func (l *Ledger) Grant(ctx context.Context, p Posting) (Result, error) {
	return l.submit(ctx, &op{Posting: p, kind: KindGrant, direction: Credit, counter: issuanceAccount})
}

// Spend debits the user to the revenue account, or fails with
// *InsufficientCreditsError and writes nothing.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict, ErrInsufficientCredits.
func (l *Ledger) Spend(ctx context.Context, p Posting) (Result, error) {
	return l.submit(ctx, &op{Posting: p, kind: KindSpend, direction: Debit, counter: revenueAccount})
}

// Refund credits the user back from revenue, never more in total than the
// referenced spend took.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict, ErrSpendNotFound,
// *RefundExceedsError (ErrRefundExceedsSpend), ErrBalanceOverflow.
func (l *Ledger) Refund(ctx context.Context, p RefundPosting) (Result, error) {
	return l.post(ctx, &op{Posting: p.Posting, kind: KindRefund, direction: Credit, counter: revenueAccount, refundOf: p.SpendID})
}

// Adjust corrects a balance against the issuance account. A debit fails
// like a spend when the balance is too low.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict,
// ErrInsufficientCredits, ErrBalanceOverflow.
func (l *Ledger) Adjust(ctx context.Context, p AdjustPosting) (Result, error) {
	return l.submit(ctx, &op{Posting: p.Posting, kind: KindAdjust, direction: p.Direction, counter: issuanceAccount, reason: p.Reason})
}

// op is one posting on its way to the database.
type op struct {
	Posting
	kind      Kind
	direction Direction
	counter   int64 // the system account on the other side
	refundOf  string
	reason    string
}

func (o *op) validate() error {
	id, ok := normUserID(o.UserID)
	if !ok {
		return ErrUserNotFound
	}
	o.UserID = id
	if o.Origin.Actor.Type == "" {
		o.Origin.Actor.Type = ActorSystem // e.g. a CLI or job that did not say
	}
	if o.Amount <= 0 {
		return &ValidationError{Field: "amount", Detail: "must be a positive integer"}
	}
	if err := checkText("reference", o.Reference, 1, MaxReferenceLen); err != nil {
		return err
	}
	if err := checkText("description", o.Description, 0, MaxDescriptionLen); err != nil {
		return err
	}
	switch o.kind {
	case KindAdjust:
		if o.direction != Credit && o.direction != Debit {
			return &ValidationError{Field: "direction", Detail: `must be "credit" or "debit"`}
		}
		if strings.TrimSpace(o.reason) == "" {
			return &ValidationError{Field: "reason", Detail: "an adjustment requires a reason"}
		}
		if err := checkText("reason", o.reason, 1, MaxReasonLen); err != nil {
			return err
		}
	case KindRefund:
		if o.refundOf == "" {
			return &ValidationError{Field: "spend_id", Detail: "the id of the spend to refund is required"}
		}
		if !validUUID(o.refundOf) {
			return ErrSpendNotFound
		}
		o.refundOf = strings.ToLower(o.refundOf)
	}
	return nil
}

func checkText(field, s string, min, max int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n < min && min == 1:
		return &ValidationError{Field: field, Detail: "is required"}
	case n > max:
		return &ValidationError{Field: field, Detail: fmt.Sprintf("must be at most %d characters", max)}
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		return &ValidationError{Field: field, Detail: "must be valid UTF-8 text without NUL characters"}
	}
	return nil
}

// post runs o alone in one database transaction (see the package comment).
func (l *Ledger) post(ctx context.Context, o *op) (Result, error) {
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	return l.postValid(ctx, o, o.fingerprint())
}

// postValid is post of a validated o whose fingerprint is fp.
func (l *Ledger) postValid(ctx context.Context, o *op, fp []byte) (Result, error) {
	var res Result
	err := storage.InTx(ctx, l.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		res, err = l.postTx(ctx, tx, o, fp)
		return err
	})
	if err != nil {
		if failureCode(err) != "" {
			l.recordFailure(ctx, o, err)
		}
		return Result{}, err
	}
	return res, nil
}

const maxInt64 = int64(^uint64(0) >> 1)

func (l *Ledger) postTx(ctx context.Context, tx pgx.Tx, o *op, fp []byte) (Result, error) {
	acct, existing, prevHash, err := lockAndRead(ctx, tx, o)
	if err != nil {
		return Result{}, err
	}
	if existing != nil {
		if string(existing.fingerprint) != string(fp) {
			return Result{}, fmt.Errorf("%w: reference %q", ErrReferenceConflict, o.Reference)
		}
		if err := l.audit(ctx, tx, o, existing, true); err != nil {
			return Result{}, err
		}
		return Result{Transaction: *existing, Replayed: true, Balance: acct.balance}, nil
	}

	t := &Transaction{
		ID: newID(), UserID: o.UserID, Kind: o.kind, Direction: o.direction, Amount: o.Amount,
		Reference: o.Reference, Description: o.Description, Reason: o.reason, RefundOf: o.refundOf,
		Actor: o.Origin.Actor, RequestID: o.Origin.RequestID,
		accountID: acct.id, fingerprint: fp, prevHash: prevHash,
	}
	// The guarded update: the database, not Go, decides whether the money is
	// there (and CHECK (balance >= 0) stands behind it).
	var row pgx.Row
	switch {
	case o.direction == Debit:
		row = tx.QueryRow(ctx, `UPDATE ledger_accounts SET balance = balance - $2, head_seq = head_seq + 1
			WHERE id = $1 AND balance >= $2
			RETURNING balance, head_seq, clock_timestamp()`, acct.id, o.Amount)
	case o.kind == KindRefund:
		row = tx.QueryRow(ctx, `UPDATE ledger_accounts SET balance = balance + $2, head_seq = head_seq + 1
			WHERE id = $1 AND balance <= $4::bigint - $2::bigint
			  AND $2::bigint <= (SELECT s.amount - COALESCE((SELECT sum(r.amount) FROM ledger_transactions r WHERE r.refund_of = s.id), 0)
			             FROM ledger_transactions s WHERE s.id = $3 AND s.account_id = $1 AND s.kind = 'spend')
			RETURNING balance, head_seq, clock_timestamp()`, acct.id, o.Amount, o.refundOf, maxInt64)
	default:
		row = tx.QueryRow(ctx, `UPDATE ledger_accounts SET balance = balance + $2, head_seq = head_seq + 1
			WHERE id = $1 AND balance <= $3::bigint - $2::bigint
			RETURNING balance, head_seq, clock_timestamp()`, acct.id, o.Amount, maxInt64)
	}
	err = row.Scan(&t.BalanceAfter, &t.Seq, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, whyRefused(ctx, tx, acct, o)
	}
	if err != nil {
		return Result{}, fmt.Errorf("ledger: update balance: %w", err)
	}
	if t.Seq != acct.headSeq+1 {
		return Result{}, fmt.Errorf("ledger: account %d moved from seq %d to %d under its lock", acct.id, acct.headSeq, t.Seq)
	}
	t.CreatedAt = t.CreatedAt.UTC()
	t.hash = computeHash(t)
	t.Hash = fmt.Sprintf("%x", t.hash)

	signed := o.Amount
	if o.direction == Debit {
		signed = -signed
	}
	var refundOf any
	if t.RefundOf != "" {
		refundOf = t.RefundOf
	}
	if _, err := tx.Exec(ctx, `WITH t AS (
			INSERT INTO ledger_transactions (id, account_id, seq, kind, direction, amount, reference, description,
				reason, refund_of, balance_after, actor_type, actor_id, request_id, fingerprint, prev_hash, hash, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
			RETURNING id)
		INSERT INTO ledger_entries (transaction_id, account_id, amount)
		SELECT id, $2::bigint, $19::bigint FROM t
		UNION ALL SELECT id, $20::bigint, -$19::bigint FROM t`,
		t.ID, acct.id, t.Seq, string(t.Kind), string(t.Direction), t.Amount, t.Reference, t.Description,
		t.Reason, refundOf, t.BalanceAfter, t.Actor.Type, t.Actor.ID, t.RequestID, t.fingerprint, t.prevHash, t.hash, t.CreatedAt,
		signed, o.counter); err != nil {
		return Result{}, fmt.Errorf("ledger: insert transaction: %w", err)
	}
	if err := l.audit(ctx, tx, o, t, false); err != nil {
		return Result{}, err
	}
	return Result{Transaction: *t, Balance: t.BalanceAfter}, nil
}

// lockAndRead locks the user's account and returns it, the transaction
// already holding o's reference (or nil) and the hash of the chain head.
//
// The three statements go in one pipelined round trip, so the lock is held
// for one round trip less. Each statement takes its own snapshot (READ
// COMMITTED) when it starts, which is after the lock was granted: every
// earlier posting of this user has committed and is visible to the lookups.
func lockAndRead(ctx context.Context, tx pgx.Tx, o *op) (account, *Transaction, []byte, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT id, balance, head_seq FROM ledger_accounts WHERE user_id = $1 FOR UPDATE`, o.UserID)
	b.Queue(`SELECT `+txColumns+` FROM ledger_transactions t JOIN ledger_accounts a ON a.id = t.account_id
		WHERE a.user_id = $1 AND t.reference = $2`, o.UserID, o.Reference)
	b.Queue(`SELECT t.hash FROM ledger_transactions t JOIN ledger_accounts a ON a.id = t.account_id AND t.seq = a.head_seq
		WHERE a.user_id = $1`, o.UserID)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	var acct account
	err := br.QueryRow().Scan(&acct.id, &acct.balance, &acct.headSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		// No account yet: create it (or report the missing user) the slow way.
		if err := br.Close(); err != nil {
			return account{}, nil, nil, fmt.Errorf("ledger: lock account: %w", err)
		}
		if acct, err = lockAccount(ctx, tx, o.UserID); err != nil {
			return account{}, nil, nil, err
		}
		if acct.headSeq == 0 {
			return acct, nil, genesisHash, nil
		}
		// Another posting created the account and committed to it while we
		// waited for its lock: read its reference and chain head again, now
		// under our lock (TestBatch_UserWithoutAccount caught seq 2 chained
		// to the genesis hash).
		return lockAndRead(ctx, tx, o)
	}
	if err != nil {
		return account{}, nil, nil, fmt.Errorf("ledger: lock account: %w", err)
	}
	existing, err := scanTransaction(br.QueryRow(), o.UserID)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		existing = nil
	case err != nil:
		return account{}, nil, nil, fmt.Errorf("ledger: look up reference: %w", err)
	}
	var prev []byte
	if err := br.QueryRow().Scan(&prev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return account{}, nil, nil, fmt.Errorf("ledger: read chain head: %w", err)
	}
	if acct.headSeq == 0 {
		prev = genesisHash
	} else if len(prev) != len(genesisHash) {
		return account{}, nil, nil, fmt.Errorf("ledger: account %d: chain head seq %d has no hash", acct.id, acct.headSeq)
	}
	if err := br.Close(); err != nil {
		return account{}, nil, nil, fmt.Errorf("ledger: lock account: %w", err)
	}
	return acct, existing, prev, nil
}

// whyRefused explains a guarded update that matched no row.
func whyRefused(ctx context.Context, tx pgx.Tx, acct account, o *op) error {
	if o.direction == Debit {
		return &InsufficientCreditsError{Balance: acct.balance, Amount: o.Amount}
	}
	if o.kind == KindRefund {
		var remaining int64
		err := tx.QueryRow(ctx, `SELECT s.amount - COALESCE((SELECT sum(r.amount) FROM ledger_transactions r WHERE r.refund_of = s.id), 0)
			FROM ledger_transactions s WHERE s.id = $1 AND s.account_id = $2 AND s.kind = 'spend'`, o.refundOf, acct.id).Scan(&remaining)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrSpendNotFound
		}
		if err != nil {
			return fmt.Errorf("ledger: read spend: %w", err)
		}
		if o.Amount > remaining {
			return &RefundExceedsError{Remaining: remaining, Amount: o.Amount}
		}
	}
	return ErrBalanceOverflow
}

// failureCode names a refusal the caller caused, "" for anything else.
func failureCode(err error) string {
	switch {
	case errors.Is(err, ErrInsufficientCredits):
		return "insufficient_credits"
	case errors.Is(err, ErrReferenceConflict):
		return "reference_conflict"
	case errors.Is(err, ErrRefundExceedsSpend):
		return "refund_exceeds_spend"
	case errors.Is(err, ErrSpendNotFound):
		return "spend_not_found"
	case errors.Is(err, ErrBalanceOverflow):
		return "balance_overflow"
	}
	return ""
}

var auditTypes = map[Kind]string{
	KindGrant:  "credits.granted",
	KindSpend:  "credits.spent",
	KindRefund: "credits.refunded",
	KindAdjust: "credits.adjusted",
}

func (o *op) auditEvent() audit.Event {
	return audit.Event{
		Type: auditTypes[o.kind], ActorType: o.Origin.Actor.Type, ActorID: o.Origin.Actor.ID,
		TargetType: "user", TargetID: o.UserID,
		RequestID: o.Origin.RequestID, IP: o.Origin.IP, UserAgent: o.Origin.UserAgent,
	}
}

// audit records the posting in tx, so the event commits with the money.
func (l *Ledger) audit(ctx context.Context, tx pgx.Tx, o *op, t *Transaction, replayed bool) error {
	return audit.Record(ctx, tx, l.log, successEvent(ctx, o, t, replayed))
}

// recordFailure audits a refused posting. Its transaction rolled back, so
// this is a separate write; failing to make it is logged, not returned, as
// the caller's answer does not depend on it.
func (l *Ledger) recordFailure(ctx context.Context, o *op, cause error) {
	if err := audit.Record(context.WithoutCancel(ctx), l.pool, l.log, failureEvent(ctx, o, cause)); err != nil {
		l.log.Warn("ledger: audit of refused posting failed", zap.Error(err))
	}
}
