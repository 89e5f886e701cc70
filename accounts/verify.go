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

// VerifyEmail uses a verification token. A token for the current address
// marks it verified; a token for the pending address makes it the login
// address. It returns ErrInvalidToken (unknown, used, expired or superseded
// by another email change) and ErrEmailTaken (the pending address was taken
// meanwhile).
func (s *Service) VerifyEmail(ctx context.Context, token string) (*User, error) {
	var uid string
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
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
		switch {
		case disabled:
			return ErrInvalidToken
		case addr == cur:
			_, err = tx.Exec(ctx, `UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1`, uid)
		case pending != nil && addr == *pending:
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
		return s.emit(ctx, tx, EventUserEmailVerified, map[string]any{"user_id": uid, "email": addr})
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Metrics.verification("completed")
	return s.User(ctx, uid)
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
