package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
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

// Readyz answers 200 when the database is reachable and migrated to the
// binary's version, else 503 with the reason. It recovers by itself when the
// database comes back: every call asks afresh, bounded by a short timeout.
func Readyz(pool *pgxpool.Pool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if err := storage.SchemaStatus(ctx, pool); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": reason(err)})
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	}
}

// reason keeps /readyz informative without echoing connection strings.
func reason(err error) string {
	if storage.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) {
		return "database unreachable"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
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
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolTotal
	ch <- poolMax
	ch <- poolWait
	ch <- poolAcquires
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.AcquiredConns()), "in_use")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
}
