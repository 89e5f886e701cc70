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
	"time"

	"github.com/jackc/pgx/v5"
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
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.HealthCheckPeriod = 10 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("storage: open pool: %w", err)
	}
	return pool, nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally on the named constraint ("" matches any).
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return false
	}
	return constraint == "" || pe.ConstraintName == constraint
}

// IsCheckViolation reports whether err is a CHECK-constraint violation,
// optionally on the named constraint ("" matches any).
func IsCheckViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23514" {
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

// IsUnavailable reports whether err means the database could not be reached
// (as opposed to a query that failed). HTTP layers answer 503 for these.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08: connection exception; 57P01..03: admin shutdown / cannot connect now.
		return len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03")
	}
	return pgconn.SafeToRetry(err)
}
