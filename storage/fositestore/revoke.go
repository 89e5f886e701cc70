package fositestore

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// RevokeSubject ends every grant of the user subject at once: it
// deactivates their refresh tokens (dropping cached responses), deletes their
// access tokens and invalidates their unused authorization codes. authd calls
// it when a user is disabled, loses a role or resets their password.
func (s *Store) RevokeSubject(ctx context.Context, subject string) error {
	return s.revokeWhere(ctx, []revKey{{'s', subject}}, "subject = $1", "subject = $1", subject)
}

// RevokeSessionTokens ends the grants the user obtained through one browser
// session: those whose stored session carries browser_session_id (the oauth
// package records it at authorization). accounts calls it when the user ends
// that session from /account or the API.
func (s *Store) RevokeSessionTokens(ctx context.Context, subject, browserSessionID string) error {
	return s.revokeWhere(ctx, []revKey{{'s', subject}}, "subject = $1 AND session_data->>'browser_session_id' = $2",
		"subject = $1 AND browser_session_id = $2", subject, browserSessionID)
}

// RevokeClientTokens does what RevokeSubject does for every grant issued to
// the client clientID (e.g. when its secret is rotated).
func (s *Store) RevokeClientTokens(ctx context.Context, clientID string) error {
	return s.revokeWhere(ctx, []revKey{{'c', clientID}}, "client_id = $1", "client_id = $1", clientID)
}

// RevokeUserClientTokens ends every grant the user subject gave the client
// clientID (the account page's "revoke access" for one app).
func (s *Store) RevokeUserClientTokens(ctx context.Context, subject, clientID string) error {
	return s.revokeWhere(ctx, []revKey{{'s', subject}}, "subject = $1 AND client_id = $2",
		"subject = $1 AND client_id = $2", subject, clientID)
}

// readCommitted is the isolation of revocations: their statements wait for
// a family's lock or a row in flight and then see what was committed,
// instead of failing with serialization errors.
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// familiesPerTx bounds the family locks one revocation transaction holds:
// they live in Postgres' shared lock table until the transaction ends.
const familiesPerTx = 64

// revokeWhere revokes every row matching cond (a constant SQL condition over
// args, $1 onwards). Refresh families still alive (with an active token)
// are revoked family by family, saved responses included, under
// their locks (familyLockSQL), up to familiesPerTx per READ COMMITTED
// transaction, so a rotation in flight either commits first and its new
// pair is revoked with the rest, or waits and then finds its token revoked.
// Families are locked in request_id order, so two revocations never wait
// on each other in a cycle. A last transaction deletes the remaining access
// tokens (grants without a refresh token) and invalidates unused codes.
// deviceCond selects the same grants among device authorizations (over
// oauth2_device's columns): one approved but not yet redeemed is denied, so
// its device's next poll gets access_denied instead of fresh tokens.
// keys name what was revoked, for caches of answers (revoked.go).
func (s *Store) revokeWhere(ctx context.Context, keys []revKey, cond, deviceCond string, args ...any) error {
	n := len(args)
	after := ""
	for {
		var families []string
		err := s.InTxWith(ctx, readCommitted, func(ctx context.Context) error {
			q := s.q(ctx)
			// A family is alive while it has an active token: a saved
			// response is replayed only while the token minted in its
			// place is active, so families are found by that token
			// (oauth2_refresh_subject_active_idx).
			rows, err := q.Query(ctx, `SELECT DISTINCT request_id FROM oauth2_refresh
				WHERE `+cond+` AND active AND request_id > $`+strconv.Itoa(n+1)+`
				ORDER BY request_id LIMIT `+strconv.Itoa(familiesPerTx), append(args, after)...)
			if err != nil {
				return mapErr("find refresh families", err)
			}
			families, err = pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(families) == 0 {
				return mapErr("find refresh families", err)
			}
			for _, f := range families {
				if _, err := q.Exec(ctx, familyLockSQL, f); err != nil {
					return mapErr("lock refresh family", err)
				}
			}
			if _, err := q.Exec(ctx, `UPDATE oauth2_refresh SET active = false, rotated_response = NULL
				WHERE request_id = ANY($1) AND (active OR rotated_response IS NOT NULL)`, families); err != nil {
				return mapErr("revoke refresh tokens", err)
			}
			if _, err := q.Exec(ctx, `DELETE FROM oauth2_access WHERE request_id = ANY($1)`, families); err != nil {
				return mapErr("revoke access tokens", err)
			}
			s.noteRevoked(ctx, keys...)
			return nil
		})
		if err != nil {
			return err
		}
		if len(families) < familiesPerTx {
			break
		}
		after = families[len(families)-1]
	}
	return s.InTxWith(ctx, readCommitted, func(ctx context.Context) error {
		s.noteRevoked(ctx, keys...)
		q := s.q(ctx)
		if _, err := q.Exec(ctx, `DELETE FROM oauth2_access WHERE `+cond, args...); err != nil {
			return mapErr("revoke access tokens", err)
		}
		if _, err := q.Exec(ctx, `UPDATE oauth2_code SET active = false WHERE `+cond+` AND active`, args...); err != nil {
			return mapErr("revoke codes", err)
		}
		if _, err := q.Exec(ctx, `UPDATE oauth2_device SET status = 'denied'
			WHERE `+deviceCond+` AND status IN ('pending', 'approved')`, args...); err != nil {
			return mapErr("revoke device authorizations", err)
		}
		return nil
	})
}

// purgeBatch bounds one purge statement. A single DELETE of every expired
// row grows with the backlog (after an outage, or on a big table) until it
// no longer fits the statement timeout, and then it fails every interval
// while the table keeps growing; batches of this size each finish in
// milliseconds and the loop works the backlog down.
const purgeBatch = 5000

// DeleteExpired removes rows that expired before before and returns how
// many. Used refresh tokens are kept until their own expiry, so reuse is
// detected for as long as the token could have been valid; refresh tokens
// without expiry are never removed.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	for _, table := range []string{tableCode, tableAccess, tableRefresh, tableOIDC, tablePKCE, "oauth2_jti", "oauth2_par", "oauth2_device"} {
		for {
			tag, err := s.q(ctx).Exec(ctx, `DELETE FROM `+table+` WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM `+table+` WHERE expires_at < $1 LIMIT `+strconv.Itoa(purgeBatch)+`))`, before.UTC())
			if err != nil {
				return n, mapErr("delete expired "+table, err)
			}
			n += tag.RowsAffected()
			if tag.RowsAffected() < purgeBatch || ctx.Err() != nil {
				break
			}
		}
	}
	return n, nil
}
