package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// VerifyLedger runs `authd ledger verify` and records the result on rep.
func VerifyLedger(ctx context.Context, env Env, key string, rep *Report) {
	out, err := env.CLI(ctx, key, "", "ledger", "verify", "--output", "json")
	if err != nil {
		rep.Ledger = "BROKEN"
		rep.Problem("authd ledger verify: %v\n%s", err, out)
		return
	}
	var v struct {
		Transactions int `json:"transactions"`
	}
	_ = json.Unmarshal(out, &v)
	rep.Ledger = "clean"
}

// SpendCheck decides, for the spends of a run, whether the ledger matches
// what clients were told: every 2xx is in the ledger exactly once; an error
// is absent unless Ambiguous says the request may have committed before its
// connection died (the at-least-once window: the guarantee is "2xx ⇒ durable
// exactly once"). Then every failed spend is retried with its reference and
// must end up in the ledger exactly once (a replay answers 200).
type SpendCheck struct {
	Ambiguous func(o Outcome) bool
	// Retry resends a spend; nil skips the retry step.
	Retry func(ctx context.Context, o Outcome) Answer
}

// Run checks outs against the database at dbURL and records on rep.
func (sc SpendCheck) Run(ctx context.Context, dbURL string, outs []Outcome, rep *Report) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		rep.Problem("spend check: connect: %v", err)
		return
	}
	defer conn.Close(ctx)
	count := func(o Outcome) (int, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM ledger_transactions t JOIN ledger_accounts a ON a.id = t.account_id
			WHERE a.user_id = $1 AND t.reference = $2 AND t.kind = 'spend'`, o.User, o.Ref).Scan(&n)
		return n, err
	}
	var ok, failed, committedFailed, insufficient int
	var retry []Outcome
	for _, o := range outs {
		if o.Op != "spend" {
			continue
		}
		n, err := count(o)
		if err != nil {
			rep.Problem("spend check: %v", err)
			return
		}
		switch {
		case o.Status >= 200 && o.Status < 300:
			ok++
			if n != 1 {
				rep.Problem("spend %s answered %d but is in the ledger %d times", o.Ref, o.Status, n)
			}
		case o.Status == http.StatusConflict:
			insufficient++ // insufficient_credits: a definite refusal
			if n != 0 {
				rep.Problem("spend %s answered 409 but is in the ledger", o.Ref)
			}
		default:
			failed++
			retry = append(retry, o)
			if n > 1 {
				rep.Problem("spend %s is in the ledger %d times", o.Ref, n)
			}
			if n == 1 {
				committedFailed++
				if sc.Ambiguous == nil || !sc.Ambiguous(o) {
					rep.Problem("spend %s failed (%s) outside any fault window but committed", o.Ref, describe(o))
				}
			}
		}
	}
	rep.Note("spends: %d succeeded (each in the ledger once), %d refused for lack of credits, %d failed (%d of those committed anyway: at-least-once ambiguity)",
		ok, insufficient, failed, committedFailed)
	if sc.Retry == nil || len(retry) == 0 {
		return
	}
	var replayed, created int
	for _, o := range retry {
		before, _ := count(o)
		a := sc.Retry(ctx, o)
		switch {
		case a.Status == http.StatusOK && before == 1:
			replayed++
		case a.Status == http.StatusCreated && before == 0:
			created++
		case a.Status == http.StatusConflict && before == 0:
			// Out of credits by now: still never debited.
		default:
			rep.Problem("retrying spend %s (in ledger %d times before): %s", o.Ref, before, a)
			continue
		}
		if n, _ := count(o); n > 1 {
			rep.Problem("spend %s in the ledger %d times after its retry", o.Ref, n)
		}
	}
	rep.Note("retries of failed spends with the same reference: %d replayed the committed spend (200), %d spent now (201)", replayed, created)
}

func describe(o Outcome) string {
	if o.Err != "" {
		return o.Err
	}
	return fmt.Sprintf("status %d", o.Status)
}

// CheckUsers checks every user whose email matches pattern (SQL LIKE) is
// whole: the default role, a ledger account, exactly one user.registered
// event and one verification mail; and no event names a missing user. It
// returns how many such users exist.
func CheckUsers(ctx context.Context, dbURL, pattern string, rep *Report) int {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		rep.Problem("user check: connect: %v", err)
		return 0
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT u.email,
			(SELECT count(*) FROM user_roles r WHERE r.user_id = u.id AND r.role = 'user'),
			(SELECT count(*) FROM ledger_accounts a WHERE a.user_id = u.id),
			(SELECT count(*) FROM outbox o WHERE o.kind = 'webhook' AND o.type = 'user.registered' AND o.payload->>'user_id' = u.id::text),
			(SELECT count(*) FROM outbox o WHERE o.kind = 'mail' AND o.type = 'verify_email' AND o.payload->>'to' = u.email)
		FROM users u WHERE u.email LIKE $1`, pattern)
	if err != nil {
		rep.Problem("user check: %v", err)
		return 0
	}
	n := 0
	for rows.Next() {
		var email string
		var roles, accts, events, mails int
		if err := rows.Scan(&email, &roles, &accts, &events, &mails); err != nil {
			rep.Problem("user check: %v", err)
			return n
		}
		n++
		if roles != 1 || accts != 1 || events != 1 || mails != 1 {
			rep.Problem("user %s is half-created: role user %d, ledger accounts %d, user.registered events %d, verification mails %d", email, roles, accts, events, mails)
		}
	}
	if err := rows.Err(); err != nil {
		rep.Problem("user check: %v", err)
	}
	var orphans int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM outbox o WHERE o.type = 'user.registered'
		AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id::text = o.payload->>'user_id')`).Scan(&orphans); err != nil {
		rep.Problem("user check: %v", err)
	} else if orphans > 0 {
		rep.Problem("%d user.registered events name no user", orphans)
	}
	return n
}

// OutboxCounts is the outbox table's state.
type OutboxCounts struct{ Queued, Delivered, Pending int }

// Outbox counts outbox rows of kind ("" = all).
func Outbox(ctx context.Context, dbURL, kind string) (OutboxCounts, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return OutboxCounts{}, err
	}
	defer conn.Close(ctx)
	var c OutboxCounts
	err = conn.QueryRow(ctx, `SELECT count(*), count(delivered_at), count(*) - count(delivered_at) FROM outbox WHERE $1 = '' OR kind = $1`, kind).
		Scan(&c.Queued, &c.Delivered, &c.Pending)
	return c, err
}

// OutboxIDs lists the ids of webhook rows (every event that must arrive).
func OutboxIDs(ctx context.Context, dbURL, kind string) ([]string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id::text FROM outbox WHERE kind = $1`, kind)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// WaitFor polls cond every 50ms until it holds, ctx ends or timeout passes.
func WaitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
