package reliability

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// PeerOptions sizes the mail-and-webhook fault scenario.
type PeerOptions struct {
	Registrations int           // per phase (8)
	Fault         time.Duration // how long each fault lasts at least (3s)
	Recovery      time.Duration // bound on delivery after the peers recover (45s)
}

// peerFault is one phase: what the webhook receiver and SMTP server do.
type peerFault struct {
	name       string
	hook, smtp Mode
}

// PeerFaults registers users while the webhook receiver answers 500 or
// hangs and the SMTP server refuses, hangs, or hangs up mid-DATA. Promises
// checked: registration latency is not slowed (its median stays within 2×
// + 25ms of the healthy phase's, and no registration waits on a peer);
// deliveries are retried with backoff (rows show several attempts and an
// error) and all complete once the peers recover.
func PeerFaults(ctx context.Context, env Env, o PeerOptions) *Report {
	rep := &Report{Name: "mail/webhook faults"}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	o.Registrations, o.Fault, o.Recovery = max(o.Registrations, 8), cmp0(o.Fault, 3*time.Second), cmp0(o.Recovery, 45*time.Second)

	st, err := StartStage(ctx, env, StageOptions{Peers: true})
	defer st.Close()
	if err != nil {
		rep.Problem("%v", err)
		return rep
	}
	srv, peers := st.Servers[0], st.Peers

	rec := &Recorder{}
	c := NewClient(30*time.Second, true)
	register := func(phase string) []time.Duration {
		var lat []time.Duration
		for range o.Registrations {
			email := fmt.Sprintf("peer-%s@example.test", RandomID())
			t0 := time.Now()
			a := Register(ctx, c, srv.URL, email, "reliable "+RandomID())
			x := rec.Record("register", phase, t0, a, email, "")
			lat = append(lat, x.End.Sub(x.Start))
			if a.Status != 201 {
				rep.Problem("registration during %s: %s", phase, a)
			}
		}
		slices.Sort(lat)
		return lat
	}

	healthy := register("healthy")
	if !peers.WaitDelivered(ctx, env.DatabaseURL, o.Recovery, rep) {
		return rep
	}
	baseMedian, baseMax := healthy[len(healthy)/2], healthy[len(healthy)-1]
	rep.Note("healthy peers: registration median %s, max %s", baseMedian.Round(time.Millisecond), baseMax.Round(time.Millisecond))

	faults := []peerFault{
		{"webhook 500 + SMTP refusing (421)", Fail, Fail},
		{"webhook hanging + SMTP hanging", Hang, Hang},
		{"webhook 500 + SMTP closing mid-DATA", Fail, Drop},
	}
	for _, f := range faults {
		peers.SetModes(f.hook, f.smtp)
		rep.Faults++
		hook0, smtp0 := peers.Hook.Attempts(), peers.SMTP.Attempts()
		phaseStart := time.Now()
		lat := register(f.name)
		med, worst := lat[len(lat)/2], lat[len(lat)-1]
		rep.Note("%s: registration median %s, max %s", f.name, med.Round(time.Millisecond), worst.Round(time.Millisecond))
		if med > 2*baseMedian+25*time.Millisecond {
			rep.Problem("%s slowed registration: median %s vs %s healthy", f.name, med, baseMedian)
		}
		if worst > baseMax+time.Second {
			rep.Problem("%s: a registration took %s (healthy max %s): the request path waits on a peer", f.name, worst, baseMax)
		}
		// The worker must have tried (and, for failing peers, retried).
		tried := WaitFor(ctx, 20*time.Second, func() bool {
			return peers.Hook.Attempts() > hook0 && peers.SMTP.Attempts() > smtp0
		})
		if !tried {
			rep.Problem("%s: the outbox worker never tried the peers", f.name)
		}
		if f.hook != Hang {
			retried := WaitFor(ctx, 20*time.Second, func() bool { return maxAttempts(ctx, env.DatabaseURL, phaseStart) >= 2 })
			if !retried {
				rep.Problem("%s: no outbox row was retried", f.name)
			}
		}
		if rest := o.Fault - time.Since(phaseStart); rest > 0 {
			time.Sleep(rest) // the fault's length, not synchronisation
		}
		peers.SetModes(Healthy, Healthy)
		t0 := time.Now()
		if !peers.WaitDelivered(ctx, env.DatabaseURL, o.Recovery, rep) {
			return rep
		}
		rep.Note("%s: everything delivered %s after the peers recovered; most attempts on one row: %d", f.name, time.Since(t0).Round(100*time.Millisecond), maxAttempts(ctx, env.DatabaseURL, phaseStart))
	}
	rep.Count(rec.All())
	rep.Ledger = "n/a"
	CheckUsers(ctx, env.DatabaseURL, "peer-%", rep)
	return rep
}

// maxAttempts is the largest attempts count of outbox rows created since.
func maxAttempts(ctx context.Context, dbURL string, since time.Time) int {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0
	}
	defer conn.Close(ctx)
	var n int
	_ = conn.QueryRow(ctx, `SELECT coalesce(max(attempts), 0) FROM outbox WHERE created_at >= $1`, since).Scan(&n)
	return n
}
