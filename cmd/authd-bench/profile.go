package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// walMeterName is the WAL meter's key among a run's meters.
const walMeterName = "wal"

// walMeter reads Postgres' WAL position, so a scenario's WAL bytes per
// operation come out of RunLoad like its CPU: it is a meter whose "time" is
// a byte count (one nanosecond per byte). It keeps one idle connection, so
// sampling costs no backend start-up inside the measured part.
type walMeter struct {
	mu   sync.Mutex
	conn *pgx.Conn
}

func newWALMeter(ctx context.Context, dbURL string) (*walMeter, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("wal meter: %w", err)
	}
	return &walMeter{conn: conn}, nil
}

func (m *walMeter) CPU() (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b int64
	err := m.conn.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&b)
	return time.Duration(b), err
}

func (m *walMeter) close() { _ = m.conn.Close(context.Background()) }

// profileAuthd fetches a CPU profile of authd over its AUTHD_PPROF_LISTEN
// listener for the measured part of a scenario (from after the warm-up, for
// about its duration) and writes it to path. The returned function waits
// for it and returns its error.
func profileAuthd(ctx context.Context, pprofURL, path string, warmup, duration time.Duration) func() error {
	secs := max(1, int(duration.Seconds())-1)
	errc := make(chan error, 1)
	t := time.AfterFunc(warmup, func() {
		errc <- fetchProfile(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", pprofURL, secs), path)
	})
	return func() error {
		if !t.Stop() {
			return <-errc
		}
		return nil
	}
}

func fetchProfile(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("cpu profile: %s: %s", resp.Status, b)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pgStatementsSettings load pg_stat_statements into the bench's Postgres
// for a profiling run (-cpuprofile-dir) only: it costs a little on every
// statement.
var pgStatementsSettings = []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=top"}

// resetStatements starts pg_stat_statements' counts afresh.
func (m *walMeter) resetStatements(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.conn.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	return err
}

// writeStatements writes the statements Postgres ran since the last reset,
// by total execution time, with their counts per operation of the scenario
// (ops of them) and per call: what each costs in time, buffers and WAL.
func (m *walMeter) writeStatements(ctx context.Context, path string, ops uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.conn.Query(ctx, `SELECT calls, total_exec_time, rows, shared_blks_hit, shared_blks_read, shared_blks_dirtied,
			wal_records, wal_fpi, wal_bytes::bigint, regexp_replace(query, '\s+', ' ', 'g')
		FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_current_wal_lsn%'
		ORDER BY total_exec_time DESC LIMIT 15`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "pg_stat_statements over the measured part: %d operations; per op: calls, execution ms, WAL bytes; per call: ms, rows, buffers hit/read/dirtied, WAL records/full-page images/bytes\n", ops)
	var totalMS, totalWAL float64
	type line struct {
		calls                               int64
		ms, rows, hit, read, dirt, rec, fpi float64
		wal                                 int64
		query                               string
	}
	var lines []line
	for rows.Next() {
		var l line
		var r, h, rd, d, rec, fpi int64
		if err := rows.Scan(&l.calls, &l.ms, &r, &h, &rd, &d, &rec, &fpi, &l.wal, &l.query); err != nil {
			return err
		}
		c := float64(max(l.calls, 1))
		l.rows, l.hit, l.read, l.dirt, l.rec, l.fpi = float64(r)/c, float64(h)/c, float64(rd)/c, float64(d)/c, float64(rec)/c, float64(fpi)/c
		totalMS += l.ms
		totalWAL += float64(l.wal)
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	perOp := func(x float64) float64 { return x / float64(max(ops, 1)) }
	fmt.Fprintf(&b, "top statements: %.3f ms of execution and %.0f WAL bytes per op\n\n", perOp(totalMS), perOp(totalWAL))
	for _, l := range lines {
		c := float64(max(l.calls, 1))
		fmt.Fprintf(&b, "%5.1f%% of exec | per op: %.2f calls, %.3f ms, %.0f WAL B | per call: %.3f ms, %.1f rows, buffers %.1f/%.1f/%.1f, WAL %.1f rec/%.2f fpi/%.0f B\n  %.300s\n",
			100*l.ms/max(totalMS, 1e-9), perOp(float64(l.calls)), perOp(l.ms), perOp(float64(l.wal)),
			l.ms/c, l.rows, l.hit, l.read, l.dirt, l.rec, l.fpi, float64(l.wal)/c, l.query)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
