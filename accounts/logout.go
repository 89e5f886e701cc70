package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/storage"
)

// Back-channel logout (OIDC Back-Channel Logout 1.0). Every change that ends
// browser sessions or logs a whole account out queues, in its own
// transaction, one outbox row per notice to a relying party; the Worker
// hands each row to a LogoutSender, which signs a logout token and POSTs it,
// with the outbox's retry and backoff. Which relying parties hear of a
// logout is the LogoutAudience's decision (the oauth package's).

// OutboxBackchannelLogout is the outbox kind of back-channel logout notices.
const OutboxBackchannelLogout = "backchannel_logout"

// LogoutNotice is one logout token to send: to ClientID, naming the user
// and, when SID is set, one of their sessions. Without SID the relying
// party ends every session of the user.
type LogoutNotice struct {
	ClientID string `json:"client_id"`
	SID      string `json:"sid,omitempty"`
}

// LogoutAudience decides which relying parties to notify of a logout.
// Implementations read in q, the transaction that ends the sessions, so the
// answer matches what the change ends. oauth.BackchannelAudience implements it.
type LogoutAudience interface {
	// LogoutNotices returns the notices for userID: sessionIDs (browser
	// session ids) just ended; wholeUser says the account itself was logged
	// out (password reset, disabled, deleted), so relying parties the user
	// has tokens or consent with hear of it even without a session.
	LogoutNotices(ctx context.Context, q storage.Querier, userID string, sessionIDs []string, wholeUser bool) ([]LogoutNotice, error)
}

// logoutPayload is the outbox row of one notice.
type logoutPayload struct {
	LogoutNotice
	Subject string `json:"sub"`
}

// queueLogouts queues the notices for sessions of userID that ended, or for
// the whole account, in q, the transaction that ended them.
func (s *Service) queueLogouts(ctx context.Context, q storage.Querier, userID string, sessionIDs []string, wholeUser bool) error {
	if s.cfg.Logouts == nil || (len(sessionIDs) == 0 && !wholeUser) {
		return nil
	}
	notices, err := s.cfg.Logouts.LogoutNotices(ctx, q, userID, sessionIDs, wholeUser)
	if err != nil {
		return fmt.Errorf("accounts: back-channel logout recipients of %s: %w", userID, err)
	}
	if len(notices) == 0 {
		return nil
	}
	payloads := make([]string, 0, len(notices))
	for _, n := range notices {
		b, err := json.Marshal(logoutPayload{LogoutNotice: n, Subject: userID})
		if err != nil {
			return err
		}
		payloads = append(payloads, string(b))
	}
	if _, err := q.Exec(ctx, `INSERT INTO outbox (kind, type, payload)
		SELECT $1, 'logout_token', p::jsonb FROM unnest($2::text[]) AS p`, OutboxBackchannelLogout, payloads); err != nil {
		return fmt.Errorf("accounts: queue back-channel logouts of %s: %w", userID, err)
	}
	return nil
}

// endSessions ends the live sessions of userID (all, or all but keepID)
// and returns their ids.
func endSessions(ctx context.Context, q storage.Querier, userID, keepID string) ([]string, error) {
	rows, err := q.Query(ctx, `UPDATE browser_sessions SET revoked_at = now()
		WHERE user_id = $1 AND revoked_at IS NULL AND ($2 = '' OR id::text <> $2) RETURNING id::text`, userID, keepID)
	if err != nil {
		return nil, fmt.Errorf("accounts: revoke sessions of %s: %w", userID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("accounts: revoke sessions of %s: %w", userID, err)
	}
	return ids, nil
}

// logOutEverywhere ends every session of userID and queues the logout of
// the whole account, in q.
func (s *Service) logOutEverywhere(ctx context.Context, q storage.Querier, userID string) error {
	ids, err := endSessions(ctx, q, userID, "")
	if err != nil {
		return err
	}
	return s.queueLogouts(ctx, q, userID, ids, true)
}

// LogoutSender delivers one queued notice: it signs the logout token and
// POSTs it to the relying party. An error means "retry later"; a notice
// that can no longer be delivered (the client was deleted, or unregistered
// its logout URI) is done, and returns nil. oauth.BackchannelSender
// implements it.
type LogoutSender interface {
	SendLogout(ctx context.Context, d LogoutDelivery) error
}

// LogoutDelivery is one attempt at a queued notice.
type LogoutDelivery struct {
	// ID is the outbox row's id.
	ID      string
	Subject string
	LogoutNotice
	CreatedAt time.Time
	Attempt   int
}

func (w *Worker) deliverLogout(ctx context.Context, r outboxRow) error {
	var p logoutPayload
	if err := json.Unmarshal(r.payload, &p); err != nil {
		return fmt.Errorf("logout payload: %w", err)
	}
	return w.cfg.Logouts.SendLogout(ctx, LogoutDelivery{ID: r.id, Subject: p.Subject, LogoutNotice: p.LogoutNotice,
		CreatedAt: r.createdAt, Attempt: r.attempts})
}

// LogoutDeliveryStatus filters ListLogoutDeliveries.
type LogoutDeliveryStatus string

// Delivery states of a back-channel logout notice.
const (
	LogoutPending   LogoutDeliveryStatus = "pending"   // not delivered yet; retried
	LogoutFailed    LogoutDeliveryStatus = "failed"    // given up (older than the worker's LogoutMaxAge)
	LogoutDelivered LogoutDeliveryStatus = "delivered" // the relying party answered 2xx
)

// LogoutDeliveryInfo is a queued notice as administrators see it. It holds
// no token: tokens are signed at each attempt and never stored.
type LogoutDeliveryInfo struct {
	ID            string               `json:"id"`
	Status        LogoutDeliveryStatus `json:"status"`
	ClientID      string               `json:"client_id"`
	Subject       string               `json:"sub"`
	SID           string               `json:"sid,omitempty"`
	Attempts      int                  `json:"attempts"`
	LastError     string               `json:"last_error,omitempty"`
	CreatedAt     time.Time            `json:"created_at"`
	NextAttemptAt *time.Time           `json:"next_attempt_at,omitempty"`
	DeliveredAt   *time.Time           `json:"delivered_at,omitempty"`
	FailedAt      *time.Time           `json:"failed_at,omitempty"`
}

// ErrBadStatus is returned by ListLogoutDeliveries for an unknown status.
var ErrBadStatus = errors.New("accounts: unknown delivery status")

// ListLogoutDeliveries returns up to limit (1-500) back-channel logout
// notices in status (all when ""), for clientID when not "", newest first.
// Errors: ErrBadStatus.
func (s *Service) ListLogoutDeliveries(ctx context.Context, status LogoutDeliveryStatus, clientID string, limit int) ([]LogoutDeliveryInfo, error) {
	cond := map[LogoutDeliveryStatus]string{
		"":              "true",
		LogoutPending:   "delivered_at IS NULL AND failed_at IS NULL",
		LogoutFailed:    "failed_at IS NOT NULL",
		LogoutDelivered: "delivered_at IS NOT NULL",
	}[status]
	if cond == "" {
		return nil, ErrBadStatus
	}
	limit = min(max(limit, 1), 500)
	rows, err := s.pool.Query(ctx, `SELECT id::text, payload->>'client_id', coalesce(payload->>'sub', ''), coalesce(payload->>'sid', ''),
		attempts, last_error, created_at, next_attempt_at, delivered_at, failed_at
		FROM outbox WHERE kind = $1 AND `+cond+` AND ($2 = '' OR payload->>'client_id' = $2)
		ORDER BY created_at DESC, id LIMIT $3`, OutboxBackchannelLogout, clientID, limit)
	if err != nil {
		return nil, fmt.Errorf("accounts: list back-channel logouts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LogoutDeliveryInfo, error) {
		var d LogoutDeliveryInfo
		var next time.Time
		err := row.Scan(&d.ID, &d.ClientID, &d.Subject, &d.SID, &d.Attempts, &d.LastError, &d.CreatedAt, &next, &d.DeliveredAt, &d.FailedAt)
		switch {
		case d.FailedAt != nil:
			d.Status = LogoutFailed
		case d.DeliveredAt != nil:
			d.Status = LogoutDelivered
		default:
			d.Status, d.NextAttemptAt = LogoutPending, &next
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: list back-channel logouts: %w", err)
	}
	return out, nil
}

// listLogoutDeliveries is GET /admin/v1/backchannel-logouts: the newest
// notices (100 unless limit says otherwise), filtered by status and client.
func (h *AdminHandler) listLogoutDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := limitParam(r)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	if limit == 0 {
		limit = 100
	}
	items, err := h.svc.ListLogoutDeliveries(r.Context(), LogoutDeliveryStatus(q.Get("status")), q.Get("client_id"), limit)
	if errors.Is(err, ErrBadStatus) {
		problem.Write(w, r, problem.Invalid("status", "status is pending, failed or delivered"))
		return
	}
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	if items == nil {
		items = []LogoutDeliveryInfo{}
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}
