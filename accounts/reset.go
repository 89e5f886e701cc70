package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/storage"
)

// ForgotPassword mails a reset link to the account with that email, if there
// is an enabled one. It returns nil whether or not the account exists, and
// does comparable database work in both cases, so neither the answer nor its
// timing tells who has an account. A newer link retires older ones; links
// are not re-sent more often than ResendInterval (silently).
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	u, err := s.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		u = nil
	} else if err != nil {
		return err
	}
	s.cfg.Metrics.reset("requested")
	sent := false
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		sent = false
		if u == nil || u.Disabled {
			// Same shape of work as below, minus the writes.
			_, _, err := lastTokenAt(ctx, tx, "00000000-0000-0000-0000-000000000000", purposeReset)
			return err
		}
		last, ok, err := lastTokenAt(ctx, tx, u.ID, purposeReset)
		if err != nil {
			return err
		}
		if ok && s.cfg.Now().Sub(last) < s.cfg.ResendInterval {
			return nil // a link just went out; don't flood the mailbox
		}
		if err := invalidateTokens(ctx, tx, u.ID, purposeReset, s.cfg.Now()); err != nil {
			return err
		}
		tok, err := s.issueToken(ctx, tx, u.ID, purposeReset, u.Email, s.cfg.ResetTTL)
		if err != nil {
			return err
		}
		if err := s.queueMail(ctx, tx, mail.PasswordReset, u.Email, mail.Data{
			Name: greeting(u), Link: s.cfg.BaseURL + "/password/reset?token=" + tok, Expires: humanDuration(s.cfg.ResetTTL),
		}); err != nil {
			return err
		}
		sent = true
		return nil
	})
	if err == nil && sent {
		s.cfg.Metrics.reset("sent")
	}
	return err
}

// ResetTokenValid reports whether a reset link is still usable (for the page
// showing the new-password form).
func (s *Service) ResetTokenValid(ctx context.Context, token string) (bool, error) {
	return s.tokenValid(ctx, purposeReset, token)
}

// ResetPassword sets a new password with a reset token: it applies the
// policy, ends every browser session, revokes every OAuth token of the user
// (through Config.Revoker), clears the login backoff, and queues the
// "password changed" notice and the user.password_reset event. It returns
// *PolicyError (field "password") and ErrInvalidToken.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (*User, error) {
	if err := s.policy.Check("password", password); err != nil {
		return nil, err
	}
	// Check before hashing so forged tokens cannot make us burn bcrypt time.
	if ok, err := s.tokenValid(ctx, purposeReset, token); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrInvalidToken
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	var uid string
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var addr string
		var err error
		if uid, addr, err = s.consumeToken(ctx, tx, purposeReset, token); err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, uid))
		if err != nil {
			return err
		}
		if u.Disabled || u.Email != addr {
			return ErrInvalidToken // the login address changed since the link was sent
		}
		// Following the link proves the mailbox, so the address is verified too.
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2, email_verified = true, updated_at = now() WHERE id = $1`, uid, hash); err != nil {
			return fmt.Errorf("accounts: set password of %s: %w", uid, err)
		}
		if err := invalidateTokens(ctx, tx, uid, purposeReset, s.cfg.Now()); err != nil {
			return err
		}
		if err := s.logOutEverywhere(ctx, tx, uid); err != nil {
			return err
		}
		if err := s.auditSelf(ctx, tx, "user.password_reset", uid); err != nil {
			return err
		}
		if err := clearAllFailures(ctx, tx, u.Email); err != nil {
			return err
		}
		if err := s.queueMail(ctx, tx, mail.PasswordChanged, u.Email, mail.Data{Name: greeting(u)}); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EventUserPasswordReset, map[string]any{"user_id": uid, "email": u.Email}); err != nil {
			return err
		}
		// Last, so a failure rolls the reset back and the link can be retried;
		// revoking twice (on a retried transaction) is harmless.
		return s.revokeTokens(ctx, uid)
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Metrics.reset("completed")
	return s.User(ctx, uid)
}

func (s *Service) revokeTokens(ctx context.Context, userID string) error {
	if s.cfg.Revoker == nil {
		return nil
	}
	if err := s.cfg.Revoker.RevokeSubject(ctx, userID); err != nil {
		return fmt.Errorf("accounts: revoke OAuth tokens of %s: %w", userID, err)
	}
	return nil
}
