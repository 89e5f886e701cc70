package accounts

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/storage"
)

// purposeLink is a mailed link proving an account before an upstream
// identity is linked to it.
const purposeLink = "link_identity"

// linkProofTTL is short: the browser that asked must still hold its pending
// upstream identity when the link is opened.
const linkProofTTL = 15 * time.Minute

// SendLinkProof mails the user (at their current, verified or not, login
// address: the one an attacker would have to control) a link to path?token=…
// that proves the account, for linking the identity of the upstream
// provider named provider. It returns *TooSoonError when the last one went
// out less than ResendInterval ago.
func (s *Service) SendLinkProof(ctx context.Context, userID, provider, path string) error {
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, u.ID); err != nil {
			return fmt.Errorf("accounts: lock user %s: %w", u.ID, err)
		}
		last, ok, err := lastTokenAt(ctx, tx, u.ID, purposeLink)
		if err != nil {
			return err
		}
		if wait := last.Add(s.cfg.ResendInterval).Sub(s.cfg.Now()); ok && wait > 0 {
			return &TooSoonError{RetryAfter: wait}
		}
		tok, err := s.issueToken(ctx, tx, u.ID, purposeLink, u.Email, linkProofTTL)
		if err != nil {
			return err
		}
		return s.queueMail(ctx, tx, mail.LinkIdentity, u.Email, mail.Data{
			Name: u.Name, Provider: provider, Expires: humanDuration(linkProofTTL),
			Link: s.cfg.BaseURL + path + "?" + url.Values{"token": {tok}}.Encode(),
		})
	})
}

// LinkProofValid reports whether a mailed link-proof token is live, without
// using it (the GET of the link only shows a confirmation).
func (s *Service) LinkProofValid(ctx context.Context, token string) (bool, error) {
	return s.tokenValid(ctx, purposeLink, token)
}

// ConsumeLinkProof uses a mailed link-proof token inside q's transaction and
// returns the user it proves. It returns ErrInvalidToken.
func (s *Service) ConsumeLinkProof(ctx context.Context, q storage.Querier, token string) (string, error) {
	uid, _, err := s.consumeToken(ctx, q, purposeLink, token)
	return uid, err
}
