package reliability

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// CrashOptions sizes the crash scenario.
type CrashOptions struct {
	Kills   int           // SIGKILLs (2)
	Between time.Duration // load before, between and after kills (1.5s)
	Workers int           // goroutines per request kind (1)
	// Redelivery bounds the wait for the outbox after the last restart. A
	// row claimed by a killed worker becomes due again when its lease (the
	// worker's 1-minute visibility timeout) runs out.
	Redelivery time.Duration
}

// Crash kills authd with SIGKILL in the middle of spends and registrations
// and starts it again. Promises checked: the ledger verifies; every 2xx
// spend is durable exactly once and every failed one is resolved by a retry
// with its reference; every registration that got 201 exists whole (role,
// ledger account, user.registered event, verification mail) and no user is
// half-created; every outbox row queued is still delivered after the
// restart (at least once, signature valid).
func Crash(ctx context.Context, env Env, o CrashOptions) *Report {
	rep := &Report{Name: "kill -9 mid-write"}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	o.Kills, o.Between, o.Workers = max(o.Kills, 1), cmp0(o.Between, 1500*time.Millisecond), max(o.Workers, 1)
	o.Redelivery = cmp0(o.Redelivery, 100*time.Second)

	st, err := StartStage(ctx, env, StageOptions{Peers: true, Fixture: true, Users: 4, Credits: 1_000_000, Spender: true})
	defer st.Close()
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	srv, fix, spender, peers := st.Servers[0], st.Fix, st.Spender, st.Peers
	mc := &http.Client{Timeout: 5 * time.Second}

	rec := &Recorder{}
	mix := &Mix{Fix: fix, Rec: rec, Base: SingleServer(srv), Spender: func() string { return spender }, Workers: o.Workers, NoLogins: true}
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		var wg sync.WaitGroup
		wg.Go(func() { mix.Run(loadCtx, 30*time.Second) })
		wg.Go(func() {
			registerLoop(loadCtx, rec, func(int64) (string, string) { return srv.Name, srv.URL }, "crash", o.Workers)
		})
		wg.Wait()
	}()
	defer func() { stopLoad(); <-loadDone }()

	var kills []time.Time
	for range o.Kills {
		time.Sleep(o.Between) // load phase length, not synchronisation
		kills = append(kills, time.Now())
		srv.Kill()
		rep.Faults++
		if err := srv.Restart(ctx); err != nil {
			rep.Problem("restart after kill -9: %v", err)
			return rep
		}
	}
	time.Sleep(o.Between)
	stopLoad()
	<-loadDone

	outs := rec.All()
	rep.Count(outs)
	// A request in flight at a kill may fail either way; nothing else may.
	atKill := func(x Outcome) bool {
		for _, k := range kills {
			if x.Start.Before(k.Add(time.Second)) && x.End.After(k) {
				return true
			}
		}
		return false
	}
	var refused, cut int
	var registered []string
	for _, x := range outs {
		switch {
		case x.Status/100 == 2:
			if x.Op == "register" {
				registered = append(registered, x.Ref)
			}
		case x.Status == 0 && errors.Is(errFromString(x.Err), syscall.ECONNREFUSED):
			refused++ // authd was down: never accepted
		case x.Status == 0 && atKill(x):
			cut++
		default:
			rep.Problem("%s failed outside a kill: %s %s", x.Op, describe(x), x.Body)
		}
	}
	rep.Note("%d requests refused while authd was down, %d cut off in flight by kill -9", refused, cut)

	st.CheckSpends(ctx, env, mc, outs, atKill, rep)

	// Every 201 exists, and every user (whatever its answer) is whole.
	if conn, err := pgx.Connect(ctx, env.DatabaseURL); err == nil {
		for _, email := range registered {
			var n int
			_ = conn.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = $1`, strings.ToLower(email)).Scan(&n)
			if n != 1 {
				rep.Problem("registration of %s answered 201 but the user is missing", email)
			}
		}
		conn.Close(ctx)
	}
	users := CheckUsers(ctx, env.DatabaseURL, "crash-%", rep)
	rep.Note("%d registrations answered 201; %d users exist, all whole", len(registered), users)

	if c, err := Outbox(ctx, env.DatabaseURL, ""); err == nil {
		rep.Note("outbox right after the last restart: %d rows, %d pending", c.Queued, c.Pending)
	}
	t0 := time.Now()
	if peers.WaitDelivered(ctx, env.DatabaseURL, o.Redelivery, rep) {
		rep.Note("outbox fully delivered %s after the load stopped", time.Since(t0).Round(100*time.Millisecond))
	}
	return rep
}

// errFromString recognises the transport errors a Recorder keeps as text.
func errFromString(s string) error {
	if strings.Contains(s, "connection refused") {
		return syscall.ECONNREFUSED
	}
	return errors.New(s)
}
