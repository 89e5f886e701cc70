package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// Purposes of email tokens.
const (
	purposeVerify = "verify_email"
	purposeReset  = "password_reset"
	purposeCancel = "cancel_email_change" // mailed to the old address of an email change
)

// issueToken stores a new 256-bit token for user, mailed to email, and
// returns it. Only its SHA-256 is stored.
func (s *Service) issueToken(ctx context.Context, q storage.Querier, userID, purpose, email string, ttl time.Duration) (string, error) {
	tok, hash := NewToken()
	now := s.cfg.Now()
	_, err := q.Exec(ctx, `INSERT INTO email_tokens (token_hash, user_id, purpose, email, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, hash, userID, purpose, email, now, now.Add(ttl))
	if err != nil {
		return "", fmt.Errorf("accounts: store %s token: %w", purpose, err)
	}
	return tok, nil
}

// consumeToken marks a live token used, in one statement so two concurrent
// uses cannot both succeed, and returns its user and address.
func (s *Service) consumeToken(ctx context.Context, q storage.Querier, purpose, token string) (userID, email string, err error) {
	if token == "" || len(token) > 128 {
		return "", "", ErrInvalidToken
	}
	err = q.QueryRow(ctx, `UPDATE email_tokens SET used_at = $3
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
		RETURNING user_id, email`, HashToken(token), purpose, s.cfg.Now()).Scan(&userID, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrInvalidToken
	}
	if err != nil {
		return "", "", fmt.Errorf("accounts: use %s token: %w", purpose, err)
	}
	return userID, email, nil
}

// tokenValid reports whether token is live, without using it.
func (s *Service) tokenValid(ctx context.Context, purpose, token string) (bool, error) {
	if token == "" || len(token) > 128 {
		return false, nil
	}
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM email_tokens
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3)`,
		HashToken(token), purpose, s.cfg.Now()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("accounts: check %s token: %w", purpose, err)
	}
	return ok, nil
}

// peekToken returns the user and address of a live token without using it
// (for pages that show what a link will do before a POST does it).
func (s *Service) peekToken(ctx context.Context, purpose, token string) (userID, email string, err error) {
	if token == "" || len(token) > 128 {
		return "", "", ErrInvalidToken
	}
	err = s.pool.QueryRow(ctx, `SELECT user_id, email FROM email_tokens
		WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`,
		HashToken(token), purpose, s.cfg.Now()).Scan(&userID, &email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", ErrInvalidToken
	}
	if err != nil {
		return "", "", fmt.Errorf("accounts: check %s token: %w", purpose, err)
	}
	return userID, email, nil
}

// invalidateTokens retires the user's unused tokens of purpose.
func invalidateTokens(ctx context.Context, q storage.Querier, userID, purpose string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE email_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`, userID, purpose, now)
	if err != nil {
		return fmt.Errorf("accounts: retire %s tokens: %w", purpose, err)
	}
	return nil
}

// lastTokenAt returns when the user's newest token of purpose was issued.
func lastTokenAt(ctx context.Context, q storage.Querier, userID, purpose string) (time.Time, bool, error) {
	var t time.Time
	err := q.QueryRow(ctx, `SELECT created_at FROM email_tokens WHERE user_id = $1 AND purpose = $2
		ORDER BY created_at DESC LIMIT 1`, userID, purpose).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("accounts: last %s token: %w", purpose, err)
	}
	return t, true, nil
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
