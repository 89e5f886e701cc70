package storage

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultWriteHold is how long WriteHealth reports the database unwritable
// after a statement failed for want of space. Long enough for a balancer's
// health checks (a few seconds apart) to see it; short enough that a replica
// taken out of rotation, and so given no traffic, is soon ready again, goes
// back in and finds out whether the disk has room again.
const DefaultWriteHold = 10 * time.Second

// WriteHealth remembers the last statement of a pool that failed because
// the database could not store data (disk full, SQLSTATE 53100). A full
// disk fails only the statements that need a new page or file; /readyz's
// own probe writes nothing, so readiness learns of it from traffic. Open
// installs one on every pool as a pgx tracer; PoolWriteHealth returns it.
//
// The zero value is ready to use. It is safe for concurrent use.
type WriteHealth struct {
	// Hold is how long a failure keeps the database reported unwritable;
	// zero means DefaultWriteHold.
	Hold time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	failed time.Time
	outage Outage
}

// Observe records err when it says the database cannot take writes.
//
// A later successful write does not clear it: on a full disk, writes that
// fit in an existing page still succeed while those that must extend a
// table fail, so a success proves little and would make readiness flap
// from one request to the next. The hold alone ends it.
func (h *WriteHealth) Observe(err error) {
	o, ok := Classify(err)
	if !ok || !blocksWrites(o) {
		return
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.After(h.failed) {
		h.failed, h.outage = now, o
	}
}

// Unwritable reports whether a statement failed for want of space within
// the hold, with that outage and how long the hold has still to run. A nil
// WriteHealth (a pool Open did not make) reports nothing.
func (h *WriteHealth) Unwritable() (Outage, time.Duration, bool) {
	if h == nil {
		return Outage{}, 0, false
	}
	h.mu.Lock()
	failed, o := h.failed, h.outage
	h.mu.Unlock()
	if failed.IsZero() {
		return Outage{}, 0, false
	}
	left := failed.Add(h.hold()).Sub(h.now())
	if left <= 0 {
		return Outage{}, 0, false
	}
	return o, left, true
}

func (h *WriteHealth) hold() time.Duration {
	if h.Hold > 0 {
		return h.Hold
	}
	return DefaultWriteHold
}

func (h *WriteHealth) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// The pgx tracer hooks: every statement's outcome passes through Observe,
// whether it ran alone (Exec, Query, QueryRow, and COMMIT, which pgx sends
// through Exec), in a batch or as a COPY.

func (h *WriteHealth) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (h *WriteHealth) TraceQueryEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceQueryEndData) {
	h.Observe(d.Err)
}

func (h *WriteHealth) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (h *WriteHealth) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	h.Observe(d.Err)
}

func (h *WriteHealth) TraceBatchEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchEndData) {
	h.Observe(d.Err)
}

func (h *WriteHealth) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return ctx
}

func (h *WriteHealth) TraceCopyFromEnd(_ context.Context, _ *pgx.Conn, d pgx.TraceCopyFromEndData) {
	h.Observe(d.Err)
}

var (
	_ pgx.QueryTracer    = (*WriteHealth)(nil)
	_ pgx.BatchTracer    = (*WriteHealth)(nil)
	_ pgx.CopyFromTracer = (*WriteHealth)(nil)
)

// PoolWriteHealth returns the WriteHealth that Open installed on pool, or
// nil for a pool Open did not make.
func PoolWriteHealth(pool *pgxpool.Pool) *WriteHealth {
	return poolTracer[*WriteHealth](pool)
}

// poolTracer finds the tracer of type T among those Open composed.
func poolTracer[T pgx.QueryTracer](pool *pgxpool.Pool) T {
	var zero T
	mt, ok := pool.Config().ConnConfig.Tracer.(*multitracer.Tracer)
	if !ok {
		return zero
	}
	for _, t := range mt.QueryTracers {
		if t, ok := t.(T); ok {
			return t
		}
	}
	return zero
}
