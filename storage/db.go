// Package storage owns authd's connection to PostgreSQL: the pgx pool, the
// transaction helper every domain package uses, the migration runner, the
// fosite storage adapter and the private cluster used by `authd dev` and tests.
//
// Domain packages keep their own SQL; they reach the database through the
// small Querier interface, which both the pool and a transaction satisfy, so
// one transaction can span a change and the outbox row it causes.
package storage

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier is what SQL helpers need: satisfied by *pgxpool.Pool and pgx.Tx.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ Querier = (*pgxpool.Pool)(nil)
	_ Querier = (pgx.Tx)(nil)
)

// PoolConfig tunes the pool. Zero values pick defaults sized to the machine.
type PoolConfig struct {
	MaxConns int32
	// ConnectTimeout bounds how long a request waits for a new connection, so a
	// database outage turns into fast errors rather than piled-up goroutines.
	ConnectTimeout time.Duration
	// StatementTimeout and LockTimeout are set on every connection
	// (Postgres statement_timeout and lock_timeout; zero leaves the server's
	// setting): a statement stuck behind a lock or a slow plan fails with
	// 57014 or 55P03 instead of holding its connection and its request.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// AcquireTimeout bounds the wait for a free pool connection (zero: only
	// the caller's context bounds it), so a saturated pool sheds load with
	// fast errors instead of queueing requests for seconds.
	AcquireTimeout time.Duration
	// WriteHealth records the pool's statements that fail because the
	// database cannot take writes; nil: Open makes one. PoolWriteHealth
	// returns it, for /readyz.
	WriteHealth *WriteHealth
}

// Open parses url and returns a connected pool. It does not wait for the
// database to be reachable: /readyz reports that, and the pool reconnects by
// itself when the database comes back.
func Open(ctx context.Context, url string, cfg PoolConfig) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("storage: parse database url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	} else {
		pc.MaxConns = int32(4 * runtime.GOMAXPROCS(0))
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 3 * time.Second
	}
	pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	for name, d := range map[string]time.Duration{"statement_timeout": cfg.StatementTimeout, "lock_timeout": cfg.LockTimeout} {
		if d > 0 {
			pc.ConnConfig.RuntimeParams[name] = strconv.FormatInt(max(1, d.Milliseconds()), 10) + "ms"
		}
	}
	if cfg.WriteHealth == nil {
		cfg.WriteHealth = &WriteHealth{}
	}
	// Tracers compose: a tracer already configured keeps running.
	tracers := []pgx.QueryTracer{cfg.WriteHealth}
	if pc.ConnConfig.Tracer != nil {
		tracers = append(tracers, pc.ConnConfig.Tracer)
	}
	if cfg.AcquireTimeout > 0 {
		// Last: its TraceAcquireEnd looks for the context of its own type
		// that its TraceAcquireStart returned, which a later tracer's
		// TraceAcquireStart would wrap.
		tracers = append(tracers, &acquireLimiter{timeout: cfg.AcquireTimeout})
	}
	pc.ConnConfig.Tracer = multitracer.New(tracers...)
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.HealthCheckPeriod = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("storage: open pool: %w", err)
	}
	return pool, nil
}

// AcquireTimeouts returns how many pool acquisitions gave up after
// PoolConfig.AcquireTimeout (0 for a pool without one).
func AcquireTimeouts(pool *pgxpool.Pool) uint64 {
	if l := poolTracer[*acquireLimiter](pool); l != nil {
		return l.timeouts.Load()
	}
	return 0
}

// errAcquireTimeout is the cause of an acquisition's context when
// AcquireTimeout elapsed; callers see context.DeadlineExceeded, which
// Classify reports as an outage.
var errAcquireTimeout = errors.New("storage: no free database connection in time")

// acquireLimiter bounds pool acquisitions in time. pgxpool has no acquire
// timeout, but it hands the context its AcquireTracer returns to the wait
// for a connection (and only to it: the query runs on the caller's context).
type acquireLimiter struct {
	timeout  time.Duration
	timeouts atomic.Uint64
}

// acquireCtx carries its cancel func to TraceAcquireEnd, which gets the
// context TraceAcquireStart returned.
type acquireCtx struct {
	context.Context
	cancel context.CancelFunc
}

func (l *acquireLimiter) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	c, cancel := context.WithTimeoutCause(ctx, l.timeout, errAcquireTimeout)
	return &acquireCtx{Context: c, cancel: cancel}
}

func (l *acquireLimiter) TraceAcquireEnd(ctx context.Context, _ *pgxpool.Pool, d pgxpool.TraceAcquireEndData) {
	a, ok := ctx.(*acquireCtx)
	if !ok {
		return
	}
	if d.Err != nil && errors.Is(context.Cause(a.Context), errAcquireTimeout) {
		l.timeouts.Add(1)
	}
	a.cancel()
}

// The query hooks of pgx.QueryTracer, which ConnConfig.Tracer must be; they
// do nothing.
func (l *acquireLimiter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (l *acquireLimiter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally on the named constraint ("" matches any).
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return false
	}
	return constraint == "" || pe.ConstraintName == constraint
}

// IsRetryable reports whether err is a serialization failure or deadlock,
// which Postgres guarantees left no effect and may be retried.
func IsRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}
