package ledger

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// Group commit. Grants, spends and adjustments that arrive while earlier
// ones are in the database queue up, and the next free batch takes all of
// them (up to maxBatch) into ONE database transaction: one lock statement for
// all their accounts, one commit (one WAL flush) for all. No posting ever
// waits for a timer: a lone posting goes at once, on the single path (post).
// Refunds always take the single path, whose guarded UPDATE checks what is
// left of the spend.
//
// Under the account locks each posting is decided in arrival order exactly as
// post would (replay, reference conflict, insufficient credits, overflow),
// and the writes stay guarded: each account's UPDATE must find the balance
// and head_seq it was locked with, and CHECK (balance >= 0) stands behind the
// balances. A batch whose transaction fails for any other reason than a
// refusal is posted again one by one on the single path, so one bad posting
// cannot fail the others.
const (
	defaultMaxBatch = 64 // postings in one database transaction
	// One batch in flight per Ledger: the next forms from everything that
	// queued meanwhile. Two in flight split the queue into smaller batches
	// and cost more CPU per posting (measured: ~0.65 vs ~0.5 ms per spend over
	// 1,000 users, authd + Postgres), with no gain on a hot account, whose
	// batches serialise on its row lock anyway.
	defaultMaxInFlight = 1
	// batchTimeout bounds a batch, which runs for many callers and so under
	// none of their contexts.
	batchTimeout = 30 * time.Second
)

// batcher queues postings for group commit. Its fields are guarded by mu.
type batcher struct {
	mu          sync.Mutex
	queue       []*pending
	inFlight    int // draining goroutines
	maxBatch    int
	maxInFlight int
}

// pending is one caller's posting in the batcher.
type pending struct {
	ctx  context.Context
	o    *op
	fp   []byte
	done chan struct{} // closed, under batcher.mu, once res and err are set
	res  Result
	err  error
	// taken: a batch has the posting, so the caller can no longer withdraw it.
	// left: the caller gave up waiting after it was taken; its outcome is logged.
	taken, left bool
}

// submit queues o for the next batch and waits for its outcome or ctx.
func (l *Ledger) submit(ctx context.Context, o *op) (Result, error) {
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("ledger: %s %q of user %s: %w", o.kind, o.Reference, o.UserID, err)
	}
	p := &pending{ctx: ctx, o: o, fp: o.fingerprint(), done: make(chan struct{})}
	b := &l.batch
	b.mu.Lock()
	b.queue = append(b.queue, p)
	start := b.inFlight < b.maxInFlight
	if start {
		b.inFlight++
	}
	b.mu.Unlock()
	if start {
		go l.drain()
	}

	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-p.done: // answered while we were woken: the answer wins
		return p.res, p.err
	default:
	}
	if !p.taken {
		b.queue = slices.DeleteFunc(b.queue, func(q *pending) bool { return q == p })
		return Result{}, fmt.Errorf("ledger: %s %q of user %s: withdrawn before reaching the database: %w",
			o.kind, o.Reference, o.UserID, ctx.Err())
	}
	p.left = true
	return Result{}, fmt.Errorf("ledger: %s %q of user %s: the caller left while it was being committed "+
		"(its outcome is logged; a retry with the same reference replays it if it was made): %w", o.kind, o.Reference, o.UserID, ctx.Err())
}

// drain runs batches until the queue is empty.
func (l *Ledger) drain() {
	b := &l.batch
	for {
		b.mu.Lock()
		var batch []*pending
		n := 0
		for _, p := range b.queue {
			if len(batch) == b.maxBatch {
				b.queue[n] = p
				n++
				continue
			}
			if err := p.ctx.Err(); err != nil {
				// Its caller is leaving or gone: nothing was written for it.
				p.err = fmt.Errorf("ledger: %s %q of user %s: %w", p.o.kind, p.o.Reference, p.o.UserID, err)
				close(p.done)
				continue
			}
			p.taken = true
			batch = append(batch, p)
		}
		clear(b.queue[n:])
		b.queue = b.queue[:n]
		if len(batch) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		l.runBatch(batch)
	}
}

// finish answers p's caller, or logs the outcome if the caller has left.
func (l *Ledger) finish(p *pending, res Result, err error) {
	b := &l.batch
	b.mu.Lock()
	p.res, p.err = res, err
	close(p.done)
	left := p.left
	b.mu.Unlock()
	if !left {
		return
	}
	fields := []zap.Field{zap.String("kind", string(p.o.kind)), zap.String("user_id", p.o.UserID),
		zap.String("reference", p.o.Reference), zap.Int64("amount", p.o.Amount), zap.String("request_id", p.o.Origin.RequestID)}
	if err != nil {
		l.log.Warn("ledger: posting not made after its caller left", append(fields, zap.Error(err))...)
		return
	}
	l.log.Warn("ledger: posting committed after its caller left", append(fields,
		zap.String("transaction_id", res.Transaction.ID), zap.Bool("replayed", res.Replayed), zap.Int64("balance", res.Balance))...)
}

// outcome is one posting's fate in a batch.
type outcome struct {
	res Result
	err error // a refusal, recorded with the batch
	// solo: the user has no account row; post creates it (or reports
	// ErrUserNotFound) on the single path.
	solo bool
}

// runBatch posts batch in one transaction and answers every caller.
func (l *Ledger) runBatch(batch []*pending) {
	if len(batch) == 1 {
		// Alone: the single path has fewer statements (~0.25 ms less per
		// lone posting), so light load is served as before group commit.
		l.postEach(batch)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	var outs []outcome
	err := storage.InTx(ctx, l.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		outs, err = l.postBatchTx(ctx, tx, batch)
		return err
	})
	if err != nil {
		l.log.Warn("ledger: batch failed, posting its postings one by one", zap.Int("postings", len(batch)), zap.Error(err))
		l.postEach(batch)
		return
	}
	var solo []*pending
	for i, p := range batch {
		if outs[i].solo {
			solo = append(solo, p)
			continue
		}
		l.finish(p, outs[i].res, outs[i].err)
	}
	l.postEach(solo)
}

// postEach posts each of ps on the single path, concurrently. A posting
// whose caller has already left is not started (nothing is written for it);
// one that starts runs to its end even if the caller leaves meanwhile, so
// that its outcome is known and logged.
func (l *Ledger) postEach(ps []*pending) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.ctx.Err(); err != nil {
				l.finish(p, Result{}, fmt.Errorf("ledger: %s %q of user %s: %w", p.o.kind, p.o.Reference, p.o.UserID, err))
				return
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), batchTimeout)
			defer cancel()
			res, err := l.postValid(ctx, p.o, p.fp)
			l.finish(p, res, err)
		}()
	}
	wg.Wait()
}

// batchAccount is a locked account as the batch moves it.
type batchAccount struct {
	id, balance, headSeq int64
	head                 []byte // hash of the chain head
	lockedBalance        int64
	lockedSeq            int64
}

type refKey struct {
	account   int64
	reference string
}

// postBatchTx decides and writes batch in tx. It returns one outcome per
// posting; an error means the transaction must roll back. It may run more
// than once (InTx retries deadlocks), so it keeps no state between runs.
func (l *Ledger) postBatchTx(ctx context.Context, tx pgx.Tx, batch []*pending) ([]outcome, error) {
	users := make([]string, 0, len(batch))
	refs := make([]any, 0, 2*len(batch))
	for _, p := range batch {
		if !slices.Contains(users, p.o.UserID) {
			users = append(users, p.o.UserID)
		}
		refs = append(refs, p.o.UserID, p.o.Reference)
	}

	// One round trip: lock the accounts in id order (so two batches can't
	// deadlock), then, each statement with a snapshot taken after the locks
	// were granted, read their chain heads, the references, and the time.
	accts := map[string]*batchAccount{}
	byID := map[int64]string{}
	known := map[refKey]*Transaction{}
	var now time.Time
	rb := &pgx.Batch{}
	// Every statement of a batch reaches its rows by key. Once ANALYZE has
	// seen how small ledger_accounts is, the planner prefers sequential scans
	// (and hash joins over them) for the ANY/VALUES lists, and each one then
	// wades through the hot account's row versions: measured, hot-account
	// spends fell from ~3,400/s to ~1,400/s and Postgres' CPU per spend rose
	// 4x after an ANALYZE, which autovacuum runs on its own. Index paths
	// only, for this transaction alone.
	rb.Queue(`SET LOCAL enable_seqscan = off`)
	rb.Queue(`SET LOCAL enable_hashjoin = off`)
	rb.Queue(`SELECT id, user_id::text, balance, head_seq FROM ledger_accounts
		WHERE user_id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, users).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			a := &batchAccount{head: genesisHash}
			var user string
			if err := rows.Scan(&a.id, &user, &a.balance, &a.headSeq); err != nil {
				return fmt.Errorf("ledger: lock accounts: %w", err)
			}
			a.lockedBalance, a.lockedSeq = a.balance, a.headSeq
			accts[user], byID[a.id] = a, user
		}
		return rows.Err()
	})
	// Each lookup is a LATERAL … LIMIT 1 (the key is unique anyway) so that
	// the planner probes the unique index per account instead of hashing a
	// hot account's whole history.
	rb.Queue(`SELECT a.id, t.hash FROM ledger_accounts a
		CROSS JOIN LATERAL (SELECT t.hash FROM ledger_transactions t
			WHERE t.account_id = a.id AND t.seq = a.head_seq LIMIT 1) t
		WHERE a.user_id = ANY($1::uuid[])`, users).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id int64
			var h []byte
			if err := rows.Scan(&id, &h); err != nil {
				return fmt.Errorf("ledger: read chain heads: %w", err)
			}
			if a := accts[byID[id]]; a != nil {
				a.head = h
			}
		}
		return rows.Err()
	})
	rb.Queue(`SELECT `+txColumns+` FROM (VALUES `+values(len(batch), "uuid", "text")+`) r(user_id, reference)
		JOIN ledger_accounts a ON a.user_id = r.user_id
		CROSS JOIN LATERAL (SELECT * FROM ledger_transactions t
			WHERE t.account_id = a.id AND t.reference = r.reference LIMIT 1) t`, refs...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			t, err := scanTransaction(rows, "")
			if err != nil {
				return fmt.Errorf("ledger: look up references: %w", err)
			}
			t.UserID = byID[t.accountID]
			known[refKey{t.accountID, t.Reference}] = t
		}
		return rows.Err()
	})
	rb.Queue(`SELECT clock_timestamp()`).QueryRow(func(row pgx.Row) error { return row.Scan(&now) })
	if err := tx.SendBatch(ctx, rb).Close(); err != nil {
		return nil, err
	}
	now = now.UTC()
	for _, a := range accts {
		if a.headSeq > 0 && len(a.head) != len(genesisHash) || a.headSeq == 0 && !bytes.Equal(a.head, genesisHash) {
			return nil, fmt.Errorf("ledger: account %d: chain head seq %d has no hash", a.id, a.headSeq)
		}
	}

	// Decide each posting in arrival order, as post would under the lock.
	outs := make([]outcome, len(batch))
	var news []*Transaction
	var events []audit.Event
	for i, p := range batch {
		o, a := p.o, accts[p.o.UserID]
		if a == nil {
			outs[i].solo = true
			continue
		}
		key := refKey{a.id, o.Reference}
		if t := known[key]; t != nil {
			if !bytes.Equal(t.fingerprint, p.fp) {
				outs[i].err = fmt.Errorf("%w: reference %q", ErrReferenceConflict, o.Reference)
				events = append(events, failureEvent(p.ctx, o, outs[i].err))
				continue
			}
			outs[i].res = Result{Transaction: *t, Replayed: true, Balance: a.balance}
			events = append(events, successEvent(p.ctx, o, t, true))
			continue
		}
		after := a.balance + o.Amount
		if o.direction == Debit {
			if a.balance < o.Amount {
				outs[i].err = &InsufficientCreditsError{Balance: a.balance, Amount: o.Amount}
				events = append(events, failureEvent(p.ctx, o, outs[i].err))
				continue
			}
			after = a.balance - o.Amount
		} else if a.balance > maxInt64-o.Amount {
			outs[i].err = ErrBalanceOverflow
			events = append(events, failureEvent(p.ctx, o, outs[i].err))
			continue
		}
		t := &Transaction{
			ID: newID(), UserID: o.UserID, Kind: o.kind, Direction: o.direction, Amount: o.Amount,
			Reference: o.Reference, Description: o.Description, Reason: o.reason,
			Actor: o.Origin.Actor, RequestID: o.Origin.RequestID, BalanceAfter: after,
			Seq: a.headSeq + 1, CreatedAt: now,
			accountID: a.id, fingerprint: p.fp, prevHash: a.head,
		}
		t.hash = computeHash(t)
		t.Hash = fmt.Sprintf("%x", t.hash)
		a.balance, a.headSeq, a.head = after, t.Seq, t.hash
		known[key] = t
		news = append(news, t)
		outs[i].res = Result{Transaction: *t, Balance: after}
		events = append(events, successEvent(p.ctx, o, t, false))
	}

	// One round trip for every write.
	wb := &pgx.Batch{}
	if len(news) > 0 {
		var ids, lockedBal, lockedSeq, bals, seqs []int64
		for _, a := range accts {
			if a.headSeq != a.lockedSeq {
				ids, lockedBal, lockedSeq = append(ids, a.id), append(lockedBal, a.lockedBalance), append(lockedSeq, a.lockedSeq)
				bals, seqs = append(bals, a.balance), append(seqs, a.headSeq)
			}
		}
		// Guarded: an account that is not as it was locked aborts the batch.
		var args []any
		for _, a := range accts {
			if a.headSeq != a.lockedSeq {
				args = append(args, a.id, a.lockedBalance, a.lockedSeq, a.balance, a.headSeq)
			}
		}
		n := len(args) / 5
		wb.Queue(`UPDATE ledger_accounts a SET balance = u.balance, head_seq = u.head_seq
			FROM (VALUES `+values(n, "bigint", "bigint", "bigint", "bigint", "bigint")+`) u(id, locked_balance, locked_seq, balance, head_seq)
			WHERE a.id = u.id AND a.balance = u.locked_balance AND a.head_seq = u.locked_seq`, args...).
			Exec(func(ct pgconn.CommandTag) error {
				if ct.RowsAffected() != int64(n) {
					return fmt.Errorf("ledger: %d of %d accounts moved under their locks", int64(n)-ct.RowsAffected(), n)
				}
				return nil
			})
		queueInserts(wb, news)
	}
	if err := audit.QueueAll(wb, l.log, events); err != nil {
		return nil, err
	}
	if wb.Len() > 0 {
		if err := tx.SendBatch(ctx, wb).Close(); err != nil {
			return nil, fmt.Errorf("ledger: write batch of %d transactions: %w", len(news), err)
		}
	}
	return outs, nil
}

// queueInserts queues the INSERTs of ts and of their two entries each (the
// user's first, as post writes them).
func queueInserts(b *pgx.Batch, ts []*Transaction) {
	args := make([]any, 0, 17*len(ts))
	entries := make([]any, 0, 6*len(ts))
	for _, t := range ts {
		args = append(args, t.ID, t.accountID, t.Seq, string(t.Kind), string(t.Direction), t.Amount, t.Reference, t.Description,
			t.Reason, t.BalanceAfter, t.Actor.Type, t.Actor.ID, t.RequestID, t.fingerprint, t.prevHash, t.hash, t.CreatedAt)
		signed, counter := t.Amount, issuanceAccount
		if t.Direction == Debit {
			signed = -signed
		}
		if t.Kind == KindSpend {
			counter = revenueAccount
		}
		entries = append(entries, t.ID, t.accountID, signed, t.ID, counter, -signed)
	}
	b.Queue(`INSERT INTO ledger_transactions (id, account_id, seq, kind, direction, amount, reference, description,
			reason, balance_after, actor_type, actor_id, request_id, fingerprint, prev_hash, hash, created_at)
		VALUES `+values(len(ts), make([]string, 17)...), args...)
	b.Queue(`INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES `+values(2*len(ts), "", "", ""), entries...)
}

// values is the SQL of a VALUES list of rows rows of len(types) parameters,
// numbered from $1 row after row. A non-empty type casts that column's
// parameter in the first row, for a list whose column types the context does
// not give (a FROM item, unlike an INSERT). Multi-row VALUES costs Postgres a
// fraction of unnest over many arrays (a function scan per array).
func values(rows int, types ...string) string {
	var b strings.Builder
	k := 1
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c, typ := range types {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(k))
			if r == 0 && typ != "" {
				b.WriteString("::")
				b.WriteString(typ)
			}
			k++
		}
		b.WriteByte(')')
	}
	return b.String()
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
	return e.FromContext(ctx)
}

// failureEvent is the audit event of a refused posting.
func failureEvent(ctx context.Context, o *op, cause error) audit.Event {
	e := o.auditEvent()
	e.Failed = true
	e.Details = map[string]any{"error": failureCode(cause), "amount": o.Amount, "reference": o.Reference}
	return e.FromContext(ctx)
}
