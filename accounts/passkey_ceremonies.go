package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ceremony kinds.
const (
	CeremonyRegister     = "register"
	CeremonyLogin        = "login"
	CeremonySecondFactor = "second_factor"
)

// ErrNoCeremony means the ceremony token names no live ceremony of the
// expected kind: unknown, expired, or already used.
var ErrNoCeremony = errors.New("accounts: no such passkey ceremony")

// Ceremony is the server-side state of a WebAuthn ceremony between its
// options and its response: the library's session data, opaque here.
type Ceremony struct {
	Kind      string
	UserID    string // "" for a passwordless login
	SessionID string // the browser session a registration belongs to, or ""
	// ChallengeID is the pending login (Challenge.ID) a second-factor
	// ceremony answers, or "". A pending login has at most one: starting
	// another replaces it, and it dies with the pending login.
	ChallengeID string
	Data        json.RawMessage
	ExpiresAt   time.Time
}

// StartCeremony stores c and returns the token that names it (for the
// browser's cookie or form; only its hash is stored). A ceremony of a
// pending login replaces that login's earlier one (its token stops
// working), so showing the step page again never piles up rows.
func (s *Service) StartCeremony(ctx context.Context, c Ceremony) (string, error) {
	token, hash := NewToken()
	_, err := s.pool.Exec(ctx, `INSERT INTO webauthn_ceremonies (token_hash, kind, user_id, session_id, challenge_id, data, expires_at)
		VALUES ($1, $2, NULLIF($3, '')::uuid, NULLIF($4, '')::uuid, NULLIF($5, '')::uuid, $6, $7)
		ON CONFLICT (challenge_id) WHERE challenge_id IS NOT NULL DO UPDATE
		SET token_hash = EXCLUDED.token_hash, kind = EXCLUDED.kind, user_id = EXCLUDED.user_id,
		    data = EXCLUDED.data, expires_at = EXCLUDED.expires_at`,
		hash, c.Kind, c.UserID, c.SessionID, c.ChallengeID, c.Data, c.ExpiresAt)
	if err != nil {
		return "", fmt.Errorf("accounts: start %s ceremony: %w", c.Kind, err)
	}
	return token, nil
}

// TakeCeremony removes and returns the live ceremony of kind named by
// token. A ceremony is taken once, whatever the outcome of its check, so a
// challenge never serves two responses. It returns ErrNoCeremony.
func (s *Service) TakeCeremony(ctx context.Context, kind, token string) (*Ceremony, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNoCeremony
	}
	var c Ceremony
	var userID, sessionID, challengeID *string
	err := s.pool.QueryRow(ctx, `DELETE FROM webauthn_ceremonies WHERE token_hash = $1 AND kind = $2
		RETURNING kind, user_id::text, session_id::text, challenge_id::text, data, expires_at`, HashToken(token), kind).
		Scan(&c.Kind, &userID, &sessionID, &challengeID, &c.Data, &c.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoCeremony
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: take %s ceremony: %w", kind, err)
	}
	if !c.ExpiresAt.After(s.cfg.Now()) {
		return nil, ErrNoCeremony
	}
	if userID != nil {
		c.UserID = *userID
	}
	if sessionID != nil {
		c.SessionID = *sessionID
	}
	if challengeID != nil {
		c.ChallengeID = *challengeID
	}
	return &c, nil
}
