package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

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

// The entry points. Every posting goes through group commit (postGrouped,
// batch.go): a posting alone in the queue is posted alone (postAlone), one
// that arrives while others are in the database shares the next batch. Both
// paths lock and read (read.go), decide (decide.go) and write (write.go) the
// same way.

// Grant credits the user from the issuance account.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict, ErrBalanceOverflow.
func (l *Ledger) Grant(ctx context.Context, p Posting) (Result, error) {
	return l.postGrouped(ctx, &op{Posting: p, kind: KindGrant, direction: Credit})
}

// Spend debits the user to the revenue account, or fails with
// *InsufficientCreditsError and writes nothing.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict, ErrInsufficientCredits.
func (l *Ledger) Spend(ctx context.Context, p Posting) (Result, error) {
	return l.postGrouped(ctx, &op{Posting: p, kind: KindSpend, direction: Debit})
}

// Charge is a Spend by a service client (p.Origin.Actor a client, whose id
// p.Origin.ClientID holds) within its caps, which are checked under the
// account lock with the balance: a charge above caps.PerSpend, or one that
// takes the client's charges to this user since 00:00 UTC (database clock)
// above caps.PerUserPerDay, is refused. A reference already used replays
// (or conflicts) before any cap is looked at. Zero caps make it a Spend.
// Errors: those of Spend, *ChargeCapError (ErrChargeCapExceeded).
func (l *Ledger) Charge(ctx context.Context, p Posting, caps ChargeCaps) (Result, error) {
	if caps.PerSpend < 0 || caps.PerUserPerDay < 0 {
		return Result{}, fmt.Errorf("ledger: charge caps %+v of client %q are negative", caps, p.Origin.ClientID)
	}
	if !caps.none() && (p.Origin.Actor.Type != ActorClient || p.Origin.ClientID == "") {
		return Result{}, fmt.Errorf("ledger: a capped charge needs a client actor and its client id, not %+v (client %q)", p.Origin.Actor, p.Origin.ClientID)
	}
	return l.postGrouped(ctx, &op{Posting: p, kind: KindSpend, direction: Debit, caps: caps})
}

// Refund credits the user back from revenue, never more in total than the
// referenced spend took.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict, ErrSpendNotFound,
// *RefundExceedsError (ErrRefundExceedsSpend), ErrBalanceOverflow.
func (l *Ledger) Refund(ctx context.Context, p RefundPosting) (Result, error) {
	return l.postGrouped(ctx, &op{Posting: p.Posting, kind: KindRefund, direction: Credit, refundOf: p.SpendID})
}

// Adjust corrects a balance against the issuance account. A debit fails
// like a spend when the balance is too low.
// Errors: *ValidationError, ErrUserNotFound, ErrReferenceConflict,
// ErrInsufficientCredits, ErrBalanceOverflow.
func (l *Ledger) Adjust(ctx context.Context, p AdjustPosting) (Result, error) {
	return l.postGrouped(ctx, &op{Posting: p.Posting, kind: KindAdjust, direction: p.Direction, reason: p.Reason})
}

// op is one posting on its way to the database.
type op struct {
	Posting
	kind      Kind
	direction Direction
	refundOf  string
	reason    string
	caps      ChargeCaps // a service charge's limits
	fp        []byte     // the request's fingerprint, set by validate
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
	o.fp = o.fingerprint()
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

// postAlone posts p's validated posting in its own database transaction.
// A refusal commits its audit event, as in a batch.
func (l *Ledger) postAlone(ctx context.Context, p *pending) (Result, error) {
	var d decided
	err := storage.InTx(ctx, l.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		b, err := lockOne(ctx, tx, p.o)
		if err != nil {
			return err
		}
		ds, err := l.settle(ctx, tx, b, []*pending{p})
		if err != nil {
			return err
		}
		d = ds[0]
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return d.res, d.err
}

const maxInt64 = int64(^uint64(0) >> 1)

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
	case errors.Is(err, ErrChargeCapExceeded):
		return "charge_cap_exceeded"
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

// successEvent is the audit event of a posting made (or replayed).
func successEvent(ctx context.Context, o *op, t *Transaction, replayed bool) audit.Event {
	e := o.auditEvent()
	e.Details = map[string]any{
		"transaction_id": t.ID, "amount": t.Amount, "direction": t.Direction, "reference": t.Reference,
		"balance_after": t.BalanceAfter, "replayed": replayed,
	}
	if t.RefundOf != "" {
		e.Details["refund_of"] = t.RefundOf
	}
	if o.Origin.ClientID != "" {
		e.Details["client_id"] = o.Origin.ClientID
	}
	return e.FromContext(ctx)
}

// failureEvent is the audit event of a refused posting.
func failureEvent(ctx context.Context, o *op, cause error) audit.Event {
	e := o.auditEvent()
	e.Failed = true
	e.Details = map[string]any{"error": failureCode(cause), "amount": o.Amount, "reference": o.Reference}
	if o.Origin.ClientID != "" {
		e.Details["client_id"] = o.Origin.ClientID
	}
	var ce *ChargeCapError
	if errors.As(cause, &ce) {
		e.Details["cap"], e.Details["limit"] = ce.Cap, ce.Limit
	}
	return e.FromContext(ctx)
}
