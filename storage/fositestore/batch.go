package fositestore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authd/authd/storage"
)

// Access tokens created outside a transaction (client_credentials, whose one
// write is this INSERT) go through an insertBatcher: concurrent requests
// share one multi-row INSERT, so Postgres parses, plans, starts and commits
// once per batch instead of once per token, and the client row's FK lock is
// taken once per batch. A request that finds no batch running runs its own
// at once (no added delay when alone); the others queue and the next leader
// takes them all. Every caller returns only after the statement holding its
// row has committed (an autocommit INSERT), or with that row's own error.
const (
	// maxBatchesRunning bounds the INSERTs in flight at once: with one, a
	// batch would wait for the previous commit's WAL flush; a few keep the
	// disk busy while the next batch gathers.
	maxBatchesRunning = 2
	// maxBatchRows keeps a statement's parameters (12 per row) well under
	// Postgres' 65535.
	maxBatchRows = 64
	// batchTimeout bounds one batch: the leader runs it for everyone in it,
	// so it is not cut short by the leader's own request being cancelled.
	batchTimeout = 30 * time.Second
)

type insertBatcher struct {
	s     *Store
	table string

	mu      sync.Mutex
	queue   []*batchItem
	running int
}

type batchItem struct {
	args []any
	// ch gets the row's result and, at most once before it, the request to
	// lead a batch (signal.lead); room for both, so no send ever blocks.
	ch chan batchSignal
	// promoted: asked to lead already (guarded by the batcher's mu).
	promoted bool
}

type batchSignal struct {
	lead bool
	err  error
}

func newInsertBatcher(s *Store, table string) *insertBatcher {
	return &insertBatcher{s: s, table: table}
}

// insert adds one row (insertColumns' values) and returns once it is
// committed, or with its error.
func (b *insertBatcher) insert(ctx context.Context, args []any) error {
	it := &batchItem{args: args, ch: make(chan batchSignal, 2)}
	b.mu.Lock()
	b.queue = append(b.queue, it)
	lead := b.running < maxBatchesRunning
	if lead {
		b.running++
	}
	b.mu.Unlock()
	for {
		if lead {
			b.runBatch(ctx)
		}
		sig := <-it.ch
		if !sig.lead {
			return sig.err
		}
		lead = true
	}
}

// runBatch inserts what is queued (up to maxBatchRows), answers every row
// of it, then hands the lead to the first row still queued, if any.
func (b *insertBatcher) runBatch(ctx context.Context) {
	b.mu.Lock()
	n := min(len(b.queue), maxBatchRows)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	errs := b.s.insertRows(ctx, b.table, batch)
	cancel()
	for i, it := range batch {
		it.ch <- batchSignal{err: errs[i]}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, next := range b.queue {
		if !next.promoted {
			// It leads the next batch (which holds its own row, unless
			// another leader takes it first); this slot passes to it.
			next.promoted = true
			next.ch <- batchSignal{lead: true}
			return
		}
	}
	b.running--
}

// insertRows inserts the rows of batch in one statement. The statement is
// all or nothing, so when Postgres refuses it each row is tried alone: one
// bad row (a duplicate signature, a client deleted meanwhile) fails only
// its own request.
func (s *Store) insertRows(ctx context.Context, table string, batch []*batchItem) []error {
	errs := make([]error, len(batch))
	switch len(batch) {
	case 0:
		return errs
	case 1:
		errs[0] = s.insertRow(ctx, table, batch[0].args)
		return errs
	}
	cols := len(batch[0].args) // insertColumns' values, in every row
	args := make([]any, 0, cols*len(batch))
	for _, it := range batch {
		args = append(args, it.args...)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+table+` (`+insertColumns+`) VALUES `+storage.Values(len(batch), cols), args...)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
	case errors.As(err, &pgErr) && !storage.IsUnavailable(err):
		// Postgres refused a row: find which, one by one. (Not for an
		// outage such as a lock or statement timeout: each row alone
		// would wait as long again.)
		for i, it := range batch {
			errs[i] = s.insertRow(ctx, table, it.args)
		}
	default:
		// No answer (connection lost, database down, timeout): the same
		// for every row, and no point asking 64 more times.
		err = mapErr("create "+table, err)
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}
