package fositestore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// RevokeSubject ends every grant of the user subject at once: it
// deactivates their refresh tokens (dropping cached responses), deletes their
// access tokens and invalidates their unused authorization codes. authd calls
// it when a user is disabled, loses a role or resets their password.
func (s *Store) RevokeSubject(ctx context.Context, subject string) error {
	return s.revokeWhere(ctx, []revKey{{'s', subject}}, "subject = $1", subject)
}

// RevokeSessionTokens ends the grants the user obtained through one browser
// session: those whose stored session carries browser_session_id (the oauth
// package records it at authorization). accounts calls it when the user ends
// that session from /account or the API.
func (s *Store) RevokeSessionTokens(ctx context.Context, subject, browserSessionID string) error {
	return s.revokeWhere(ctx, []revKey{{'s', subject}}, "subject = $1 AND session_data->>'browser_session_id' = $2", subject, browserSessionID)
}

// RevokeClientTokens does what RevokeSubject does for every grant issued to
// the client clientID (e.g. when its secret is rotated).
func (s *Store) RevokeClientTokens(ctx context.Context, clientID string) error {
	return s.revokeWhere(ctx, []revKey{{'c', clientID}}, "client_id = $1", clientID)
}

// revokeWhere revokes every row matching cond (a constant SQL condition over
// args), in
// one READ COMMITTED transaction: its updates wait for in-flight refreshes
// instead of failing with serialization errors. A refresh that held a lock
// our first UPDATE waited for may have inserted a new token our statement's
// snapshot could not see; it has committed by then, so a second pass, with a
// fresh snapshot, catches it. Later refreshes block on our row locks and,
// once we commit, find their token revoked.
// keys name what was revoked, for caches of answers (revoked.go).
func (s *Store) revokeWhere(ctx context.Context, keys []revKey, cond string, args ...any) error {
	return s.InTxWith(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(ctx context.Context) error {
		s.forgetLocked(ctx)
		s.noteRevoked(ctx, keys...)
		q := s.q(ctx)
		revokeRefresh := func() error {
			_, err := q.Exec(ctx, `UPDATE oauth2_refresh SET active = false, rotated_response = NULL
				WHERE `+cond+` AND (active OR rotated_response IS NOT NULL)`, args...)
			return mapErr("revoke refresh tokens", err)
		}
		if err := revokeRefresh(); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, `DELETE FROM oauth2_access WHERE `+cond, args...); err != nil {
			return mapErr("revoke access tokens", err)
		}
		if _, err := q.Exec(ctx, `UPDATE oauth2_code SET active = false WHERE `+cond+` AND active`, args...); err != nil {
			return mapErr("revoke codes", err)
		}
		return revokeRefresh()
	})
}

// DeleteExpired removes rows that expired before before and returns how
// many. Used refresh tokens are kept until their own expiry, so reuse is
// detected for as long as the token could have been valid; refresh tokens
// without expiry are never removed.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, table := range []string{tableCode, tableAccess, tableRefresh, tableOIDC, tablePKCE, "oauth2_jti", "oauth2_par", "oauth2_device"} {
		tag, err := s.q(ctx).Exec(ctx, `DELETE FROM `+table+` WHERE expires_at < $1`, before.UTC())
		if err != nil {
			return n, mapErr("delete expired "+table, err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
