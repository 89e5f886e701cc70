package accounts

import (
	"context"
	"fmt"
)

// PurgeExpired deletes rows that can no longer matter, so the accounts
// tables stay bounded: sessions a day past expiry or a month past their
// revocation, verification and reset tokens a day past expiry, login
// backoff a day after it lapsed, outbox rows a week after delivery (kept
// that long for tracing deliveries) or a month after they were given up,
// and passkey ceremonies once expired. Every statement is idempotent, so
// replicas may run it concurrently. It returns how many rows went.
func (s *Service) PurgeExpired(ctx context.Context) (int64, error) {
	var total int64
	for _, q := range []struct{ what, sql string }{
		{"browser sessions", `DELETE FROM browser_sessions WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '30 days'`},
		{"email tokens", `DELETE FROM email_tokens WHERE expires_at < now() - interval '1 day'`},
		{"login failures", `DELETE FROM login_failures WHERE updated_at < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())`},
		{"outbox", `DELETE FROM outbox WHERE delivered_at < now() - interval '7 days' OR failed_at < now() - interval '30 days'`},
		{"passkey ceremonies", `DELETE FROM webauthn_ceremonies WHERE expires_at < now()`},
		{"login challenges", `DELETE FROM login_challenges WHERE expires_at < now()`},
	} {
		tag, err := s.pool.Exec(ctx, q.sql)
		if err != nil {
			return total, fmt.Errorf("accounts: purge %s: %w", q.what, err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}
