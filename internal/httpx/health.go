package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authd/authd/storage"
)

// Healthz answers 200 while the process serves HTTP.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// Readyz answers 200 when the database can serve requests, else 503 with
// the reason and a Retry-After: the pool has no connection free within
// acquireTimeout (saturated), the database is unreachable, starting or
// shutting down, not migrated to the binary's version, read-only, or it
// failed a statement of this process for want of disk space within the last
// few seconds (storage.WriteHealth). Every call asks afresh, bounded by a
// short timeout, so it recovers by itself when the database does.
func Readyz(pool *pgxpool.Pool, acquireTimeout time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if why, retry := notReady(ctx, pool, acquireTimeout); why != "" {
			w.Header().Set("Retry-After", strconv.Itoa(retry))
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": why})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	}
}

// notReady returns why the database cannot serve requests and a
// Retry-After in seconds, or "" when it can.
func notReady(ctx context.Context, pool *pgxpool.Pool, acquireTimeout time.Duration) (string, int) {
	// The pool first: a request would wait at most acquireTimeout too.
	actx := ctx
	if acquireTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, acquireTimeout)
		defer cancel()
	}
	conn, err := pool.Acquire(actx)
	if err != nil {
		if st := pool.Stat(); ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && st.AcquiredConns() >= st.MaxConns() {
			return fmt.Sprintf("database pool saturated: all %d connections in use", st.MaxConns()), 1
		}
		return reason(err)
	}
	conn.Release()
	if err := storage.SchemaStatus(ctx, pool); err != nil {
		return reason(err)
	}
	// A write that touches no row still fails on a read-only transaction
	// or a standby, and costs no WAL.
	if _, err := pool.Exec(ctx, `UPDATE schema_migrations SET dirty = dirty WHERE false`); err != nil {
		return reason(err)
	}
	// A full disk fails only writes that need a new page, which the probe
	// above does not; the pool's own statements tell.
	if o, left, ok := storage.PoolWriteHealth(pool).Unwritable(); ok {
		// Retry-After: when this answer may change, not the requests' own.
		return o.Reason, max(1, int((left+time.Second-1)/time.Second))
	}
	return "", 0
}

// reason keeps /readyz informative without echoing connection strings.
func reason(err error) (string, int) {
	if o, ok := storage.Classify(err); ok {
		return o.Reason, o.RetryAfterSeconds()
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg, 5
}

// MetricsHandler serves the registry in the Prometheus text format.
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}

// PoolCollector exports pgx pool statistics.
func PoolCollector(pool *pgxpool.Pool) prometheus.Collector {
	return poolCollector{pool}
}

type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolTotal    = prometheus.NewDesc("authd_db_pool_connections", "Open connections by state.", []string{"state"}, nil)
	poolMax      = prometheus.NewDesc("authd_db_pool_max_connections", "Configured pool size.", nil, nil)
	poolWait     = prometheus.NewDesc("authd_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
	poolAcquires = prometheus.NewDesc("authd_db_pool_acquires_total", "Connections acquired.", nil, nil)
	poolTimeouts = prometheus.NewDesc("authd_db_pool_acquire_timeouts_total", "Requests that found no free connection within AUTHD_DB_ACQUIRE_TIMEOUT.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolTotal
	ch <- poolMax
	ch <- poolWait
	ch <- poolAcquires
	ch <- poolTimeouts
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.AcquiredConns()), "in_use")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolTimeouts, prometheus.CounterValue, float64(storage.AcquireTimeouts(c.pool)))
}
