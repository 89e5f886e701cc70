package fositestore

import (
	"context"
	"time"

	"github.com/ory/fosite"
)

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage. The row
// remembers the access token issued with it.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	args, err := newRow(signature, r, fosite.RefreshToken)
	if err != nil {
		return err
	}
	atSig := ""
	if accessSignature != "" {
		atSig = hashKey(accessSignature)
	}
	_, err = s.q(ctx).Exec(ctx, `INSERT INTO oauth2_refresh (`+insertColumns+`, access_token_signature)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, append(args, atSig)...)
	return mapErr("create oauth2_refresh", err)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A used or
// revoked token returns the request with fosite.ErrInactiveToken, and fosite
// then revokes the whole family. The one exception is a context marked by
// WithinReuseWindow: there a token rotated less than Options.ReuseWindow ago
// whose response was saved counts as active, so fosite authenticates the
// client and checks ownership without revoking anything (see the package
// doc).
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	var (
		firstUsed  *time.Time
		hasReplied bool
	)
	r, active, err := s.getRequest(ctx, tableRefresh, signature, session,
		`, t.first_used_at, t.rotated_response IS NOT NULL`, &firstUsed, &hasReplied)
	if err != nil {
		return nil, err
	}
	if active {
		return r, nil
	}
	if inReuseWindow(ctx) && hasReplied && firstUsed != nil && s.withinWindow(*firstUsed) {
		return r, nil
	}
	return r, fosite.ErrInactiveToken
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage. fosite
// calls it for the reused token when it detects reuse; a missing row is not
// an error, since any error there would abort the family's revocation.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deleteRequest(ctx, tableRefresh, signature)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage. It marks the
// presented token used (active=false, first_used_at=now) with an update
// guarded by its own signature, not by request_id: a request that read the
// token before a concurrent rotation committed must not match the winner's
// new token (FOSITE-NOTES §4). Losing that race is fosite.ErrInactiveToken,
// which fosite answers with "retry" and no revocation. The family's access
// tokens are then deleted, and any other still-active refresh token of the
// family deactivated, before fosite inserts the new pair.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	tag, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_refresh SET active = false, first_used_at = $2
		WHERE signature = $1 AND active`, hashKey(signature), s.clock())
	if err != nil {
		return mapErr("rotate refresh token", err)
	}
	if tag.RowsAffected() != 1 {
		return fosite.ErrInactiveToken
	}
	if _, err := s.q(ctx).Exec(ctx, `DELETE FROM oauth2_access WHERE request_id = $1`, requestID); err != nil {
		return mapErr("rotate refresh token", err)
	}
	_, err = s.q(ctx).Exec(ctx, `UPDATE oauth2_refresh SET active = false WHERE request_id = $1 AND active`, requestID)
	return mapErr("rotate refresh token", err)
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: it
// deactivates every refresh token of the family requestID and drops their
// cached responses, so no revoked token is replayable inside the window.
// Rows stay until they expire, so later reuse is still detected.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	_, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_refresh SET active = false, rotated_response = NULL
		WHERE request_id = $1`, requestID)
	return mapErr("revoke refresh tokens", err)
}

type reuseWindowKey struct{}

// WithinReuseWindow marks ctx for the one NewAccessRequest call that replays
// a cached refresh response (see the package doc). Only under this marker
// does GetRefreshTokenSession treat a recently rotated token as active.
func WithinReuseWindow(ctx context.Context) context.Context {
	return context.WithValue(ctx, reuseWindowKey{}, true)
}

func inReuseWindow(ctx context.Context) bool {
	v, _ := ctx.Value(reuseWindowKey{}).(bool)
	return v
}

func (s *Store) withinWindow(firstUsed time.Time) bool {
	return s.window > 0 && s.clock().Before(firstUsed.Add(s.window))
}

// RefreshState is what LockRefreshToken read from the locked row.
type RefreshState struct {
	Found           bool // false: no such token (the other fields are zero)
	Active          bool // not yet used
	ClientID        string
	FirstUsedAt     time.Time // zero until the token is rotated
	RotatedResponse []byte    // opaque blob saved by SaveRotatedResponse; nil when none or revoked
}

// LockRefreshToken reads the refresh token row by signature (as fosite's
// strategy computes it) with SELECT … FOR UPDATE, so concurrent refreshes of
// one token queue behind each other until the holder commits. ctx must carry
// a transaction, best READ COMMITTED (see the package doc); otherwise it
// returns ErrNoTransaction. A missing token is RefreshState{Found: false}.
func (s *Store) LockRefreshToken(ctx context.Context, signature string) (RefreshState, error) {
	if _, ok := ctx.Value(txKey{}).(*txState); !ok {
		return RefreshState{}, ErrNoTransaction
	}
	var (
		rs        RefreshState
		firstUsed *time.Time
	)
	err := s.q(ctx).QueryRow(ctx, `SELECT active, client_id, first_used_at, rotated_response
		FROM oauth2_refresh WHERE signature = $1 FOR UPDATE`, hashKey(signature)).
		Scan(&rs.Active, &rs.ClientID, &firstUsed, &rs.RotatedResponse)
	if err = mapErr("lock refresh token", err); err == ErrNotFound {
		return RefreshState{}, nil
	} else if err != nil {
		return RefreshState{}, err
	}
	rs.Found = true
	if firstUsed != nil {
		rs.FirstUsedAt = firstUsed.UTC()
	}
	return rs, nil
}

// Replayable reports whether rs is a token rotated less than
// Options.ReuseWindow ago whose response was saved: the caller should then
// replay RotatedResponse under WithinReuseWindow instead of rotating again.
func (s *Store) Replayable(rs RefreshState) bool {
	return rs.Found && !rs.Active && len(rs.RotatedResponse) > 0 &&
		!rs.FirstUsedAt.IsZero() && s.withinWindow(rs.FirstUsedAt)
}

// SaveRotatedResponse stores blob (the already-encrypted token response) on
// the refresh token just rotated in this transaction, for replay to honest
// retries within the window. It returns ErrNotFound unless the token exists
// and has been rotated.
func (s *Store) SaveRotatedResponse(ctx context.Context, signature string, blob []byte) error {
	tag, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_refresh SET rotated_response = $2
		WHERE signature = $1 AND NOT active AND first_used_at IS NOT NULL`, hashKey(signature), blob)
	if err != nil {
		return mapErr("save rotated response", err)
	}
	if tag.RowsAffected() != 1 {
		return ErrNotFound
	}
	return nil
}
