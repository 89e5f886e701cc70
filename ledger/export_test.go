package ledger

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// SetBatchLimits changes the group-commit bounds of l (tests only).
func (l *Ledger) SetBatchLimits(maxBatch, maxInFlight int) {
	l.batch.mu.Lock()
	defer l.batch.mu.Unlock()
	l.batch.maxBatch, l.batch.maxInFlight = maxBatch, maxInFlight
}

// BatchState reports how many postings wait in the queue and how many
// batches are running (tests only).
func (l *Ledger) BatchState() (queued, inFlight int) {
	l.batch.mu.Lock()
	defer l.batch.mu.Unlock()
	return len(l.batch.queue), l.batch.inFlight
}

// Op is a posting of any kind, for tests that drive the two posting paths
// directly.
type Op struct {
	Kind Kind
	Posting
	Direction Direction  // adjust
	Reason    string     // adjust
	SpendID   string     // refund
	Caps      ChargeCaps // a service charge
}

func (o Op) op() (*op, error) {
	x := &op{Posting: o.Posting, kind: o.Kind, direction: o.Direction, refundOf: o.SpendID, reason: o.Reason, caps: o.Caps}
	switch o.Kind {
	case KindGrant, KindRefund:
		x.direction = Credit
	case KindSpend:
		x.direction = Debit
	}
	return x, x.validate()
}

// PostAlone posts o in its own database transaction (the single path).
func (l *Ledger) PostAlone(ctx context.Context, o Op) (Result, error) {
	x, err := o.op()
	if err != nil {
		return Result{}, err
	}
	return l.postAlone(ctx, &pending{ctx: ctx, o: x})
}

// PostGroup posts ops, in order, as one group commit (a group of one goes
// alone, as in the batcher) and returns each outcome.
func (l *Ledger) PostGroup(ctx context.Context, ops []Op) ([]Result, []error) {
	res, errs := make([]Result, len(ops)), make([]error, len(ops))
	var batch []*pending
	var at []int
	for i, o := range ops {
		x, err := o.op()
		if err != nil {
			errs[i] = err
			continue
		}
		batch = append(batch, &pending{ctx: ctx, o: x, done: make(chan struct{}), taken: true})
		at = append(at, i)
	}
	if len(batch) > 0 {
		l.commitGroup(batch)
	}
	for j, p := range batch {
		<-p.done
		res[at[j]], errs[at[j]] = p.res, p.err
	}
	return res, errs
}

// VerifyBeforeJoin is Verify calling f once the entries join's connection
// has taken the snapshot, before it reads.
func VerifyBeforeJoin(ctx context.Context, pool *pgxpool.Pool, f func()) (Report, error) {
	return verify(ctx, pool, verifyHooks{beforeJoin: f})
}

// VerifyHooks is Verify calling beforeJoin once the entries join's
// connection has the snapshot, before it reads, and beforeWalk after the
// entries are summed, before the chains are walked.
func VerifyHooks(ctx context.Context, pool *pgxpool.Pool, beforeJoin, beforeWalk func()) (Report, error) {
	return verify(ctx, pool, verifyHooks{beforeJoin: beforeJoin, beforeWalk: beforeWalk})
}
