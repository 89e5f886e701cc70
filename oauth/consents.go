package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Consents are remembered per user and client as the set of scopes the user
// has granted (table oauth2_consents, migration 0006). A request is covered
// when every scope it asks for was granted before.

// hasConsent reports whether user granted client every scope in scopes.
func (p *Provider) hasConsent(ctx context.Context, userID, clientID string, scopes []string) (bool, error) {
	var granted []string
	err := p.pool.QueryRow(ctx, `SELECT scopes FROM oauth2_consents WHERE user_id = $1 AND client_id = $2`,
		userID, clientID).Scan(&granted)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("oauth: read consent: %w", err)
	}
	for _, s := range scopes {
		if !slices.Contains(granted, s) {
			return false, nil
		}
	}
	return true, nil
}

// saveConsent adds scopes to what user granted client.
func (p *Provider) saveConsent(ctx context.Context, userID, clientID string, scopes []string) error {
	if scopes == nil {
		scopes = []string{}
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO oauth2_consents (user_id, client_id, scopes) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, client_id) DO UPDATE SET
			scopes = ARRAY(SELECT DISTINCT s FROM unnest(oauth2_consents.scopes || EXCLUDED.scopes) AS s ORDER BY s),
			updated_at = now()`, userID, clientID, scopes)
	if err != nil {
		return fmt.Errorf("oauth: save consent: %w", err)
	}
	return nil
}

// RevokeConsent forgets every scope user granted client (the account page
// can offer it); the next authorization asks again.
func (p *Provider) RevokeConsent(ctx context.Context, userID, clientID string) error {
	_, err := p.pool.Exec(ctx, `DELETE FROM oauth2_consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	if err != nil {
		return fmt.Errorf("oauth: revoke consent: %w", err)
	}
	return nil
}
