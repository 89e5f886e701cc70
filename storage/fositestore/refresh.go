package fositestore

import (
	"context"
	"errors"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage. The row
// remembers the access token issued with it.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	st := txOf(ctx)
	args, err := newRow(signature, r, fosite.RefreshToken, st.sessionMemo())
	if err != nil {
		return err
	}
	atSig := ""
	if accessSignature != "" {
		atSig = hashKey(accessSignature)
	}
	args = append(args, atSig)
	if st != nil && st.refresh != nil && st.refresh.add(tableRefresh, args, r.GetID()) {
		return nil // written with the rotation by RefreshTx.Commit
	}
	_, err = s.q(ctx).Exec(ctx, `INSERT INTO oauth2_refresh (`+insertColumns+`, access_token_signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, args...)
	return mapErr("create oauth2_refresh", err)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A used or
// revoked token returns the request with fosite.ErrInactiveToken, and fosite
// then revokes the whole family. The one exception is the token a
// RefreshTx presents in replay mode (RefreshTx.Replay): it counts as active,
// so fosite authenticates the client and checks ownership without revoking
// anything.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	if st := txOf(ctx); st != nil && st.refresh != nil {
		r, active, ok, err := st.refresh.get(signature, session)
		switch {
		case !ok:
		case err != nil:
			return nil, err
		case active || st.replay:
			return r, nil
		default:
			return r, fosite.ErrInactiveToken
		}
	}
	r, active, err := s.getRequest(ctx, tableRefresh, signature, session, "")
	if err != nil {
		return nil, err
	}
	if !active {
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage. fosite
// calls it for the reused token when it detects reuse; a missing row is not
// an error, since any error there would abort the family's revocation.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableRefresh, signature)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage. Inside a
// RefreshTx it records the rotation, written by RefreshTx.Commit. Elsewhere
// it takes the family's lock and marks the presented token used with an
// update guarded by its own signature, not by request_id: a request that
// read the token before a concurrent rotation committed must not match the
// winner's new token (FOSITE-NOTES §4). Losing that race is
// fosite.ErrInactiveToken, which fosite answers with "retry" and no
// revocation. The family's access tokens are then deleted, and any other
// still-active refresh token of the family deactivated, before fosite
// inserts the new pair.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	if st := txOf(ctx); st != nil && st.refresh != nil {
		if err := st.refresh.rotate(st.replay, requestID, signature); err != nil {
			return err
		}
		s.noteRevoked(ctx, revKey{'r', requestID})
		return nil
	}
	key := hashKey(signature)
	return s.inFamily(ctx, requestID, func(ctx context.Context, q storage.Querier) error {
		// One statement: the guarded UPDATE decides, and the other two
		// parts act only when it changed the row. The family UPDATE skips
		// the presented row (a row may change once per statement).
		var rotated bool
		err := q.QueryRow(ctx, `WITH used AS (
				UPDATE oauth2_refresh SET active = false, first_used_at = clock_timestamp()
				WHERE signature = $1 AND active RETURNING 1
			), dropped AS (
				DELETE FROM oauth2_access WHERE request_id = $2 AND EXISTS (SELECT 1 FROM used)
			), family AS (
				UPDATE oauth2_refresh SET active = false
				WHERE request_id = $2 AND active AND signature <> $1 AND EXISTS (SELECT 1 FROM used)
			)
			SELECT EXISTS (SELECT 1 FROM used)`, key, requestID).Scan(&rotated)
		if err != nil {
			return mapErr("rotate refresh token", err)
		}
		if !rotated {
			return fosite.ErrInactiveToken
		}
		s.noteRevoked(ctx, revKey{'r', requestID})
		return nil
	})
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: under the
// family's lock it deactivates every refresh token of the family requestID,
// drops their saved responses (so no revoked token is replayable) and
// deletes the family's access tokens. fosite calls RevokeAccessToken right
// after, but only this call is atomic with a rotation that was in flight:
// the lock makes it wait for that rotation and see what it minted. Rows
// stay until they expire, so later reuse is still detected.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.inFamily(ctx, requestID, func(ctx context.Context, q storage.Querier) error {
		if _, err := q.Exec(ctx, `UPDATE oauth2_refresh SET active = false, rotated_response = NULL
			WHERE request_id = $1 AND (active OR rotated_response IS NOT NULL)`, requestID); err != nil {
			return mapErr("revoke refresh tokens", err)
		}
		if _, err := q.Exec(ctx, `DELETE FROM oauth2_access WHERE request_id = $1`, requestID); err != nil {
			return mapErr("revoke access tokens", err)
		}
		s.noteRevoked(ctx, revKey{'r', requestID})
		return nil
	})
}

// inFamily runs fn holding the lock of the refresh family requestID
// (familyLockSQL): in ctx's transaction when it carries one (the lock then
// lasts until that transaction ends), else in a READ COMMITTED transaction
// of its own, so fn's statements see whatever a rotation that held the lock
// before committed.
func (s *Store) inFamily(ctx context.Context, requestID string, fn func(ctx context.Context, q storage.Querier) error) error {
	locked := func(ctx context.Context) error {
		if st := txOf(ctx); st == nil || st.refresh == nil || st.refresh.family != requestID {
			if _, err := s.q(ctx).Exec(ctx, familyLockSQL, requestID); err != nil {
				return mapErr("lock refresh family", err)
			}
		}
		return fn(ctx, s.q(ctx))
	}
	if txOf(ctx) != nil {
		return locked(ctx)
	}
	return s.InTxWith(ctx, readCommitted, locked)
}

// CodeFamily returns the family (request_id) of the authorization code
// signature, used or not, or "" when there is no such code.
func (s *Store) CodeFamily(ctx context.Context, signature string) (string, error) {
	var family string
	err := mapErr("read code", s.pool.QueryRow(ctx, `SELECT request_id FROM oauth2_code WHERE signature = $1`,
		hashKey(signature)).Scan(&family))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return family, err
}

// InFamily runs fn in a READ COMMITTED transaction holding the lock of the
// token family (familyLockSQL) and commits it, or rolls back when fn fails.
// With family "" it takes no lock. The token endpoint exchanges a code
// inside it, so concurrent exchanges of one code run one after the other:
// the first issues, and every later one finds the code used and revokes
// what the first issued.
func (s *Store) InFamily(ctx context.Context, family string, fn func(ctx context.Context) error) error {
	if family == "" {
		return s.InTxWith(ctx, readCommitted, fn)
	}
	return s.inFamily(ctx, family, func(ctx context.Context, _ storage.Querier) error { return fn(ctx) })
}
