package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/storage"
)

// Proof is how the caller of a sensitive change (email, password) shows it
// is the account's owner now, not merely someone holding a session or a
// token: the current password, or a login no older than Config.RecentAuth.
type Proof struct {
	// Password is the current password as typed ("" when not given).
	Password string
	// AuthTime is when the caller last logged in with a credential (an
	// access token's auth_time); zero when unknown.
	AuthTime time.Time
	// Session is the caller's browser session on the hosted pages (nil on
	// the API). Its AuthTime counts as the login time; it survives the
	// change while the user's other sessions end.
	Session *Session
}

func (p Proof) authTime() time.Time {
	if p.Session != nil {
		return p.Session.AuthTime
	}
	return p.AuthTime
}

func (p Proof) keepSessionID() string {
	if p.Session != nil {
		return p.Session.ID
	}
	return ""
}

// checkProof accepts a correct current password or a recent login. Wrong
// passwords count towards the login backoff, and are not checked while it
// lasts. It returns ErrWrongPassword, *ThrottledError and ErrReauthRequired.
func (s *Service) checkProof(ctx context.Context, u *User, p Proof) error {
	if p.Password != "" {
		return s.checkPassword(ctx, u, p.Password)
	}
	if t := p.authTime(); !t.IsZero() && s.cfg.Now().Sub(t) <= s.cfg.RecentAuth {
		return nil
	}
	return ErrReauthRequired
}

func (s *Service) checkPassword(ctx context.Context, u *User, password string) error {
	key := keyFor(ctx, u.Email)
	if err := s.checkThrottle(ctx, key); err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, u.passwordHash, password)
	if err != nil {
		return err
	}
	if !ok {
		s.recordFailure(ctx, key)
		return ErrWrongPassword
	}
	return nil
}

// ProfileUpdate holds the fields to change; nil means unchanged. A new
// email needs Proof; the name does not.
type ProfileUpdate struct {
	Name  *string
	Email *string
	Proof Proof
}

// UpdateProfile changes the user's name and/or email. A new email does not
// replace the login address: it becomes PendingEmail and a verification link
// is mailed to it; it takes over once verified (VerifyEmail). The current
// address is told, with a link that cancels the change. Setting the current
// address again cancels a pending change. Starting a change needs up.Proof
// and at most Config.EmailChanges may start per user per hour. It returns
// *PolicyError (field "name" or "email"), ErrEmailTaken, ErrNotFound,
// ErrReauthRequired, ErrWrongPassword, *ThrottledError and *TooSoonError.
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
		// Check the proof before the transaction: it may hash a password.
		u, err := s.User(ctx, userID)
		if err != nil {
			return nil, err
		}
		if email != u.Email && email != u.PendingEmail {
			if err := s.checkProof(ctx, u, up.Proof); err != nil {
				return nil, err
			}
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
					if err := s.dropPendingEmail(ctx, tx, userID); err != nil {
						return err
					}
					u.PendingEmail, changed = "", true
				}
			case email != u.PendingEmail:
				if err := s.startEmailChange(ctx, tx, u, email); err != nil {
					return err
				}
				u.PendingEmail, changed, sent = email, true, true
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

// startEmailChange records email as u's pending address, mails it a
// verification link and mails the current address a notice with a cancel
// link. u is locked by the caller's transaction.
func (s *Service) startEmailChange(ctx context.Context, tx pgx.Tx, u *User, email string) error {
	now := s.cfg.Now()
	// One cancel token is issued per change, so they count the changes.
	var n int
	var oldest time.Time
	if err := tx.QueryRow(ctx, `SELECT count(*), COALESCE(min(created_at), $3) FROM email_tokens
		WHERE user_id = $1 AND purpose = $2 AND created_at > $3`, u.ID, purposeCancel, now.Add(-time.Hour)).Scan(&n, &oldest); err != nil {
		return fmt.Errorf("accounts: count email changes: %w", err)
	}
	if n >= s.cfg.EmailChanges {
		return &TooSoonError{RetryAfter: oldest.Add(time.Hour).Sub(now)}
	}
	var taken bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)`, email).Scan(&taken); err != nil {
		return fmt.Errorf("accounts: check email: %w", err)
	}
	if taken {
		return ErrEmailTaken
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET pending_email = $2, updated_at = now() WHERE id = $1`, u.ID, email); err != nil {
		return fmt.Errorf("accounts: set pending email of %s: %w", u.ID, err)
	}
	// Links for an earlier pending address die with it.
	for _, p := range []string{purposeVerify, purposeCancel} {
		if err := invalidateTokens(ctx, tx, u.ID, p, now); err != nil {
			return err
		}
	}
	if err := s.sendVerification(ctx, tx, u, email); err != nil {
		return err
	}
	tok, err := s.issueToken(ctx, tx, u.ID, purposeCancel, u.Email, s.cfg.VerifyTTL)
	if err != nil {
		return err
	}
	return s.queueMail(ctx, tx, mail.EmailChangeRequested, u.Email, mail.Data{
		Name: greeting(u), NewEmail: email, Link: s.cfg.BaseURL + "/email/cancel?token=" + tok, Expires: humanDuration(s.cfg.VerifyTTL),
	})
}

// dropPendingEmail cancels a pending change and retires its links.
func (s *Service) dropPendingEmail(ctx context.Context, tx pgx.Tx, userID string) error {
	if _, err := tx.Exec(ctx, `UPDATE users SET pending_email = NULL, updated_at = now() WHERE id = $1`, userID); err != nil {
		return fmt.Errorf("accounts: cancel email change of %s: %w", userID, err)
	}
	for _, p := range []string{purposeVerify, purposeCancel} {
		if err := invalidateTokens(ctx, tx, userID, p, s.cfg.Now()); err != nil {
			return err
		}
	}
	return nil
}

// greeting is the name mail to u's current address may carry: only once
// that address is verified, so that signing up (or changing the email)
// with someone else's address cannot relay text of the signer's choosing.
func greeting(u *User) string {
	if u.EmailVerified {
		return u.Name
	}
	return ""
}

// ChangePassword sets a new password; the caller proves the account with
// the current password or a recent login (proof). In one transaction every
// browser session of the user except proof.Session ends, every outstanding
// reset link is retired and a "password changed" notice is queued; the
// user's OAuth tokens (refresh tokens included) are revoked through
// Config.Revoker as its last step, so a failed revocation rolls the change
// back. Wrong current passwords count towards the login backoff. It returns
// ErrWrongPassword, ErrReauthRequired, *PolicyError (field "new_password"),
// *ThrottledError and ErrNotFound.
func (s *Service) ChangePassword(ctx context.Context, userID string, proof Proof, next string) error {
	if err := s.policy.Check("new_password", next); err != nil {
		return err
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.checkProof(ctx, u, proof); err != nil {
		return err
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
		if err := s.RevokeUserSessions(ctx, tx, userID, proof.keepSessionID()); err != nil {
			return err
		}
		if err := invalidateTokens(ctx, tx, userID, purposeReset, s.cfg.Now()); err != nil {
			return err
		}
		if err := s.auditSelf(ctx, tx, "user.password_changed", userID); err != nil {
			return err
		}
		if err := s.queueMail(ctx, tx, mail.PasswordChanged, u.Email, mail.Data{Name: greeting(u)}); err != nil {
			return err
		}
		return s.revokeTokens(ctx, userID)
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
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		return s.RevokeSession(ctx, tx, userID, sessionID)
	})
	if err != nil {
		return err
	}
	return s.revokeSessionTokens(ctx, userID, sessionID)
}

// revokeSessionTokens revokes the tokens issued through an ended session,
// when the revoker supports it.
func (s *Service) revokeSessionTokens(ctx context.Context, userID, sessionID string) error {
	if r, ok := s.cfg.Revoker.(SessionTokenRevoker); ok {
		if err := r.RevokeSessionTokens(ctx, userID, sessionID); err != nil {
			return fmt.Errorf("accounts: revoke tokens of session %s: %w", sessionID, err)
		}
	}
	return nil
}

// isNotFound reports the errors that map to 404.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoSession) }
