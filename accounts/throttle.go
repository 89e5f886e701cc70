package accounts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage"
)

// ErrThrottled matches every *ThrottledError with errors.Is.
var ErrThrottled = errors.New("accounts: too many failed attempts")

// ThrottledError says a login was refused without checking the password
// because of earlier failures; retry after RetryAfter (429 + Retry-After).
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("accounts: too many failed attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// Is lets errors.Is(err, ErrThrottled) match.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// RetryAfterSeconds is the Retry-After header value: whole seconds, at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// ThrottleConfig shapes the login backoff. It has two levels:
//
//   - per (account, client address): after Free failures in a row from one
//     address, each further failure locks that address out of the account
//     for Base, doubling per failure up to Max;
//   - per account, from every address together: only after AccountFree
//     failures, each further failure locks the account for AccountLock, a
//     short flat pause. An attacker spread over many addresses is slowed to
//     one guess per AccountLock, and the owner, on an address of their own,
//     never waits longer than AccountLock.
//
// Codes of a second factor count apart from passwords (see secondFactor)
// and their account-wide level is stricter: whoever guesses them already
// holds the password, and a six-digit code falls to a few guesses a minute
// within weeks. After FactorAccountFree failures from anywhere, each further
// one locks the account's second factor for FactorAccountLock, doubling up
// to Max, and the owner is mailed once: the way out is a password reset,
// which ends the attacker's password and clears every lock.
//
// Failures older than Window are forgotten.
type ThrottleConfig struct {
	Free              int           // 5
	Base              time.Duration // 1s
	Max               time.Duration // 15m
	AccountFree       int           // 100
	AccountLock       time.Duration // 3s
	FactorAccountFree int           // 10
	FactorAccountLock time.Duration // 1m
	Window            time.Duration // 1h
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.Free <= 0 {
		c.Free = 5
	}
	if c.Base <= 0 {
		c.Base = time.Second
	}
	if c.Max <= 0 {
		c.Max = 15 * time.Minute
	}
	if c.AccountFree <= 0 {
		c.AccountFree = 100
	}
	if c.AccountLock <= 0 {
		c.AccountLock = 3 * time.Second
	}
	if c.FactorAccountFree <= 0 {
		c.FactorAccountFree = 10
	}
	if c.FactorAccountLock <= 0 {
		c.FactorAccountLock = time.Minute
	}
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	return c
}

// delay is the lock of one address after its n-th consecutive failure.
func (c ThrottleConfig) delay(n int) time.Duration {
	if n <= c.Free {
		return 0
	}
	exp := min(n-c.Free-1, 30)
	return min(c.Base*time.Duration(1<<exp), c.Max)
}

// accountDelay is the account-wide lock after the n-th failure from anywhere.
func (c ThrottleConfig) accountDelay(n int) time.Duration {
	if n <= c.AccountFree {
		return 0
	}
	return c.AccountLock
}

// factorAccountDelay is the account-wide lock of a second factor after its
// n-th failure from anywhere.
func (c ThrottleConfig) factorAccountDelay(n int) time.Duration {
	if n <= c.FactorAccountFree {
		return 0
	}
	exp := min(n-c.FactorAccountFree-1, 30)
	return min(c.FactorAccountLock*time.Duration(1<<exp), c.Max)
}

// throttleKey names one account's backoff: the address as typed, normalised
// (so an unknown address is throttled exactly like a real one: no
// enumeration), and the client's address. client "" is the account-wide row.
// factor marks the rows of a second factor's codes.
type throttleKey struct {
	email, client string
	factor        bool
}

// accountWide is the account's row that every address counts towards.
func (k throttleKey) accountWide() throttleKey {
	return throttleKey{email: k.email, factor: k.factor}
}

// row is the key's (email, client) in login_failures.
func (k throttleKey) row() (email, client string) {
	if k.factor {
		return secondFactorPrefix + k.email, k.client
	}
	return k.email, k.client
}

// secondFactorPrefix marks the rows of second-factor codes: no normalized
// address contains a space, so they never meet a password's rows.
const secondFactorPrefix = "2fa "

// secondFactor is the key of the same account and address for codes of a
// second factor. Their failures are apart from the password's because
// whoever guesses codes holds the password: a password success, which
// clears its own key, must not forgive them.
func (k throttleKey) secondFactor() throttleKey {
	return throttleKey{email: k.email, client: k.client, factor: true}
}

// keyFor returns the backoff key of a login for email from the client of
// ctx (the address the HTTP middleware computed). IPv6 clients are keyed
// by their /64, which one subscriber usually holds whole.
func keyFor(ctx context.Context, email string) throttleKey {
	client := "-" // not from a request (CLI, tests): one shared bucket
	if ip := reqctx.ClientOf(ctx).IP; ip != "" {
		client = ip
		if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
			p, _ := a.Prefix(64)
			client = p.String()
		}
	}
	return throttleKey{email: email, client: client}
}

// guessClient is the client of an account's row that leases "a guess is
// being checked" (claimGuess); no address is spelled like it.
const guessClient = "~guess"

// guessLease bounds a claim whose holder died: the next guess may proceed.
const guessLease = 10 * time.Second

// claimGuess claims the account of k for one guess at a time, across
// replicas: mine is false while another guess of the account is being
// checked. release ends the claim. A claim is a row leased for guessLease
// (an expired one is taken over), so it holds no connection or lock.
func (s *Service) claimGuess(ctx context.Context, k throttleKey) (release func(), mine bool, err error) {
	email, _ := k.accountWide().row()
	now := s.cfg.Now()
	err = s.pool.QueryRow(ctx, `INSERT INTO login_failures AS f (email, client, failures, updated_at, locked_until)
		VALUES ($1, $2, 0, $3, $4)
		ON CONFLICT (email, client) DO UPDATE SET updated_at = $3, locked_until = $4 WHERE f.locked_until <= $3
		RETURNING true`, email, guessClient, now, now.Add(guessLease)).Scan(&mine)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("accounts: claim a second-factor guess: %w", err)
	}
	return func() {
		if _, err := s.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM login_failures WHERE email = $1 AND client = $2`, email, guessClient); err != nil {
			s.log.Warn("release a second-factor guess", zap.Error(err))
		}
	}, true, nil
}

// checkThrottle returns a *ThrottledError while either the address's or the
// account-wide lock lasts, with the longer of the two waits.
func (s *Service) checkThrottle(ctx context.Context, k throttleKey) error {
	var until *time.Time
	email, client := k.row()
	err := s.pool.QueryRow(ctx, `SELECT max(locked_until) FROM login_failures
		WHERE email = $1 AND client IN ($2, '')`, email, client).Scan(&until)
	if err != nil {
		return fmt.Errorf("accounts: read login backoff: %w", err)
	}
	if until != nil {
		if left := until.Sub(s.cfg.Now()); left > 0 {
			return &ThrottledError{RetryAfter: left}
		}
	}
	return nil
}

// recordFailure counts a failed login for the address and for the account
// and returns the account-wide count (0 when it could not be counted).
// Errors are logged, not returned: the caller's answer (invalid
// credentials) stands either way.
func (s *Service) recordFailure(ctx context.Context, k throttleKey) int {
	c := s.cfg.Throttle
	if _, err := s.countFailure(ctx, k, c.delay); err != nil {
		s.log.Warn("record failed login", zap.Error(err))
	}
	accountDelay := c.accountDelay
	if k.factor {
		accountDelay = c.factorAccountDelay
	}
	n, err := s.countFailure(ctx, k.accountWide(), accountDelay)
	if err != nil {
		s.log.Warn("record failed login", zap.Error(err))
	}
	return n
}

func (s *Service) countFailure(ctx context.Context, k throttleKey, delay func(int) time.Duration) (int, error) {
	now := s.cfg.Now()
	email, client := k.row()
	var n int
	err := s.pool.QueryRow(ctx, `INSERT INTO login_failures AS f (email, client, failures, updated_at) VALUES ($1, $2, 1, $3)
		ON CONFLICT (email, client) DO UPDATE SET
			failures = CASE WHEN f.updated_at < $4 THEN 1 ELSE f.failures + 1 END,
			updated_at = $3
		RETURNING failures`, email, client, now, now.Add(-s.cfg.Throttle.Window)).Scan(&n)
	if err != nil {
		return 0, err
	}
	if d := delay(n); d > 0 {
		_, err = s.pool.Exec(ctx, `UPDATE login_failures SET locked_until = $3 WHERE email = $1 AND client = $2`, email, client, now.Add(d))
	}
	return n, err
}

// clearFailures forgets the address's failures after a success. The
// account-wide count stays: one success of the owner must not hand an
// attacker elsewhere a fresh allowance.
func (s *Service) clearFailures(ctx context.Context, k throttleKey) {
	email, client := k.row()
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE email = $1 AND client = $2`, email, client); err != nil {
		s.log.Warn("clear failed logins", zap.Error(err))
	}
}

// clearAllFailures forgets every failure of the account, second factors'
// included (password reset: the mailbox owner chose a new password, so
// whoever guessed codes with the old one holds nothing any more).
func clearAllFailures(ctx context.Context, q storage.Querier, email string) error {
	if _, err := q.Exec(ctx, `DELETE FROM login_failures WHERE email IN ($1, $2)`, email, secondFactorPrefix+email); err != nil {
		return fmt.Errorf("accounts: clear login backoff: %w", err)
	}
	return nil
}
