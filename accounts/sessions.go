package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// ErrNoSession means the cookie names no live session.
var ErrNoSession = errors.New("accounts: no such session")

// Session is a browser session behind the hosted pages' cookie.
type Session struct {
	ID string `json:"id"`
	// SID is the session's public id, the "sid" of ID and logout tokens.
	// Relying parties see it; it is neither the cookie nor ID.
	SID        string    `json:"-"`
	UserID     string    `json:"-"`
	AuthTime   time.Time `json:"auth_time"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// AMR are the RFC 8176 methods the login behind the session passed
	// ("pwd", and "otp", "mfa" after a second factor).
	AMR []string `json:"amr"`
}

// NewToken returns a random 256-bit token, URL-safe, and its SHA-256 for storage.
func NewToken() (token string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken is how session, reset and verification tokens are stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// CreateSession starts a browser session for userID after a password login
// and returns the cookie value (shown once; only its hash is stored).
func (s *Service) CreateSession(ctx context.Context, userID, userAgent, ip string) (string, *Session, error) {
	return s.CreateSessionWith(ctx, userID, userAgent, ip, []string{AMRPassword})
}

// CreateSessionWith is CreateSession for a login that passed the methods in
// amr (PassChallenge's answer).
func (s *Service) CreateSessionWith(ctx context.Context, userID, userAgent, ip string, amr []string) (string, *Session, error) {
	token, hash := NewToken()
	now := s.cfg.Now()
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	sess := &Session{UserID: userID, AuthTime: now, UserAgent: userAgent, IP: ip, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.cfg.SessionMaxAge), AMR: amr}
	err := s.pool.QueryRow(ctx, `INSERT INTO browser_sessions (token_hash, user_id, auth_time, user_agent, ip, created_at, last_seen_at, expires_at, amr)
		VALUES ($1,$2,$3,$4,$5,$3,$3,$6,$7) RETURNING id, sid`, hash, userID, now, userAgent, ip, sess.ExpiresAt, amr).Scan(&sess.ID, &sess.SID)
	if err != nil {
		return "", nil, fmt.Errorf("accounts: create session for %s: %w", userID, err)
	}
	return token, sess, nil
}

// SessionByToken returns the live session and its (enabled) user for a cookie
// value, and records that it was seen. A session is live until its absolute
// lifetime (SessionMaxAge) ends, and only while it was seen within
// SessionIdleTimeout.
func (s *Service) SessionByToken(ctx context.Context, token string) (*Session, *User, error) {
	if token == "" || len(token) > 128 {
		return nil, nil, ErrNoSession
	}
	var sess Session
	now := s.cfg.Now()
	err := s.pool.QueryRow(ctx, `UPDATE browser_sessions SET last_seen_at = $2
		WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3
		RETURNING id, sid, user_id, auth_time, user_agent, ip, created_at, last_seen_at, expires_at, amr`, HashToken(token), now, now.Add(-s.cfg.SessionIdleTimeout)).
		Scan(&sess.ID, &sess.SID, &sess.UserID, &sess.AuthTime, &sess.UserAgent, &sess.IP, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt, &sess.AMR)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, fmt.Errorf("accounts: look up session: %w", err)
	}
	u, err := s.User(ctx, sess.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrNoSession
	}
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, ErrNoSession
	}
	return &sess, u, nil
}

// Sessions lists the user's live sessions, newest first.
func (s *Service) Sessions(ctx context.Context, userID string) ([]Session, error) {
	now := s.cfg.Now()
	rows, err := s.pool.Query(ctx, `SELECT id, sid, user_id, auth_time, user_agent, ip, created_at, last_seen_at, expires_at, amr
		FROM browser_sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3
		ORDER BY created_at DESC`, userID, now, now.Add(-s.cfg.SessionIdleTimeout))
	if err != nil {
		return nil, fmt.Errorf("accounts: list sessions of %s: %w", userID, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Session, error) {
		var x Session
		err := row.Scan(&x.ID, &x.SID, &x.UserID, &x.AuthTime, &x.UserAgent, &x.IP, &x.CreatedAt, &x.LastSeenAt, &x.ExpiresAt, &x.AMR)
		return x, err
	})
}

// RevokeSession ends one session of the user, and queues the back-channel
// logout of its relying parties, in q (which should be a transaction);
// ErrNoSession if it is not theirs.
func (s *Service) RevokeSession(ctx context.Context, q storage.Querier, userID, sessionID string) error {
	if !uuidRE.MatchString(sessionID) {
		return ErrNoSession
	}
	tag, err := q.Exec(ctx, `UPDATE browser_sessions SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, sessionID, userID)
	if err != nil {
		return fmt.Errorf("accounts: revoke session %s: %w", sessionID, err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNoSession
	}
	return s.queueLogouts(ctx, q, userID, []string{sessionID}, false)
}

// RevokeSessionByToken ends the session behind a cookie value (logout) and
// queues the back-channel logout of its relying parties, in one transaction.
func (s *Service) RevokeSessionByToken(ctx context.Context, token string) error {
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var id, userID string
		err := tx.QueryRow(ctx, `UPDATE browser_sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL
			RETURNING id::text, user_id::text`, HashToken(token)).Scan(&id, &userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("accounts: end session: %w", err)
		}
		return s.queueLogouts(ctx, tx, userID, []string{id}, false)
	})
}

// RevokeUserSessions ends every session of the user except keepID (may be
// ""), and queues the back-channel logout of the ended sessions' relying
// parties, in q (which should be a transaction).
func (s *Service) RevokeUserSessions(ctx context.Context, q storage.Querier, userID, keepID string) error {
	ids, err := endSessions(ctx, q, userID, keepID)
	if err != nil {
		return err
	}
	return s.queueLogouts(ctx, q, userID, ids, false)
}
