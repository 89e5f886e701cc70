package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// Tight database bounds for the infrastructure scenarios, so a fault trips
// them in about a second. Lock waits end first, then statements and pool
// waits, then the request's deadline.
const (
	InfraLockTimeout      = 500 * time.Millisecond
	InfraStatementTimeout = time.Second
	InfraAcquireTimeout   = 500 * time.Millisecond
	InfraRequestTimeout   = 2 * time.Second
)

// infraServerEnv is the environment of a server with the tight bounds.
func infraServerEnv(maxConns int) []string {
	return []string{
		"AUTHD_DB_LOCK_TIMEOUT=" + InfraLockTimeout.String(), "AUTHD_DB_STATEMENT_TIMEOUT=" + InfraStatementTimeout.String(),
		"AUTHD_DB_ACQUIRE_TIMEOUT=" + InfraAcquireTimeout.String(), "AUTHD_REQUEST_TIMEOUT=" + InfraRequestTimeout.String(),
		fmt.Sprintf("AUTHD_DB_MAX_CONNS=%d", maxConns),
	}
}

// infraRig is a server, its fixture and a service token for spends.
type infraRig struct {
	env     Env
	key     string
	srv     *Server
	fix     *Fixture
	spender string
	c       *http.Client
	rec     *Recorder
	conns   []*pgx.Conn // the scenario's own database sessions, closed with the rig
}

func newInfraRig(ctx context.Context, env Env, rep *Report, extra []string) *infraRig {
	key := NewSecretsKey()
	srv, err := StartServer(ctx, env, ServerConfig{Name: "A", Key: key, Extra: extra})
	if err != nil {
		rep.Problem("%v", err)
		return nil
	}
	fix, err := NewFixture(ctx, env, key, srv.URL, 2, 1_000_000)
	if err != nil {
		srv.Kill()
		rep.Problem("fixture: %v", err)
		return nil
	}
	c := NewClient(20*time.Second, false)
	spender, err := fix.ServiceToken(ctx, c, srv.URL)
	if err != nil {
		srv.Kill()
		rep.Problem("%v", err)
		return nil
	}
	return &infraRig{env: env, key: key, srv: srv, fix: fix, spender: spender, c: c, rec: &Recorder{}}
}

// runInfra runs one scenario, body, on a fresh rig started with extra
// settings, and times it.
func runInfra(ctx context.Context, env Env, name string, extra []string, body func(g *infraRig, rep *Report)) *Report {
	rep := &Report{Name: name}
	start := time.Now()
	defer func() { rep.Duration = time.Since(start) }()
	g := newInfraRig(ctx, env, rep, extra)
	if g == nil {
		return rep
	}
	defer g.close(ctx)
	body(g, rep)
	return rep
}

// close stops the server and ends the scenario's database sessions.
func (g *infraRig) close(ctx context.Context) {
	g.srv.Kill()
	for _, c := range g.conns {
		_ = c.Close(context.WithoutCancel(ctx)) // a session the scenario ended is closed already
	}
}

// connect opens a database session of the scenario's own (to lock, watch or
// alter), closed with the rig; nil after recording why it failed.
func (g *infraRig) connect(ctx context.Context, rep *Report) *pgx.Conn {
	c, err := pgx.Connect(ctx, g.env.DatabaseURL)
	if err != nil {
		rep.Problem("connect: %v", err)
		return nil
	}
	g.conns = append(g.conns, c)
	return c
}

// spendBefore makes n spends that must succeed before the fault.
func (g *infraRig) spendBefore(ctx context.Context, rep *Report, n int) {
	for range n {
		if a, _ := g.spend(ctx, "before-"+RandomID()); !a.OK() {
			rep.Problem("spend before the fault: %s", a)
		}
	}
}

// spend debits 1 credit of user 0 under ref and records it.
func (g *infraRig) spend(ctx context.Context, ref string) (Answer, http.Header) {
	start := time.Now()
	body, _ := json.Marshal(map[string]any{"amount": 1, "reference": ref, "description": "reliability"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.srv.URL+"/api/v1/users/"+g.fix.Users[0].ID+"/credits/spend", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.spender)
	a, h := doWithHeaders(g.c, req)
	g.rec.Record("spend", g.srv.Name, start, a, ref, g.fix.Users[0].ID)
	return a, h
}

// token asks for a client_credentials token (one INSERT into oauth2_access).
func (g *infraRig) token(ctx context.Context) (Answer, http.Header) {
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.srv.URL+"/oauth2/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"introspect"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(g.fix.SvcID), url.QueryEscape(g.fix.SvcSecret))
	a, h := doWithHeaders(g.c, req)
	g.rec.Record("token", g.srv.Name, start, a, "", "")
	return a, h
}

// readyz returns /readyz's status and reason.
func (g *infraRig) readyz(ctx context.Context) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.srv.URL+"/readyz", nil)
	a, _ := doWithHeaders(g.c, req)
	var body struct{ Reason string }
	_ = json.Unmarshal(a.Body, &body)
	return a.Status, body.Reason
}

// waitReadyz polls /readyz until its status is want and its reason
// contains reason.
func (g *infraRig) waitReadyz(ctx context.Context, rep *Report, want int, reason string, timeout time.Duration) bool {
	var st int
	var why string
	ok := WaitFor(ctx, timeout, func() bool {
		st, why = g.readyz(ctx)
		return st == want && strings.Contains(why, reason)
	})
	if !ok {
		rep.Problem("/readyz did not answer %d %q within %s (last: %d %q)", want, reason, timeout, st, why)
	}
	return ok
}

// checkLedger checks every acknowledged spend is in the ledger exactly once
// and every failed one, retried with its reference, ends up there once.
func (g *infraRig) checkLedger(ctx context.Context, rep *Report, ambiguous func(Outcome) bool) {
	outs := g.rec.All()
	rep.Count(outs)
	VerifyLedger(ctx, g.env, g.key, rep)
	SpendCheck{
		Ambiguous: ambiguous,
		Retry: func(ctx context.Context, o Outcome) Answer {
			return Spend(ctx, g.c, g.srv.URL, g.spender, o.User, o.Ref, 1)
		},
	}.Run(ctx, g.env.DatabaseURL, outs, rep)
}

func doWithHeaders(c *http.Client, req *http.Request) (Answer, http.Header) {
	resp, err := c.Do(req)
	if err != nil {
		return Answer{Err: err}, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Answer{Status: resp.StatusCode, Err: err}, resp.Header
	}
	return Answer{Status: resp.StatusCode, Body: b}, resp.Header
}

// mustUnavailable records a problem unless a is the 503 authd promises for
// a database failure: Retry-After, and the OAuth error temporarily_unavailable
// (oauth) or a problem+json document, both naming the reason (when given).
func mustUnavailable(rep *Report, what string, a Answer, h http.Header, oauth bool, reason string) {
	if a.Status != http.StatusServiceUnavailable {
		rep.Problem("%s: %s, want 503", what, a)
		return
	}
	if h.Get("Retry-After") == "" {
		rep.Problem("%s: 503 without Retry-After", what)
	}
	var body map[string]any
	if err := json.Unmarshal(a.Body, &body); err != nil {
		rep.Problem("%s: 503 body is not JSON: %s", what, a)
		return
	}
	text := ""
	if oauth {
		if body["error"] != "temporarily_unavailable" {
			rep.Problem("%s: OAuth error %v, want temporarily_unavailable", what, body["error"])
		}
		text, _ = body["error_description"].(string)
	} else {
		if !strings.HasPrefix(h.Get("Content-Type"), "application/problem+json") {
			rep.Problem("%s: 503 of type %q, want application/problem+json", what, h.Get("Content-Type"))
		}
		text, _ = body["detail"].(string)
	}
	if reason != "" && !strings.Contains(text, reason) {
		rep.Problem("%s: 503 does not name the reason %q: %s", what, reason, text)
	}
}

// dbName is the database of a postgres URL.
func dbName(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// terminateOthers ends every other session on conn's database and returns
// how many it ended.
func terminateOthers(ctx context.Context, conn *pgx.Conn) (int, error) {
	var n int
	err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	return n, err
}

// LockedTable holds an exclusive lock on the ledger's accounts and the
// access-token table, as a long migration or a stuck transaction would.
// Promises checked: every request touching them fails fast (within the
// request deadline) with 503 and Retry-After, as temporarily_unavailable at
// the token endpoint and problem+json at the API, even with more requests
// than pool connections; /readyz answers within the deadline; once the lock
// goes, requests succeed at once; no acknowledged spend is lost and every
// refused one can be retried.
func LockedTable(ctx context.Context, env Env) *Report {
	return runInfra(ctx, env, "locked table", infraServerEnv(3), func(g *infraRig, rep *Report) {
		g.spendBefore(ctx, rep, 1)
		locker := g.connect(ctx, rep)
		if locker == nil {
			return
		}
		if _, err := locker.Exec(ctx, `BEGIN; LOCK TABLE ledger_accounts, oauth2_access IN ACCESS EXCLUSIVE MODE`); err != nil {
			rep.Problem("lock: %v", err)
			return
		}
		rep.Faults++

		// Four times as many requests as connections, at once.
		// Slack for scheduling on a busy machine; the deadline itself is 2 s.
		bound := InfraRequestTimeout + 1500*time.Millisecond
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				var a Answer
				var h http.Header
				oauth := i%2 == 0
				if oauth {
					a, h = g.token(ctx)
				} else {
					a, h = g.spend(ctx, "locked-"+RandomID())
				}
				d := time.Since(t0)
				mu.Lock()
				defer mu.Unlock()
				mustUnavailable(rep, fmt.Sprintf("request %d during the lock", i), a, h, oauth, "")
				if d > bound {
					rep.Problem("request %d took %s during the lock (bound %s)", i, d.Round(time.Millisecond), bound)
				}
			}()
		}
		t0 := time.Now()
		st, why := g.readyz(ctx)
		if d := time.Since(t0); d > bound {
			rep.Problem("/readyz took %s during the lock (bound %s)", d.Round(time.Millisecond), bound)
		}
		rep.Note("/readyz during the lock: %d %s", st, why)
		wg.Wait()

		if _, err := locker.Exec(ctx, `ROLLBACK`); err != nil {
			rep.Problem("unlock: %v", err)
			return
		}
		released := time.Now()
		a, h := g.spend(ctx, "after-"+RandomID())
		if !a.OK() {
			rep.Problem("first spend after the lock went: %s (Retry-After %q)", a, h.Get("Retry-After"))
		}
		if a, _ := g.token(ctx); !a.OK() {
			rep.Problem("first token after the lock went: %s", a)
		}
		rep.Note("recovered %s after the lock went", time.Since(released).Round(time.Millisecond))
		// A spend whose request deadline passed while its batch was committing
		// may commit after the 503 (the ledger finishes what it started): the
		// answer is "unknown, retry with the same reference", and the retry
		// below must then replay it.
		g.checkLedger(ctx, rep, func(o Outcome) bool {
			return o.Status == http.StatusServiceUnavailable && strings.Contains(o.Body, "did not answer in time")
		})
	})
}

// blockedRequest starts do, which must block on a lock held by another
// session, waits (asking through watcher, a session outside any
// transaction, so each look at pg_stat_activity is fresh) until its backend
// waits on the lock, and returns that backend's pid and a channel that
// delivers do's answer.
func blockedRequest(ctx context.Context, watcher *pgx.Conn, do func() (Answer, http.Header)) (int, <-chan [2]any, error) {
	ch := make(chan [2]any, 1)
	go func() {
		a, h := do()
		ch <- [2]any{a, h}
	}()
	var pid int
	ok := WaitFor(ctx, 10*time.Second, func() bool {
		err := watcher.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1`).Scan(&pid)
		return err == nil
	})
	if !ok {
		return 0, ch, fmt.Errorf("no request waited on the lock within 10s")
	}
	return pid, ch, nil
}

// KilledBackend terminates (pg_terminate_backend) the database sessions of
// a spend and of a token request while they wait on a lock. Promises
// checked: each answers 503 with Retry-After (problem+json, and
// temporarily_unavailable at the token endpoint), never 500; authd serves
// again at once and /readyz stays 200 (one session ended on purpose leaves
// a healthy database; CrashedBackend covers a backend that dies by signal,
// which resets them all); no acknowledged spend is lost and the killed one
// can be retried exactly once.
func KilledBackend(ctx context.Context, env Env) *Report {
	// Lock waits long enough to find the waiting backend and kill it.
	return runInfra(ctx, env, "killed database backend", []string{"AUTHD_DB_LOCK_TIMEOUT=8s", "AUTHD_DB_STATEMENT_TIMEOUT=8s", "AUTHD_REQUEST_TIMEOUT=10s"}, func(g *infraRig, rep *Report) {
		g.spendBefore(ctx, rep, 1)
		locker := g.connect(ctx, rep)
		if locker == nil {
			return
		}
		watcher := g.connect(ctx, rep)
		if watcher == nil {
			return
		}
		for _, k := range []struct {
			table string
			oauth bool
		}{{"ledger_accounts", false}, {"oauth2_access", true}} {
			if _, err := locker.Exec(ctx, `BEGIN; LOCK TABLE `+k.table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
				rep.Problem("lock: %v", err)
				return
			}
			do := func() (Answer, http.Header) { return g.spend(ctx, "killed-"+RandomID()) }
			if k.oauth {
				do = func() (Answer, http.Header) { return g.token(ctx) }
			}
			pid, answer, err := blockedRequest(ctx, watcher, do)
			if err != nil {
				rep.Problem("%s: %v", k.table, err)
				_, _ = locker.Exec(ctx, `ROLLBACK`)
				continue
			}
			if _, err := watcher.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
				rep.Problem("terminate: %v", err)
			}
			rep.Faults++
			select {
			case r := <-answer:
				mustUnavailable(rep, "request whose backend was killed on "+k.table, r[0].(Answer), r[1].(http.Header), k.oauth, "")
			case <-time.After(10 * time.Second):
				rep.Problem("request whose backend was killed on %s did not answer within 10s", k.table)
			}
			if _, err := locker.Exec(ctx, `ROLLBACK`); err != nil {
				rep.Problem("unlock: %v", err)
			}
		}
		if a, _ := g.spend(ctx, "after-"+RandomID()); !a.OK() {
			rep.Problem("spend after the kill: %s", a)
		}
		if a, _ := g.token(ctx); !a.OK() {
			rep.Problem("token after the kill: %s", a)
		}
		if st, why := g.readyz(ctx); st != http.StatusOK {
			rep.Problem("/readyz after the kill: %d %s", st, why)
		}
		// The killed spend may have been rolled back only: it is not ambiguous.
		g.checkLedger(ctx, rep, nil)
	})
}

// ReadOnlyDatabase makes the database read-only (ALTER DATABASE … SET
// default_transaction_read_only, the state a failover to a standby or a
// full disk also leaves) and ends authd's sessions so new ones see it.
// Promises checked: /readyz turns 503 naming it; spends and tokens get 503
// with Retry-After naming it (never 500, never an invalid OAuth error);
// after the database is writable again authd serves without a restart; no
// acknowledged spend is lost and every refused one can be retried.
func ReadOnlyDatabase(ctx context.Context, env Env) *Report {
	return runInfra(ctx, env, "read-only database", infraServerEnv(4), func(g *infraRig, rep *Report) {
		g.spendBefore(ctx, rep, 3)
		admin := g.connect(ctx, rep)
		if admin == nil {
			return
		}
		db := pgx.Identifier{dbName(env.DatabaseURL)}.Sanitize()
		setReadOnly := func(on bool) {
			stmt := `ALTER DATABASE ` + db + ` SET default_transaction_read_only = on`
			if !on {
				stmt = `ALTER DATABASE ` + db + ` RESET default_transaction_read_only`
			}
			if _, err := admin.Exec(ctx, stmt); err != nil {
				rep.Problem("%s: %v", stmt, err)
			}
			if _, err := terminateOthers(ctx, admin); err != nil {
				rep.Problem("terminate sessions: %v", err)
			}
		}
		setReadOnly(true)
		rep.Faults++
		const reason = "the database is read-only"
		if g.waitReadyz(ctx, rep, http.StatusServiceUnavailable, reason, 10*time.Second) {
			for i := range 3 {
				a, h := g.spend(ctx, "readonly-"+RandomID())
				mustUnavailable(rep, fmt.Sprintf("spend %d on a read-only database", i), a, h, false, reason)
				a, h = g.token(ctx)
				mustUnavailable(rep, fmt.Sprintf("token %d on a read-only database", i), a, h, true, reason)
			}
		}
		setReadOnly(false)
		g.waitReadyz(ctx, rep, http.StatusOK, "", 10*time.Second)
		if a, _ := g.spend(ctx, "after-"+RandomID()); !a.OK() {
			rep.Problem("spend after the database is writable again: %s", a)
		}
		if a, _ := g.token(ctx); !a.OK() {
			rep.Problem("token after the database is writable again: %s", a)
		}
		// No request ran while sessions were ended: nothing is ambiguous.
		g.checkLedger(ctx, rep, nil)
	})
}

// AdminShutdown stops Postgres with pg_ctl stop -m fast (every session gets
// 57P01 admin_shutdown) while a spend waits on a lock, then starts it again.
// Promises checked: the spend in flight answers 503 with Retry-After (or,
// when it won the race with its own termination, commits and is
// acknowledged), and every request during the shutdown answers 503 with
// Retry-After, fast; /readyz is 503 while the
// database is down and 200 again after it returns, without restarting
// authd; no acknowledged spend is lost and the interrupted one can be
// retried exactly once.
func AdminShutdown(ctx context.Context, env Env, cluster *storage.Cluster) *Report {
	return runInfra(ctx, env, "database admin shutdown", []string{"AUTHD_DB_LOCK_TIMEOUT=8s", "AUTHD_DB_STATEMENT_TIMEOUT=8s", "AUTHD_REQUEST_TIMEOUT=10s"}, func(g *infraRig, rep *Report) {
		g.spendBefore(ctx, rep, 3)
		locker := g.connect(ctx, rep)
		if locker == nil {
			return
		}
		if _, err := locker.Exec(ctx, `BEGIN; LOCK TABLE ledger_accounts IN ACCESS EXCLUSIVE MODE`); err != nil {
			rep.Problem("lock: %v", err)
			return
		}
		watcher := g.connect(ctx, rep)
		if watcher == nil {
			return
		}
		_, answer, err := blockedRequest(ctx, watcher, func() (Answer, http.Header) { return g.spend(ctx, "inflight-"+RandomID()) })
		watcher.Close(ctx)
		if err != nil {
			rep.Problem("%v", err)
			return
		}
		if err := cluster.Stop(ctx); err != nil {
			rep.Problem("stop postgres: %v", err)
			return
		}
		rep.Faults++
		locker.Close(context.WithoutCancel(ctx))
		select {
		case r := <-answer:
			// A fast shutdown signals every backend; when the lock holder's
			// ends first, the waiting spend can take the lock and commit before
			// its own signal lands. Then it is acknowledged (2xx) and the ledger
			// check below finds it exactly once; otherwise it must be a clean 503.
			if a := r[0].(Answer); a.OK() {
				rep.Note("the spend in flight committed before its backend was ended (the lock holder went first): %d", a.Status)
			} else {
				mustUnavailable(rep, "spend in flight at the shutdown", a, r[1].(http.Header), false, "")
			}
		case <-time.After(10 * time.Second):
			rep.Problem("the spend in flight did not answer within 10s of the shutdown")
		}
		g.waitReadyz(ctx, rep, http.StatusServiceUnavailable, "", 5*time.Second)
		bound := ConnectTimeout + OutageSlack
		for i := range 2 {
			t0 := time.Now()
			a, h := g.spend(ctx, "down-"+RandomID())
			mustUnavailable(rep, fmt.Sprintf("spend %d while the database is down", i), a, h, false, "")
			a, h = g.token(ctx)
			mustUnavailable(rep, fmt.Sprintf("token %d while the database is down", i), a, h, true, "")
			if d := time.Since(t0); d > 2*bound {
				rep.Problem("two requests took %s while the database was down (bound %s each)", d.Round(time.Millisecond), bound)
			}
		}
		if err := cluster.Restart(ctx); err != nil {
			rep.Problem("restart postgres: %v", err)
			return
		}
		g.waitReadyz(ctx, rep, http.StatusOK, "", 30*time.Second)
		if a, _ := g.spend(ctx, "after-"+RandomID()); !a.OK() {
			rep.Problem("spend after the restart: %s", a)
		}
		g.checkLedger(ctx, rep, nil)
	})
}

// DiskFull makes every INSERT into the ledger's transactions and the
// access-token table fail with SQLSTATE 53100 disk_full, from a trigger.
// That is the faithful injection: when Postgres cannot extend a table or
// index file for want of space it reports "could not extend file … No
// space left on device" as 53100 and rolls the transaction back, which is
// all authd sees; the trigger raises the same error at the same point (the
// INSERT, before commit) without filling the test machine's disk. (A WAL
// write that finds no space is different: Postgres PANICs and restarts,
// the crashed-backend case.)
// Promises checked: spends and tokens answer 503 with Retry-After naming
// it (problem+json, and temporarily_unavailable at the token endpoint),
// never 500; /readyz turns 503 naming it although its own probe, which
// writes nothing, succeeds; once space is back (the triggers dropped),
// authd serves at once and /readyz returns to 200 within the hold, without
// a restart; no acknowledged spend is lost and every refused one can be
// retried.
func DiskFull(ctx context.Context, env Env) *Report {
	return runInfra(ctx, env, "full database disk", infraServerEnv(4), func(g *infraRig, rep *Report) {
		g.spendBefore(ctx, rep, 3)
		admin := g.connect(ctx, rep)
		if admin == nil {
			return
		}
		if _, err := admin.Exec(ctx, `
			CREATE FUNCTION reliability_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				RAISE EXCEPTION 'could not extend file "base/%": No space left on device', TG_TABLE_NAME
					USING ERRCODE = 'disk_full', HINT = 'Check free disk space.';
			END $$;
			CREATE TRIGGER reliability_disk_full BEFORE INSERT ON ledger_transactions
				FOR EACH ROW EXECUTE FUNCTION reliability_disk_full();
			CREATE TRIGGER reliability_disk_full BEFORE INSERT ON oauth2_access
				FOR EACH ROW EXECUTE FUNCTION reliability_disk_full()`); err != nil {
			rep.Problem("fill the disk: %v", err)
			return
		}
		rep.Faults++
		const reason = "the database disk is full"
		for i := range 3 {
			a, h := g.spend(ctx, "full-"+RandomID())
			mustUnavailable(rep, fmt.Sprintf("spend %d on a full disk", i), a, h, false, reason)
			a, h = g.token(ctx)
			mustUnavailable(rep, fmt.Sprintf("token %d on a full disk", i), a, h, true, reason)
		}
		// The failures above are well within the hold: no waiting, /readyz
		// must say so at once.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.srv.URL+"/readyz", nil)
		a, h := doWithHeaders(g.c, req)
		var body struct{ Reason string }
		_ = json.Unmarshal(a.Body, &body)
		if a.Status != http.StatusServiceUnavailable || body.Reason != reason || h.Get("Retry-After") == "" {
			rep.Problem("/readyz after writes failed on a full disk: %s (Retry-After %q), want 503 %q with Retry-After", a, h.Get("Retry-After"), reason)
		}

		if _, err := admin.Exec(ctx, `DROP TRIGGER reliability_disk_full ON ledger_transactions;
			DROP TRIGGER reliability_disk_full ON oauth2_access; DROP FUNCTION reliability_disk_full()`); err != nil {
			rep.Problem("free the disk: %v", err)
			return
		}
		// Requests do not wait for /readyz: the balancer may still send some.
		if a, _ := g.spend(ctx, "after-"+RandomID()); !a.OK() {
			rep.Problem("spend once the disk has room: %s", a)
		}
		if a, _ := g.token(ctx); !a.OK() {
			rep.Problem("token once the disk has room: %s", a)
		}
		g.waitReadyz(ctx, rep, http.StatusOK, "", storage.DefaultWriteHold+5*time.Second)
		// The failed spends rolled back whole: nothing is ambiguous.
		g.checkLedger(ctx, rep, nil)
	})
}
