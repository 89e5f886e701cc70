package accounts

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// EndUserSession is an administrator ending one of the user's browser
// sessions: the session ends in the transaction of its audit event, and the
// tokens issued through it (when the revoker supports it) right after.
// Errors: ErrNotFound (malformed user id), ErrNoSession.
func (s *Service) EndUserSession(ctx context.Context, origin audit.Event, userID, sessionID string) error {
	if !uuidRE.MatchString(userID) {
		return ErrNotFound
	}
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if err := s.RevokeSession(ctx, tx, userID, sessionID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.log, auditWith(origin, "user.session_ended", "user", userID, map[string]any{"session_id": sessionID}))
	})
	if err != nil {
		return err
	}
	return s.revokeSessionTokens(ctx, userID, sessionID)
}

// ConfirmPresence checks that the holder of session is its user now, before
// a sensitive administrative action: password is the current password, or
// "" to rely on a login no older than Config.RecentAuth. Wrong passwords
// count towards the login backoff. Errors: ErrWrongPassword,
// *ThrottledError, ErrReauthRequired.
func (s *Service) ConfirmPresence(ctx context.Context, u *User, session *Session, password string) error {
	return s.checkProof(ctx, u, Proof{Password: password, Session: session})
}
