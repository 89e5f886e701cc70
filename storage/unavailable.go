package storage

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Outage says why the database could not serve a request that was itself
// fine: the HTTP layers answer 503 with Reason and a Retry-After of
// RetryAfter, never 500 and never an error that blames the client.
type Outage struct {
	// Reason is a short phrase for clients and logs ("the database is
	// read-only"); it never holds connection strings or SQL.
	Reason     string
	RetryAfter time.Duration
}

// RetryAfterSeconds is RetryAfter in whole seconds, at least 1, for the
// Retry-After header.
func (o Outage) RetryAfterSeconds() int {
	return max(1, int((o.RetryAfter+time.Second-1)/time.Second))
}

// The outages Classify knows, one per cause an operator would act on.
var (
	outageTimeout     = Outage{"the database did not answer in time", time.Second}
	outageUnreachable = Outage{"the database is unreachable", 2 * time.Second}
	outageConnLost    = Outage{"the connection to the database was lost", time.Second}
	outageShutdown    = Outage{"the database is shutting down or ended the connection", 2 * time.Second}
	outageCrashed     = Outage{"the database restarted after a crash", 5 * time.Second}
	outageStarting    = Outage{"the database is starting up or recovering", 5 * time.Second}
	outageStatement   = Outage{"a database statement timed out", time.Second}
	outageLock        = Outage{"a database lock was not granted in time", time.Second}
	outageReadOnly    = Outage{"the database is read-only", 30 * time.Second}
	outageDiskFull    = Outage{"the database disk is full", 30 * time.Second}
	outageResources   = Outage{"the database is out of resources", 10 * time.Second}
	outageTooMany     = Outage{"the database has too many connections", 2 * time.Second}
	outageSystem      = Outage{"the database reported an I/O or system error", 10 * time.Second}
	outageContention  = Outage{"the database is too busy with conflicting changes", time.Second}
)

// pgOutages maps SQLSTATE codes of failures that are the database's, not
// the request's. Classes 08 (connection) and 58 (system) are matched whole.
var pgOutages = map[string]Outage{
	"57P01": outageShutdown,  // admin_shutdown, also pg_terminate_backend
	"57P02": outageCrashed,   // crash_shutdown
	"57P03": outageStarting,  // cannot_connect_now
	"57P04": outageConnLost,  // database_dropped
	"57P05": outageConnLost,  // idle_session_timeout
	"57014": outageStatement, // query_canceled: statement_timeout
	"55P03": outageLock,      // lock_not_available: lock_timeout
	"25006": outageReadOnly,  // read_only_sql_transaction
	"53100": outageDiskFull,  // disk_full
	"53200": outageResources, // out_of_memory
	"53000": outageResources, // insufficient_resources
	"53400": outageResources, // configuration_limit_exceeded
	"53300": outageTooMany,   // too_many_connections
}

// blocksWrites reports whether o means the database cannot store what
// clients write, which /readyz must report even though its own probe,
// writing nothing, succeeds (see WriteHealth). Read-only is not here: the
// probe sees it directly and also sees it end.
func blocksWrites(o Outage) bool {
	return o == outageDiskFull
}

// Classify reports whether err is a database failure rather than a fault of
// the request, and which. Errors are matched by value and SQLSTATE, never
// by message. A context deadline counts (the database, a lock or the pool
// was too slow for the request's deadline); a cancelled context does not
// (the client went away).
func Classify(err error) (Outage, bool) {
	if err == nil || errors.Is(err, context.Canceled) {
		return Outage{}, false
	}
	// A serialization failure or deadlock alone is a race the caller may
	// answer itself (fosite turns it into "retry"); only InTx giving up on
	// one is an outage.
	if errors.Is(err, ErrContention) {
		return outageContention, true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if o, ok := pgOutages[pe.Code]; ok {
			return o, true
		}
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08":
			return outageConnLost, true
		case len(pe.Code) == 5 && pe.Code[:2] == "58":
			return outageSystem, true
		}
		return Outage{}, false
	}
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ce):
		return outageUnreachable, true
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return outageTimeout, true
	case isConnLoss(err):
		return outageConnLost, true
	}
	return Outage{}, false
}

// isConnLoss reports an error of a connection that broke mid-conversation:
// the server vanished without an error message.
func isConnLoss(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne) || pgconn.SafeToRetry(err)
}

// IsUnavailable reports whether err is a database failure that HTTP layers
// answer with 503 (see Classify).
func IsUnavailable(err error) bool {
	_, ok := Classify(err)
	return ok
}
