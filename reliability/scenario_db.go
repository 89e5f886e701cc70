package reliability

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/authd/authd/storage"
)

// ConnectTimeout is authd's bound on opening a database connection
// (storage.PoolConfig's default, which `authd serve` uses). A request
// during an outage must be answered within it plus OutageSlack.
const (
	ConnectTimeout = 3 * time.Second
	OutageSlack    = time.Second
)

// DBOutageOptions sizes the database-outage scenario.
type DBOutageOptions struct {
	Cluster *storage.Cluster // the scenario's own cluster, stopped and started
	Outages int              // how many times Postgres goes down (1)
	Down    time.Duration    // how long it stays down each time (3s)
	Between time.Duration    // load before, between and after outages (1.5s)
	Workers int              // goroutines per request kind (1)
}

// DBOutage stops Postgres under steady load (tokens, logins, spends) and
// starts it again. Promises checked: during the outage requests get a fast
// 503 (never a hang, a 500 or a client error); goroutines do not pile up;
// afterwards authd serves again without a restart; the ledger verifies and
// every spend is where its answer says (SpendCheck).
func DBOutage(ctx context.Context, env Env, o DBOutageOptions) *Report {
	rep := &Report{Name: "database outage"}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	o.Outages, o.Down, o.Between, o.Workers = max(o.Outages, 1), cmp0(o.Down, 3*time.Second), cmp0(o.Between, 1500*time.Millisecond), max(o.Workers, 1)

	st, err := StartStage(ctx, env, StageOptions{Fixture: true, Users: 4, Credits: 1_000_000, Spender: true})
	defer st.Close()
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	srv, fix, spender := st.Servers[0], st.Fix, st.Spender
	mc := &http.Client{Timeout: 2 * time.Second}

	rec := &Recorder{}
	mix := &Mix{Fix: fix, Rec: rec, Base: SingleServer(srv), Spender: func() string { return spender }, Workers: o.Workers}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); mix.Run(loadCtx, 30*time.Second) }()
	defer func() { stopLoad(); <-loadDone }()

	// Warm up, then take the goroutine baseline under load.
	time.Sleep(o.Between) // load phase length, not synchronisation
	baseline, err := Metric(ctx, mc, srv.URL, "go_goroutines")
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	sampleCtx, stopSample := context.WithCancel(ctx)
	var peak Sampler
	go peak.Run(sampleCtx, srv.URL, "go_goroutines", 100*time.Millisecond)
	defer stopSample()

	type window struct{ stopping, down, up time.Time }
	var windows []window
	for range o.Outages {
		w := window{stopping: time.Now()}
		if err := o.Cluster.Stop(ctx); err != nil {
			rep.Problem("stop postgres: %v", err)
			return rep
		}
		rep.Faults++
		w.down = time.Now()
		time.Sleep(o.Down) // the outage's length, not synchronisation
		restart := time.Now()
		if err := o.Cluster.Restart(ctx); err != nil {
			rep.Problem("restart postgres: %v", err)
			return rep
		}
		w.up = time.Now()
		windows = append(windows, window{stopping: w.stopping, down: w.down, up: restart})
		// Recovered: every kind of request succeeds again, without restarting authd.
		kinds := []string{"token", "login", "spend"}
		recovered := WaitFor(ctx, 30*time.Second, func() bool {
			for _, k := range kinds {
				if !slices.ContainsFunc(rec.All(), func(x Outcome) bool { return x.Op == k && x.Start.After(w.up) && x.Status/100 == 2 }) {
					return false
				}
			}
			return true
		})
		if !recovered {
			rep.Problem("authd did not serve tokens, logins and spends again within 30s of the database coming back")
		} else {
			rep.Note("recovered %s after Postgres accepted connections again", time.Since(w.up).Round(10*time.Millisecond))
		}
		time.Sleep(o.Between) // load between outages
	}
	stopLoad()
	<-loadDone
	stopSample()

	outs := rec.All()
	rep.Count(outs)
	inOutage := func(x Outcome) bool {
		for _, w := range windows {
			if !x.Start.Before(w.down) && !x.End.After(w.up) {
				return true
			}
		}
		return false
	}
	overlapsStop := func(x Outcome) bool {
		for _, w := range windows {
			if x.Start.Before(w.down) && x.End.After(w.stopping) {
				return true
			}
		}
		return false
	}
	var during, slowest time.Duration
	var n503 int
	bad := map[string]int{}
	for _, x := range outs {
		d := x.End.Sub(x.Start)
		if inOutage(x) {
			during = max(during, d)
			if x.Status == http.StatusServiceUnavailable {
				n503++
			} else if x.Status/100 != 2 {
				bad[fmt.Sprintf("%s during outage: %s", x.Op, describe(x))]++
			}
			if d > ConnectTimeout+OutageSlack {
				rep.Problem("%s took %s during the outage (bound: connect timeout %s + %s)", x.Op, d.Round(time.Millisecond), ConnectTimeout, OutageSlack)
			}
			continue
		}
		slowest = max(slowest, d)
		switch {
		case x.Status/100 == 2, x.Status == http.StatusServiceUnavailable:
		case x.Op == "spend" && x.Status == http.StatusConflict:
		default:
			bad[fmt.Sprintf("%s: %s", x.Op, describe(x))]++
		}
	}
	for k, n := range bad {
		rep.Problem("%d× %s", n, k)
	}
	if n503 == 0 {
		rep.Problem("no request got 503 during the outage: the fault did not bite")
	}
	rep.Note("during the outage: %d answers 503, slowest %s (bound %s); outside it slowest %s", n503, during.Round(time.Millisecond), ConnectTimeout+OutageSlack, slowest.Round(time.Millisecond))

	pk, samples := peak.Peak()
	rep.Note("go_goroutines: %.0f under load before, peak %.0f over %d samples", baseline, pk, samples)
	if pk > baseline+64 {
		rep.Problem("goroutines piled up: %.0f before the outage, peak %.0f", baseline, pk)
	}
	settled := WaitFor(ctx, 15*time.Second, func() bool {
		v, err := Metric(ctx, mc, srv.URL, "go_goroutines")
		return err == nil && v <= baseline+8
	})
	if !settled {
		v, _ := Metric(ctx, mc, srv.URL, "go_goroutines")
		rep.Problem("goroutines did not settle: %.0f under load before, %.0f idle after", baseline, v)
	}

	st.CheckSpends(ctx, env, mc, outs, overlapsStop, rep)
	return rep
}

func cmp0(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
