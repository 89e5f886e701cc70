package accounts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEvent is one row of the audit log, as the admin API shows it.
type AuditEvent struct {
	ID         int64           `json:"id"`
	OccurredAt time.Time       `json:"occurred_at"`
	Type       string          `json:"type"`
	ActorType  string          `json:"actor_type"`
	ActorID    string          `json:"actor_id"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	Outcome    string          `json:"outcome"`
	RequestID  string          `json:"request_id"`
	IP         string          `json:"ip"`
	UserAgent  string          `json:"user_agent"`
	Details    json.RawMessage `json:"details"`
}

// AuditFilter selects audit events. Zero fields do not filter.
type AuditFilter struct {
	ActorID  string // exact actor id (a user id or client id)
	TargetID string // exact target id
	Type     string // exact event type, e.g. user.role_added
	// Since and Until bound occurred_at to [Since, Until); zero is open.
	Since, Until time.Time
	Cursor       string
	Limit        int // DefaultPageSize when 0, at most MaxPageSize
}

// AuditPage is one page of events, newest first.
type AuditPage struct {
	Items      []AuditEvent `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

// ListAudit returns audit events matching f, newest first, paginated by
// keyset on the event id. Errors: ErrBadCursor.
func (s *Service) ListAudit(ctx context.Context, f AuditFilter) (*AuditPage, error) {
	limit := pageSize(f.Limit)
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if f.ActorID != "" {
		where = append(where, "actor_id = "+arg(f.ActorID))
	}
	if f.TargetID != "" {
		where = append(where, "target_id = "+arg(f.TargetID))
	}
	if f.Type != "" {
		where = append(where, "type = "+arg(f.Type))
	}
	if !f.Since.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "occurred_at < "+arg(f.Until))
	}
	if f.Cursor != "" {
		id, err := decodeAuditCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		where = append(where, "id < "+arg(id))
	}
	rows, err := s.pool.Query(ctx, `SELECT id, occurred_at, type, actor_type, actor_id, target_type, target_id,
		outcome, request_id, ip, user_agent, details FROM audit_events WHERE `+strings.Join(where, " AND ")+
		` ORDER BY id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, fmt.Errorf("accounts: list audit events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditEvent, error) {
		var e AuditEvent
		err := row.Scan(&e.ID, &e.OccurredAt, &e.Type, &e.ActorType, &e.ActorID, &e.TargetType, &e.TargetID,
			&e.Outcome, &e.RequestID, &e.IP, &e.UserAgent, &e.Details)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: list audit events: %w", err)
	}
	page := &AuditPage{Items: events}
	if len(events) > limit {
		page.Items = events[:limit]
		c := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(page.Items[limit-1].ID, 10)))
		page.NextCursor = &c
	}
	if page.Items == nil {
		page.Items = []AuditEvent{}
	}
	return page, nil
}

func decodeAuditCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, ErrBadCursor
	}
	id, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || id < 1 {
		return 0, ErrBadCursor
	}
	return id, nil
}
