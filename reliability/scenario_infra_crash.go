package reliability

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CrashedBackend SIGKILLs the Postgres backend of a spend, then of a token
// request, while each waits on a lock, as the kernel's OOM killer or a
// segfault would. Unlike pg_terminate_backend (KilledBackend), which ends
// one session of a healthy database, a backend dying by signal may have
// left shared memory corrupt: the postmaster ends every other session
// (57P02), refuses connections (57P03) until all its children have exited,
// then runs crash recovery and accepts connections again.
//
// That reset window lasts milliseconds, too short to observe on purpose.
// The scenario holds it open: it stops (SIGSTOP) the lock holder's backend,
// a session of its own, before the kill, and the postmaster waits for that
// child too, until the scenario continues it (SIGCONT) or, at the latest,
// until the postmaster kills it itself 5 s after the crash
// (SIGKILL_CHILDREN_AFTER_SECS). The scenario first sees Postgres refuse a
// connection with 57P03, then asks authd, then checks the held backend is
// still stopped: only then do the answers count as taken inside the window;
// if the machine stalled so long that the postmaster ended the window
// first, the round is void and runs again (at most three times).
//
// It needs a cluster of its own (every session of the server ends) with
// synchronous commit on (asynchronous commits acknowledged but still in
// shared memory are lost by crash recovery, a loss the scenario would
// wrongly blame on authd).
//
// Promises checked: the request whose backend died answers 503 with
// Retry-After (problem+json, and temporarily_unavailable at the token
// endpoint), never 500; inside the reset window /readyz answers 503 with a
// reason and Retry-After, and so do a spend and a token request; after
// recovery /readyz returns to 200 and authd serves without a restart; no
// acknowledged spend is lost and every refused one can be retried once.
func CrashedBackend(ctx context.Context, env Env) *Report {
	// Lock waits long enough to find the waiting backend and kill it.
	return runInfra(ctx, env, "crashed database backend", []string{"AUTHD_DB_LOCK_TIMEOUT=8s", "AUTHD_DB_STATEMENT_TIMEOUT=8s", "AUTHD_REQUEST_TIMEOUT=10s"}, func(g *infraRig, rep *Report) {
		g.spendBefore(ctx, rep, 3)
		for _, k := range []struct {
			table string
			oauth bool
		}{{"ledger_accounts", false}, {"oauth2_access", true}} {
			for attempt := 1; ; attempt++ {
				done, err := crashRound(ctx, g, rep, k.table, k.oauth)
				if err != nil {
					rep.Problem("%s: %v", k.table, err)
					return
				}
				if done {
					break
				}
				if attempt == 3 {
					rep.Problem("%s: three times the postmaster ended the reset window before authd was asked (machine stalled > 5 s)", k.table)
					break
				}
			}
			if !g.waitReadyz(ctx, rep, http.StatusOK, "", 30*time.Second) {
				return
			}
			if a, _ := g.spend(ctx, "after-"+RandomID()); !a.OK() {
				rep.Problem("spend after crash recovery (%s): %s", k.table, a)
			}
			if a, _ := g.token(ctx); !a.OK() {
				rep.Problem("token after crash recovery (%s): %s", k.table, a)
			}
		}
		// Every killed or refused spend died before its commit: none is ambiguous.
		g.checkLedger(ctx, rep, nil)
	})
}

// crashRound locks table, starts a request that waits on the lock, holds
// the reset window open and kills the request's backend, then checks authd
// inside the window. It returns false when the window closed before the
// checks could count (see CrashedBackend) and an error when the round
// could not be set up.
func crashRound(ctx context.Context, g *infraRig, rep *Report, table string, oauth bool) (bool, error) {
	locker, err := pgx.Connect(ctx, g.env.DatabaseURL)
	if err != nil {
		return false, err
	}
	defer locker.Close(context.WithoutCancel(ctx))
	watcher, err := pgx.Connect(ctx, g.env.DatabaseURL)
	if err != nil {
		return false, err
	}
	defer watcher.Close(context.WithoutCancel(ctx))
	var held int
	if err := locker.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&held); err != nil {
		return false, err
	}
	if _, err := locker.Exec(ctx, `BEGIN; LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return false, fmt.Errorf("lock: %w", err)
	}
	do := func() (Answer, http.Header) { return g.spend(ctx, "crashed-"+RandomID()) }
	if oauth {
		do = func() (Answer, http.Header) { return g.token(ctx) }
	}
	victim, answer, err := blockedRequest(ctx, watcher, do)
	if err != nil {
		return false, err
	}
	// The held backend must never stay stopped: a stopped child would stall
	// the postmaster's shutdown at the end of the test for good.
	if err := syscall.Kill(held, syscall.SIGSTOP); err != nil {
		return false, fmt.Errorf("stop the lock holder's backend: %w", err)
	}
	defer func() { _ = syscall.Kill(held, syscall.SIGCONT) }()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		return false, fmt.Errorf("kill backend %d: %w", victim, err)
	}
	rep.Faults++
	what := "request whose backend crashed on " + table
	select {
	case r := <-answer:
		mustUnavailable(rep, what, r[0].(Answer), r[1].(http.Header), oauth, "")
	case <-time.After(10 * time.Second):
		rep.Problem("%s did not answer within 10s", what)
	}

	// Postgres itself says it is resetting: a new session is refused.
	var refusal string
	if !WaitFor(ctx, 5*time.Second, func() bool {
		refusal = refusedForRecovery(ctx, g.env.DatabaseURL)
		return refusal != ""
	}) {
		return false, fmt.Errorf("postgres never refused a connection after the crash")
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.srv.URL+"/readyz", nil)
	ready, readyH := doWithHeaders(g.c, req)
	spend, spendH := g.spend(ctx, "reset-"+RandomID())
	token, tokenH := g.token(ctx)
	if !stopped(held) {
		rep.Note("%s: the postmaster ended the reset window before authd was asked; crashing again", table)
		return false, nil
	}
	rep.Note("%s: Postgres refused sessions (%s); /readyz said %s", table, refusal, ready)
	if ready.Status != http.StatusServiceUnavailable || readyH.Get("Retry-After") == "" || !strings.Contains(string(ready.Body), `"reason"`) {
		rep.Problem("/readyz while Postgres resets after a crash (%s): %s (Retry-After %q), want 503 with a reason and Retry-After", table, ready, readyH.Get("Retry-After"))
	}
	mustUnavailable(rep, "spend while Postgres resets after a crash", spend, spendH, false, "")
	mustUnavailable(rep, "token while Postgres resets after a crash", token, tokenH, true, "")
	return true, nil
}

// refusedForRecovery connects to dbURL and returns Postgres's refusal when
// it is 57P03 (cannot_connect_now: starting, resetting or in recovery).
func refusedForRecovery(ctx context.Context, dbURL string) string {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dbURL)
	if err == nil {
		// Made before the postmaster saw the crash; it will be ended.
		conn.Close(context.WithoutCancel(ctx))
		return ""
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "57P03" {
		return pe.Code + " " + pe.Message
	}
	return ""
}

// stopped reports whether process pid exists and is stopped by a signal
// (state T in /proc/<pid>/stat; Linux, like the rest of the harness).
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'T'
}
