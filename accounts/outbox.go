package accounts

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/storage"
)

// Event types written to the outbox and delivered to AUTHD_WEBHOOK_URL.
const (
	EventUserRegistered    = "user.registered"
	EventUserEmailVerified = "user.email_verified"
	EventUserPasswordReset = "user.password_reset"
	EventUserUpdated       = "user.updated"
)

// emit queues a webhook event in q, the transaction of the change it reports,
// so the event exists if and only if the change committed.
func (s *Service) emit(ctx context.Context, q storage.Querier, typ string, data map[string]any) error {
	if !s.cfg.Webhooks {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("accounts: encode %s event: %w", typ, err)
	}
	if _, err := q.Exec(ctx, `INSERT INTO outbox (kind, type, payload) VALUES ('webhook', $1, $2)`, typ, b); err != nil {
		return fmt.Errorf("accounts: queue %s event: %w", typ, err)
	}
	return nil
}

// mailPayload is a queued message: the template and its data. Links in it
// carry live tokens, so the Worker strips Data once the mail is delivered.
type mailPayload struct {
	To   string    `json:"to"`
	Data mail.Data `json:"data"`
	// SealedLink replaces Data.Link when a LinkSealer is configured.
	SealedLink string `json:"sealed_link,omitempty"`
}

// queueMail queues template for to in q, the transaction of the change.
func (s *Service) queueMail(ctx context.Context, q storage.Querier, template, to string, d mail.Data) error {
	d.Email, d.BaseURL = to, s.cfg.BaseURL
	p := mailPayload{To: to, Data: d}
	if s.cfg.Links != nil && d.Link != "" {
		p.SealedLink, p.Data.Link = s.cfg.Links.Seal(d.Link, to), ""
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("accounts: encode %s mail: %w", template, err)
	}
	if _, err := q.Exec(ctx, `INSERT INTO outbox (kind, type, payload) VALUES ('mail', $1, $2)`, template, b); err != nil {
		return fmt.Errorf("accounts: queue %s mail: %w", template, err)
	}
	return nil
}
