package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/storage"
)

// ProfileUpdate holds the fields to change; nil means unchanged.
type ProfileUpdate struct {
	Name  *string
	Email *string
}

// UpdateProfile changes the user's name and/or email. A new email does not
// replace the login address: it becomes PendingEmail and a verification link
// is mailed to it; it takes over once verified. Setting the current address
// again cancels a pending change. It returns *PolicyError (field "name" or
// "email"), ErrEmailTaken and ErrNotFound.
func (s *Service) UpdateProfile(ctx context.Context, userID string, up ProfileUpdate) (*User, error) {
	var name, email string
	var err error
	if up.Name != nil {
		if name, err = CheckName("name", *up.Name); err != nil {
			return nil, err
		}
	}
	if up.Email != nil {
		if email, err = NormalizeEmail(*up.Email); err != nil {
			return nil, &PolicyError{Field: "email", Reason: "must be a valid email address"}
		}
	}
	sent := false // a verification link for a new address (counted after commit)
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		sent = false
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, userID))
		if err != nil {
			return err
		}
		changed := false
		if up.Name != nil && name != u.Name {
			if _, err := tx.Exec(ctx, `UPDATE users SET name = $2, updated_at = now() WHERE id = $1`, userID, name); err != nil {
				return fmt.Errorf("accounts: update name of %s: %w", userID, err)
			}
			u.Name, changed = name, true
		}
		if up.Email != nil {
			switch {
			case email == u.Email:
				if u.PendingEmail != "" {
					if _, err := tx.Exec(ctx, `UPDATE users SET pending_email = NULL, updated_at = now() WHERE id = $1`, userID); err != nil {
						return fmt.Errorf("accounts: cancel email change of %s: %w", userID, err)
					}
					u.PendingEmail, changed = "", true
				}
			case email != u.PendingEmail:
				var taken bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)`, email).Scan(&taken); err != nil {
					return fmt.Errorf("accounts: check email: %w", err)
				}
				if taken {
					return ErrEmailTaken
				}
				if _, err := tx.Exec(ctx, `UPDATE users SET pending_email = $2, updated_at = now() WHERE id = $1`, userID, email); err != nil {
					return fmt.Errorf("accounts: set pending email of %s: %w", userID, err)
				}
				// Links for an earlier pending address die with it.
				if err := invalidateTokens(ctx, tx, userID, purposeVerify, s.cfg.Now()); err != nil {
					return err
				}
				u.PendingEmail, changed = email, true
				if err := s.sendVerification(ctx, tx, u, email); err != nil {
					return err
				}
				sent = true
			}
		}
		if !changed {
			return nil
		}
		return s.emit(ctx, tx, EventUserUpdated, map[string]any{"user_id": u.ID, "email": u.Email, "name": u.Name, "pending_email": u.PendingEmail})
	})
	if err != nil {
		return nil, err
	}
	if sent {
		s.cfg.Metrics.verification("requested")
	}
	return s.User(ctx, userID)
}

// ChangePassword sets a new password after checking the current one. Every
// browser session of the user except keepSessionID ("" for none) ends, and a
// "password changed" notice is queued. Wrong current passwords count towards
// the login backoff. It returns ErrWrongPassword, *PolicyError (field
// "new_password"), *ThrottledError and ErrNotFound.
func (s *Service) ChangePassword(ctx context.Context, userID, current, next, keepSessionID string) error {
	if err := s.policy.Check("new_password", next); err != nil {
		return err
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	key := throttleKey(u.Email)
	if err := s.checkThrottle(ctx, key); err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, u.passwordHash, current)
	if err != nil {
		return err
	}
	if !ok {
		s.recordFailure(ctx, key)
		return ErrWrongPassword
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return err
	}
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		// Compare-and-set on the old hash: a concurrent change wins, not both.
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1 AND password_hash = $3`, userID, hash, u.passwordHash)
		if err != nil {
			return fmt.Errorf("accounts: set password of %s: %w", userID, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrWrongPassword
		}
		if err := s.RevokeUserSessions(ctx, tx, userID, keepSessionID); err != nil {
			return err
		}
		if err := s.auditSelf(ctx, tx, "user.password_changed", userID); err != nil {
			return err
		}
		return s.queueMail(ctx, tx, mail.PasswordChanged, u.Email, mail.Data{Name: u.Name})
	})
}

// SessionTokenRevoker is optionally implemented by Config.Revoker to revoke
// the OAuth tokens that were issued through one browser session.
type SessionTokenRevoker interface {
	RevokeSessionTokens(ctx context.Context, userID, sessionID string) error
}

// EndSession ends one of the user's browser sessions (and, when the revoker
// supports it, the tokens issued through it). It returns ErrNoSession.
func (s *Service) EndSession(ctx context.Context, userID, sessionID string) error {
	if err := s.RevokeSession(ctx, s.pool, userID, sessionID); err != nil {
		return err
	}
	if r, ok := s.cfg.Revoker.(SessionTokenRevoker); ok {
		if err := r.RevokeSessionTokens(ctx, userID, sessionID); err != nil {
			return fmt.Errorf("accounts: revoke tokens of session %s: %w", sessionID, err)
		}
	}
	return nil
}

// isNotFound reports the errors that map to 404.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoSession) }
