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
	if s.deferCreate(ctx, tableRefresh, append(args, atSig), r.GetID()) {
		return nil // written with the pending rotation (rotation.go)
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
	var (
		r      *fosite.Request
		active bool
		err    error
	)
	if lr := s.lockedRow(ctx, signature); lr != nil {
		// The row this transaction holds FOR UPDATE: nobody else can have
		// changed it, and our own writes to it dropped the copy.
		r, err = lr.row.request(tableRefresh, session)
		active, firstUsed, hasReplied = lr.row.active, lr.firstUsed, len(lr.rotated) > 0
	} else {
		r, active, err = s.getRequest(ctx, tableRefresh, signature, session,
			`, t.first_used_at, t.rotated_response IS NOT NULL`, &firstUsed, &hasReplied)
	}
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

// RefreshTokenSubject returns the subject and client of the refresh token
// signature (as fosite's strategy computes it), used or not, without a lock
// and without decoding its session: what the token endpoint needs to read
// the user before the refresh protocol takes its lock. A missing token is
// ErrNotFound.
func (s *Store) RefreshTokenSubject(ctx context.Context, signature string) (subject, clientID string, err error) {
	err = s.q(ctx).QueryRow(ctx, `SELECT subject, client_id FROM oauth2_refresh WHERE signature = $1`,
		hashKey(signature)).Scan(&subject, &clientID)
	return subject, clientID, mapErr("get refresh token subject", err)
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage. fosite
// calls it for the reused token when it detects reuse; a missing row is not
// an error, since any error there would abort the family's revocation.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	s.forgetLocked(ctx)
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
	if s.deferRotation(ctx, requestID, signature) {
		// This transaction holds the row locked and saw it active: the
		// guarded UPDATE cannot lose, and it is written together with the
		// new pair and the saved response (rotation.go).
		s.noteRevoked(ctx, revKey{'r', requestID})
		return nil
	}
	key := hashKey(signature)
	s.forgetLocked(ctx)
	// One statement, one round trip: the guarded UPDATE decides, and the
	// other two parts act only when it changed the row. They run on the
	// same snapshot and row locks as three statements would, and the
	// family UPDATE skips the presented row (a row may change once per
	// statement).
	var rotated bool
	err := s.q(ctx).QueryRow(ctx, `WITH used AS (
			UPDATE oauth2_refresh SET active = false, first_used_at = $2
			WHERE signature = $1 AND active RETURNING 1
		), dropped AS (
			DELETE FROM oauth2_access WHERE request_id = $3 AND EXISTS (SELECT 1 FROM used)
		), family AS (
			UPDATE oauth2_refresh SET active = false
			WHERE request_id = $3 AND active AND signature <> $1 AND EXISTS (SELECT 1 FROM used)
		)
		SELECT EXISTS (SELECT 1 FROM used)`, key, s.clock(), requestID).Scan(&rotated)
	if err != nil {
		return mapErr("rotate refresh token", err)
	}
	if !rotated {
		return fosite.ErrInactiveToken
	}
	s.noteRevoked(ctx, revKey{'r', requestID})
	return nil
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: it
// deactivates every refresh token of the family requestID and drops their
// cached responses, so no revoked token is replayable inside the window.
// Rows stay until they expire, so later reuse is still detected.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	s.forgetLocked(ctx)
	_, err := s.q(ctx).Exec(ctx, `UPDATE oauth2_refresh SET active = false, rotated_response = NULL
		WHERE request_id = $1`, requestID)
	if err == nil {
		s.noteRevoked(ctx, revKey{'r', requestID})
	}
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
	st, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return RefreshState{}, ErrNoTransaction
	}
	sql, lr, dest := lockQuery(signature)
	return s.locked(st, lr, s.q(ctx).QueryRow(ctx, sql, lr.key).Scan(dest...))
}

// lockQuery is LockRefreshToken's statement, the row it fills and the scan
// targets. The whole row (and its client) comes back with the lock, so
// fosite's GetRefreshTokenSession that follows in this transaction costs no
// round trip. FOR UPDATE OF t: the client row is not locked.
func lockQuery(signature string) (string, *lockedRefresh, []any) {
	lr := &lockedRefresh{key: hashKey(signature)}
	dest := append(lr.row.dest(), &lr.firstUsed, &lr.rotated, &lr.accessKey)
	dest = append(dest, clientDest(&lr.row.client)...)
	return `SELECT ` + requestColumns + `, t.first_used_at, t.rotated_response, t.access_token_signature, ` + clientColumns + `
		FROM oauth2_refresh t JOIN oauth2_clients c ON c.id = t.client_id
		WHERE t.signature = $1 FOR UPDATE OF t`, lr, dest
}

// locked records lr, scanned with error err, as st's locked row.
func (s *Store) locked(st *txState, lr *lockedRefresh, err error) (RefreshState, error) {
	if err = mapErr("lock refresh token", err); err == ErrNotFound {
		return RefreshState{}, nil
	} else if err != nil {
		return RefreshState{}, err
	}
	st.shared.mu.Lock()
	st.shared.locked = lr
	st.shared.mu.Unlock()
	rs := RefreshState{Found: true, Active: lr.row.active, ClientID: lr.row.client.ID, RotatedResponse: lr.rotated}
	if lr.firstUsed != nil {
		rs.FirstUsedAt = lr.firstUsed.UTC()
	}
	return rs, nil
}

// lockedRefresh is the refresh token row LockRefreshToken read under its
// lock, kept on the transaction until this transaction writes to it.
type lockedRefresh struct {
	key       string
	row       requestRow
	firstUsed *time.Time
	rotated   []byte
	accessKey string // hashed signature of the access token issued with it
}

// lockedRow returns the locked copy of the row keyed by signature, if ctx's
// transaction holds one.
func (s *Store) lockedRow(ctx context.Context, signature string) *lockedRefresh {
	st, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return nil
	}
	st.shared.mu.Lock()
	lr := st.shared.locked
	st.shared.mu.Unlock()
	if lr == nil || lr.key != hashKey(signature) {
		return nil
	}
	return lr
}

// forgetLocked drops the locked copy before a write to oauth2_refresh.
func (s *Store) forgetLocked(ctx context.Context) {
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		st.shared.mu.Lock()
		st.shared.locked = nil
		st.shared.mu.Unlock()
	}
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
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		st.shared.mu.Lock()
		p := st.shared.pending
		held := p != nil && p.key == hashKey(signature)
		if held {
			p.blob = blob
		}
		st.shared.mu.Unlock()
		if held {
			if _, ok := st.tx.(*pipeTx); ok {
				return nil // written with the COMMIT, in one round trip (Commit)
			}
			return s.flushPending(ctx, st)
		}
	}
	s.forgetLocked(ctx)
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
