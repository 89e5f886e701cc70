package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// ErrAlreadyVerified means there is no address waiting for verification.
var ErrAlreadyVerified = errors.New("accounts: email already verified")

// EmailLink is what a verification link will do, for the page that asks
// for confirmation before a POST does it.
type EmailLink struct {
	UserID  string
	Address string // the address the link verifies
	// Change is true when the link makes Address the new login address
	// (an email change), which needs a Proof besides the link.
	Change bool
}

// PeekEmailLink describes a live verification link without using it. It
// returns ErrInvalidToken.
func (s *Service) PeekEmailLink(ctx context.Context, token string) (*EmailLink, error) {
	uid, addr, err := s.peekToken(ctx, purposeVerify, token)
	if err != nil {
		return nil, err
	}
	u, err := s.User(ctx, uid)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if u.Disabled || (addr != u.Email && addr != u.PendingEmail) {
		return nil, ErrInvalidToken
	}
	return &EmailLink{UserID: uid, Address: addr, Change: addr != u.Email}, nil
}

// VerifyEmail uses a verification token. A token for the current address
// marks it verified. A token for the pending address makes it the login
// address, but only with proof that the account's owner confirms it: their
// own browser session (proof.Session of the same user) or their password;
// the mailed link alone is not enough, since whoever asked for the change
// chose where it went. A completed change ends the user's other sessions,
// retires the reset links sent to the old address and revokes the user's
// OAuth tokens. It returns ErrInvalidToken (unknown, used, expired or
// superseded by another email change), ErrReauthRequired, ErrWrongPassword,
// *ThrottledError and ErrEmailTaken (the pending address was taken
// meanwhile).
func (s *Service) VerifyEmail(ctx context.Context, token string, proof Proof) (*User, error) {
	link, err := s.PeekEmailLink(ctx, token)
	if err != nil {
		return nil, err
	}
	if link.Change && (proof.Session == nil || proof.Session.UserID != link.UserID) {
		if proof.Password == "" {
			return nil, ErrReauthRequired
		}
		u, err := s.User(ctx, link.UserID)
		if err != nil {
			return nil, err
		}
		if err := s.checkPassword(ctx, u, proof.Password); err != nil {
			return nil, err
		}
	}
	var uid string
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var addr string
		var err error
		uid, addr, err = s.consumeToken(ctx, tx, purposeVerify, token)
		if err != nil {
			return err
		}
		var cur string
		var pending *string
		var disabled bool
		if err := tx.QueryRow(ctx, `SELECT email, pending_email, disabled FROM users WHERE id = $1 FOR UPDATE`, uid).Scan(&cur, &pending, &disabled); err != nil {
			return fmt.Errorf("accounts: load user %s: %w", uid, err)
		}
		change := false
		switch {
		case disabled:
			return ErrInvalidToken
		case addr == cur:
			_, err = tx.Exec(ctx, `UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1`, uid)
		case pending != nil && addr == *pending && link.Change:
			change = true
			_, err = tx.Exec(ctx, `UPDATE users SET email = pending_email, pending_email = NULL, email_verified = true, updated_at = now() WHERE id = $1`, uid)
			if storage.IsUniqueViolation(err, "users_email_key") {
				return ErrEmailTaken
			}
		default:
			return ErrInvalidToken
		}
		if err != nil {
			return fmt.Errorf("accounts: mark %s verified: %w", uid, err)
		}
		if err := s.auditSelf(ctx, tx, "user.email_verified", uid); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, EventUserEmailVerified, map[string]any{"user_id": uid, "email": addr}); err != nil {
			return err
		}
		if !change {
			return nil
		}
		// What the old address could do ends with it: its reset links, the
		// cancel link, and every session and token but the confirming one.
		for _, p := range []string{purposeReset, purposeCancel} {
			if err := invalidateTokens(ctx, tx, uid, p, s.cfg.Now()); err != nil {
				return err
			}
		}
		if err := s.RevokeUserSessions(ctx, tx, uid, proof.keepSessionID()); err != nil {
			return err
		}
		if err := s.auditSelf(ctx, tx, "user.email_changed", uid); err != nil {
			return err
		}
		return s.revokeTokens(ctx, uid)
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Metrics.verification("completed")
	return s.User(ctx, uid)
}

// CancelLinkValid reports whether a cancel link (mailed to the old address
// of an email change) is still usable, for the page that asks to confirm.
func (s *Service) CancelLinkValid(ctx context.Context, token string) (bool, error) {
	return s.tokenValid(ctx, purposeCancel, token)
}

// CancelEmailChange uses the link mailed to the old address of an email
// change: the pending address and its verification link are dropped. It
// returns ErrInvalidToken (unknown, used, expired, or the change already
// completed or was superseded).
func (s *Service) CancelEmailChange(ctx context.Context, token string) error {
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		uid, addr, err := s.consumeToken(ctx, tx, purposeCancel, token)
		if err != nil {
			return err
		}
		var cur string
		var pending *string
		if err := tx.QueryRow(ctx, `SELECT email, pending_email FROM users WHERE id = $1 FOR UPDATE`, uid).Scan(&cur, &pending); err != nil {
			return fmt.Errorf("accounts: load user %s: %w", uid, err)
		}
		if pending == nil || cur != addr {
			return ErrInvalidToken
		}
		if err := s.dropPendingEmail(ctx, tx, uid); err != nil {
			return err
		}
		return s.auditSelf(ctx, tx, "user.email_change_cancelled", uid)
	})
}

// ResendVerification mails a new verification link for the user's pending
// address, or their current one if unverified. It returns ErrAlreadyVerified,
// and *TooSoonError when the last link went out less than ResendInterval ago.
func (s *Service) ResendVerification(ctx context.Context, userID string) error {
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	addr := u.PendingEmail
	if addr == "" {
		if u.EmailVerified {
			return ErrAlreadyVerified
		}
		addr = u.Email
	}
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		// Serialise resends of one user so the interval check holds.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, u.ID); err != nil {
			return fmt.Errorf("accounts: lock user %s: %w", u.ID, err)
		}
		last, ok, err := lastTokenAt(ctx, tx, u.ID, purposeVerify)
		if err != nil {
			return err
		}
		if wait := last.Add(s.cfg.ResendInterval).Sub(s.cfg.Now()); ok && wait > 0 {
			return &TooSoonError{RetryAfter: wait}
		}
		return s.sendVerification(ctx, tx, u, addr)
	})
	if err == nil {
		s.cfg.Metrics.verification("requested")
	}
	return err
}

// TooSoonError is a rate-limited resend; errors.Is(err, ErrTooSoon) matches.
type TooSoonError struct{ RetryAfter time.Duration }

func (e *TooSoonError) Error() string {
	return fmt.Sprintf("accounts: please wait %s before asking again", e.RetryAfter.Round(time.Second))
}

// Is lets errors.Is(err, ErrTooSoon) match.
func (e *TooSoonError) Is(target error) bool { return target == ErrTooSoon }
