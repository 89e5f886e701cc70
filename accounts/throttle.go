package accounts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
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

// ThrottleConfig shapes the per-account login backoff. After Free failures in
// a row, each further failure locks the account's password check for Base,
// doubling per failure up to Max. Failures older than Window are forgotten.
type ThrottleConfig struct {
	Free   int           // 5
	Base   time.Duration // 1s
	Max    time.Duration // 15m
	Window time.Duration // 1h
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
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	return c
}

// delay is the lock after the n-th consecutive failure.
func (c ThrottleConfig) delay(n int) time.Duration {
	if n <= c.Free {
		return 0
	}
	exp := min(n-c.Free-1, 30)
	return min(c.Base*time.Duration(1<<exp), c.Max)
}

// throttleKey keys the backoff by the address as typed, normalised, so an
// unknown address is throttled exactly like a real one (no enumeration).
func throttleKey(email string) string {
	if e, err := NormalizeEmail(email); err == nil {
		return e
	}
	return strings.ToLower(strings.TrimSpace(email))
}

func (s *Service) checkThrottle(ctx context.Context, key string) error {
	var until *time.Time
	err := s.pool.QueryRow(ctx, `SELECT locked_until FROM login_failures WHERE email = $1`, key).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
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

// recordFailure counts a failed login. Errors are logged, not returned: the
// caller's answer (invalid credentials) stands either way.
func (s *Service) recordFailure(ctx context.Context, key string) {
	now := s.cfg.Now()
	c := s.cfg.Throttle
	var n int
	err := s.pool.QueryRow(ctx, `INSERT INTO login_failures AS f (email, failures, updated_at) VALUES ($1, 1, $2)
		ON CONFLICT (email) DO UPDATE SET
			failures = CASE WHEN f.updated_at < $3 THEN 1 ELSE f.failures + 1 END,
			updated_at = $2
		RETURNING failures`, key, now, now.Add(-c.Window)).Scan(&n)
	if err == nil {
		if d := c.delay(n); d > 0 {
			_, err = s.pool.Exec(ctx, `UPDATE login_failures SET locked_until = $2 WHERE email = $1`, key, now.Add(d))
		}
	}
	if err != nil {
		s.log.Warn("record failed login", zap.Error(err))
	}
}

func (s *Service) clearFailures(ctx context.Context, key string) {
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE email = $1`, key); err != nil {
		s.log.Warn("clear failed logins", zap.Error(err))
	}
}
