package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
)

// The soak (-soak D): steady token issuance (client_credentials) and
// refresh rotation at a fixed rate for D, with no settling in between:
// the purge and autovacuum alone must keep the token tables bounded. Every
// minute it prints the tables' and indexes' sizes, live and dead rows, and
// that minute's latency.
//
// Time is compressed so that a plateau can show within minutes: access
// tokens live 2 minutes, refresh tokens 5, and the purge runs every minute
// (production: 15 minutes, 30 days, 10 minutes). A table then holds about
// rate × (TTL + purge interval) rows once it is steady, as it would hold
// rate × 30 days of refresh tokens in production.
type soakConfig struct {
	Duration time.Duration
	Rate     float64 // operations per second, half issuance and half refresh
	Workers  int
	Every    time.Duration // report interval
}

var soakEnv = []string{"AUTHD_ACCESS_TOKEN_TTL=2m", "AUTHD_REFRESH_TOKEN_TTL=5m", "AUTHD_PURGE_INTERVAL=1m"}

// soakTables are the tables whose sizes the soak follows.
var soakTables = []string{"oauth2_access", "oauth2_refresh", "oauth2_code", "outbox"}

type soakSample struct {
	At       time.Duration
	Ops      uint64
	Errors   uint64
	P50, P99 time.Duration
	Sizes    map[string]tableSize
}

type tableSize struct {
	Heap, Indexes int64 // bytes
	Live, Dead    int64
	AutoVacuums   int64
}

func runSoak(ctx context.Context, o *options, cfg soakConfig, dataDir string, stdout, stderr io.Writer) error {
	wc := o.worldConfig(dataDir, stderr)
	wc.ExtraEnv = soakEnv
	w, err := startWorld(ctx, wc)
	if err != nil {
		return err
	}
	defer w.stop()
	f := prepare(ctx, w, cfg.Workers, stderr)
	if r := f.missing(needSvc, needChains); r != "" {
		return fmt.Errorf("soak: %s", r)
	}
	conn, err := pgx.Connect(ctx, w.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	env := newScenarioEnv(f, newClient(cfg.Workers, nil))
	defer env.client.CloseIdleConnections()
	var (
		mu     sync.Mutex
		hist   = &Histogram{}
		errs   atomic.Uint64
		first  atomic.Pointer[string]
		wg     sync.WaitGroup
		start  = time.Now()
		end    = start.Add(cfg.Duration)
		period = time.Duration(float64(cfg.Workers) / cfg.Rate * float64(time.Second))
	)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	fmt.Fprintf(stderr, "soak: %s at %.0f ops/s (half client_credentials, half refresh), %d workers, %s\n",
		cfg.Duration, cfg.Rate, cfg.Workers, strings.Join(soakEnv, " "))
	for i := range cfg.Workers {
		op := ccOp(env)
		if i%2 == 1 {
			op = refreshOp(env, i, false)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Open-loop pacing: worker i's k-th op is due at start + offset
			// + k·period, whatever the latency of the previous one.
			next := start.Add(period * time.Duration(i) / time.Duration(cfg.Workers))
			for {
				if d := time.Until(next); d > 0 {
					select {
					case <-runCtx.Done():
						return
					case <-time.After(d):
					}
				}
				if runCtx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := op(runCtx)
				if runCtx.Err() != nil {
					return
				}
				mu.Lock()
				hist.Record(time.Since(t0))
				mu.Unlock()
				if err != nil {
					errs.Add(1)
					msg := err.Error()
					first.CompareAndSwap(nil, &msg)
				}
				next = next.Add(period)
			}
		}()
	}

	var samples []soakSample
	tick := time.NewTicker(cfg.Every)
	defer tick.Stop()
	fmt.Fprintln(stdout, "soak: every "+cfg.Every.String()+" (sizes in MB: heap+indexes; live/dead rows; av = autovacuum runs so far)")
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-runCtx.Done():
			break loop
		case <-tick.C:
		}
		mu.Lock()
		h := hist
		hist = &Histogram{}
		mu.Unlock()
		s := soakSample{At: time.Since(start).Round(time.Second), Ops: h.Count(), Errors: errs.Swap(0),
			P50: h.Quantile(0.5), P99: h.Quantile(0.99)}
		if s.Sizes, err = tableSizes(ctx, conn, soakTables); err != nil {
			return err
		}
		samples = append(samples, s)
		fmt.Fprintln(stdout, s.line())
	}
	cancel()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	writeSoakVerdict(stdout, samples, cfg)
	if p := first.Load(); p != nil {
		fmt.Fprintf(stdout, "first error: %s\n", *p)
	}
	return nil
}

func tableSizes(ctx context.Context, conn *pgx.Conn, tables []string) (map[string]tableSize, error) {
	rows, err := conn.Query(ctx, `SELECT s.relname, pg_relation_size(relid) + pg_relation_size(relid, 'fsm') + pg_relation_size(relid, 'vm')
			+ COALESCE(pg_total_relation_size(reltoastrelid), 0), pg_indexes_size(relid), n_live_tup, n_dead_tup, autovacuum_count
		FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relname = ANY($1)`, tables)
	if err != nil {
		return nil, err
	}
	out := map[string]tableSize{}
	for rows.Next() {
		var name string
		var t tableSize
		if err := rows.Scan(&name, &t.Heap, &t.Indexes, &t.Live, &t.Dead, &t.AutoVacuums); err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, rows.Err()
}

func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func (s soakSample) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  %6s  %7d ops  %d errors  p50 %s ms  p99 %s ms |", s.At, s.Ops, s.Errors, ms(msOf(s.P50)), ms(msOf(s.P99)))
	for _, t := range soakTables {
		z := s.Sizes[t]
		fmt.Fprintf(&b, " %s %s+%s MB %d/%d av%d |", strings.TrimPrefix(t, "oauth2_"), mb(z.Heap), mb(z.Indexes), z.Live, z.Dead, z.AutoVacuums)
	}
	return b.String()
}

// writeSoakVerdict compares the last third of the run with the middle
// third: a table has plateaued when its largest size late is within 20% of
// its largest size before (once the first TTL and purge have passed), and
// p99 is flat when the late minutes' median p99 is within 50% of the
// middle's.
func writeSoakVerdict(w io.Writer, samples []soakSample, cfg soakConfig) {
	n := len(samples)
	if n < 6 {
		fmt.Fprintf(w, "soak: %d samples, too few for a verdict (run at least 6 report intervals)\n", n)
		return
	}
	mid, late := samples[n/3:2*n/3], samples[2*n/3:]
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tmax MB middle third\tmax MB last third\tgrowth\t\t")
	for _, t := range soakTables {
		a, b := maxSize(mid, t), maxSize(late, t)
		verdict := "plateau"
		if a > 0 && float64(b) > 1.2*float64(a) && b-a > 1<<20 {
			verdict = "GROWING"
		}
		growth := "—"
		if a > 0 {
			growth = formatPercent(float64(b)/float64(a) - 1)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", t, mb(a), mb(b), growth, verdict)
	}
	tw.Flush()
	pm, pl := medianP99(mid), medianP99(late)
	verdict := "flat"
	if pl > pm*3/2 {
		verdict = "RISING"
	}
	var ops, errors uint64
	for _, s := range samples {
		ops += s.Ops
		errors += s.Errors
	}
	fmt.Fprintf(w, "p99 (median of the report intervals): middle third %s ms, last third %s ms: %s; %d ops (%.0f/s), %d errors\n",
		ms(msOf(pm)), ms(msOf(pl)), verdict, ops, float64(ops)/cfg.Duration.Seconds(), errors)
}

func maxSize(ss []soakSample, table string) int64 {
	var m int64
	for _, s := range ss {
		z := s.Sizes[table]
		m = max(m, z.Heap+z.Indexes)
	}
	return m
}

func medianP99(ss []soakSample) time.Duration {
	ps := make([]time.Duration, len(ss))
	for i, s := range ss {
		ps[i] = s.P99
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps[len(ps)/2]
}
