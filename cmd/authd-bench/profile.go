package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
