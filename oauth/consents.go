package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Consents are remembered per user and client as the scopes and audiences
// the user has granted (table oauth2_consents). A request is covered when
// every scope and every audience it asks for was shown and granted before.

// hasConsent reports whether user granted client every scope in scopes and
// every audience in audiences.
func (p *Provider) hasConsent(ctx context.Context, userID, clientID string, scopes, audiences []string) (bool, error) {
	var granted, grantedAud []string
	err := p.pool.QueryRow(ctx, `SELECT scopes, audiences FROM oauth2_consents WHERE user_id = $1 AND client_id = $2`,
		userID, clientID).Scan(&granted, &grantedAud)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("oauth: read consent: %w", err)
	}
	covered := func(want, have []string) bool {
		return !slices.ContainsFunc(want, func(s string) bool { return !slices.Contains(have, s) })
	}
	return covered(scopes, granted) && covered(audiences, grantedAud), nil
}

// saveConsent adds scopes and audiences to what user granted client.
func (p *Provider) saveConsent(ctx context.Context, userID, clientID string, scopes, audiences []string) error {
	if scopes == nil {
		scopes = []string{}
	}
	if audiences == nil {
		audiences = []string{}
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO oauth2_consents (user_id, client_id, scopes, audiences) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET
			scopes = ARRAY(SELECT DISTINCT s FROM unnest(oauth2_consents.scopes || EXCLUDED.scopes) AS s ORDER BY s),
			audiences = ARRAY(SELECT DISTINCT a FROM unnest(oauth2_consents.audiences || EXCLUDED.audiences) AS a ORDER BY a),
			updated_at = now()`, userID, clientID, scopes, audiences)
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
