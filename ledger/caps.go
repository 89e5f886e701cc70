package ledger

import (
	"context"
	"errors"
	"fmt"
)

// ChargeCaps are a charging client's limits; 0 means no limit.
type ChargeCaps struct{ PerSpend, PerUserPerDay int64 }

// CapSource looks up a client's caps.
type CapSource interface {
	ChargeCaps(ctx context.Context, clientID string) (ChargeCaps, error)
}

// Names of the caps, as ChargeCapError and its problem document give them.
const (
	CapPerSpend      = "per_spend"
	CapPerUserPerDay = "per_user_per_day"
)

// ErrChargeCapExceeded is a charge refused by one of its client's caps.
var ErrChargeCapExceeded = errors.New("ledger: charge exceeds the client's cap")

// ChargeCapError is ErrChargeCapExceeded naming the cap. Charged is what the
// client had already charged the user today (per_user_per_day only).
type ChargeCapError struct {
	Cap     string
	Limit   int64
	Charged int64
	Amount  int64
}

func (e *ChargeCapError) Error() string {
	if e.Cap == CapPerUserPerDay {
		return fmt.Sprintf("ledger: charge of %d exceeds the client's %s cap of %d (%d charged today)", e.Amount, e.Cap, e.Limit, e.Charged)
	}
	return fmt.Sprintf("ledger: charge of %d exceeds the client's %s cap of %d", e.Amount, e.Cap, e.Limit)
}

// Is makes errors.Is(err, ErrChargeCapExceeded) true.
func (e *ChargeCapError) Is(target error) bool { return target == ErrChargeCapExceeded }

func (c ChargeCaps) none() bool { return c == ChargeCaps{} }

// admit refuses a charge of amount that would break c, given what the client
// has already charged the user today.
func (c ChargeCaps) admit(amount, chargedToday int64) error {
	if c.PerSpend > 0 && amount > c.PerSpend {
		return &ChargeCapError{Cap: CapPerSpend, Limit: c.PerSpend, Amount: amount}
	}
	// limit - charged cannot overflow: both are non-negative.
	if c.PerUserPerDay > 0 && amount > c.PerUserPerDay-chargedToday {
		return &ChargeCapError{Cap: CapPerUserPerDay, Limit: c.PerUserPerDay, Charged: chargedToday, Amount: amount}
	}
	return nil
}

// chargeKey names one client's charges to one account.
type chargeKey struct {
	account int64
	client  string
}

// dayStartSQL is 00:00 UTC of the database's current day. The day's charges
// are read before the clock that stamps the new transactions, so a posting
// stamped just after midnight may count the previous day too (stricter,
// never looser).
const dayStartSQL = `date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`

// chargedTodaySQL sums, per (user, client) row of a VALUES list r, the
// client's charges to the user today. Only service charges count (a user's
// own spends through the client do not), refunds or not: a cap bounds what a
// client may take, not what it keeps. The partial index of migration 0017
// serves it.
const chargedTodaySQL = `SELECT a.id, r.client_id, s.total FROM (VALUES %s) r(user_id, client_id)
	JOIN ledger_accounts a ON a.user_id = r.user_id
	CROSS JOIN LATERAL (SELECT sum(t.amount) AS total FROM ledger_transactions t
		WHERE t.account_id = a.id AND t.client_id = r.client_id AND t.kind = 'spend' AND t.actor_type = 'client'
		  AND t.created_at >= ` + dayStartSQL + `) s
	WHERE s.total IS NOT NULL`
