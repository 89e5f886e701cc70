package reliability

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
)

// RollingOptions sizes the rolling-restart scenario.
type RollingOptions struct {
	Replicas int           // 3
	Rounds   int           // times every replica is restarted in turn (1)
	Between  time.Duration // load between restarts (1s)
	Workers  int           // goroutines per request kind (2)
}

// Rolling restarts every replica in turn with SIGTERM under load. Clients
// move to the next replica only when a connection is refused (the process
// is not listening); anything else — a reset, a 5xx, a timeout — is a
// request that was accepted and failed. Promises checked: no such failure;
// every replica exits 0 within its grace period; the ledger verifies and
// every 2xx spend is in it exactly once.
func Rolling(ctx context.Context, env Env, o RollingOptions) *Report {
	rep := &Report{Name: "rolling restart (SIGTERM)"}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	o.Replicas, o.Rounds, o.Between, o.Workers = max(o.Replicas, 2), max(o.Rounds, 1), cmp0(o.Between, time.Second), max(o.Workers, 2)

	st, err := StartStage(ctx, env, StageOptions{Replicas: o.Replicas, Fixture: true, Users: 4, Credits: 1_000_000, Spender: true})
	defer st.Close()
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	srvs, fix, spender, key := st.Servers, st.Fix, st.Spender, st.Key

	rec := &Recorder{}
	var moved atomic.Int64
	c := NewClient(30*time.Second, false)
	reqCtx := context.WithoutCancel(ctx)
	// send tries replicas from n onwards until one accepts the connection.
	send := func(n int64, op, ref, user string, fn func(base string) Answer) {
		for i := range int64(len(srvs)) {
			s := srvs[(n+i)%int64(len(srvs))]
			t0 := time.Now()
			a := fn(s.URL)
			if a.Err != nil && strings.Contains(a.Err.Error(), "connection refused") {
				moved.Add(1)
				continue
			}
			rec.Record(op, s.Name, t0, a, ref, user)
			return
		}
		rec.Add(Outcome{Op: op, Err: "every replica refused the connection", Start: time.Now(), End: time.Now()})
	}
	var seq atomic.Int64
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		Loop(loadCtx, 2*o.Workers, func(_ context.Context, w int) {
			n := seq.Add(1)
			if w%2 == 0 {
				send(n, "token", "", "", func(base string) Answer {
					_, a := ClientCredentials(reqCtx, c, base, fix.SvcID, fix.SvcSecret, "introspect")
					return a
				})
				return
			}
			u := fix.Users[int(n)%len(fix.Users)]
			ref := "roll-" + RandomID()
			send(n, "spend", ref, u.ID, func(base string) Answer { return Spend(reqCtx, c, base, spender, u.ID, ref, 1) })
		})
	}()
	defer func() { stopLoad(); <-loadDone }()

	for range o.Rounds {
		for _, s := range srvs {
			time.Sleep(o.Between) // load phase length, not synchronisation
			t0 := time.Now()
			if err := s.Term(30 * time.Second); err != nil {
				rep.Problem("replica %s on SIGTERM: %v", s.Name, err)
			}
			rep.Faults++
			stopped := time.Since(t0)
			if err := s.Restart(ctx); err != nil {
				rep.Problem("restart %s: %v", s.Name, err)
				return rep
			}
			rep.Note("replica %s drained and exited in %s, back in %s", s.Name, stopped.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		}
	}
	time.Sleep(o.Between)
	stopLoad()
	<-loadDone

	outs := rec.All()
	rep.Count(outs)
	failed := 0
	for _, x := range outs {
		if x.Status/100 != 2 {
			failed++
			if failed <= 10 {
				rep.Problem("%s accepted by %s failed: %s %s", x.Op, x.Server, describe(x), x.Body)
			}
		}
	}
	if failed > 10 {
		rep.Problem("… %d accepted requests failed in all", failed)
	}
	rep.Note("%d connection attempts refused by a stopped replica and moved to the next", moved.Load())
	VerifyLedger(ctx, env, key, rep)
	SpendCheck{}.Run(ctx, env.DatabaseURL, outs, rep)
	return rep
}
