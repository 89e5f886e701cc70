package accounts

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/audit"
)

// Errors of the admin operations (admin*.go).
var (
	ErrRoleExists  = errors.New("accounts: role already exists")
	ErrRoleInUse   = errors.New("accounts: role is still assigned to users")
	ErrRoleBuiltin = errors.New("accounts: built-in roles cannot be deleted")
	ErrBadCursor   = errors.New("accounts: invalid cursor")
)

// Page sizes of the admin listings.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// UserFilter selects users for ListUsers. Zero fields do not filter.
type UserFilter struct {
	// Query matches a case-insensitive substring of the email or the name.
	Query string
	// Role keeps users holding this role.
	Role string
	// Disabled, when set, keeps only disabled (true) or enabled (false) users.
	Disabled *bool
	// Cursor continues a previous listing (its NextCursor).
	Cursor string
	// Limit is the page size: DefaultPageSize when 0, at most MaxPageSize.
	Limit int
}

// UserPage is one page of users, newest first. NextCursor is nil on the last page.
type UserPage struct {
	Items      []*User `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// ListUsers returns the users matching f, newest first, paginated by keyset
// on (created_at, id) so pages stay stable while users are added. Errors:
// ErrBadCursor.
func (s *Service) ListUsers(ctx context.Context, f UserFilter) (*UserPage, error) {
	limit := pageSize(f.Limit)
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if q := strings.TrimSpace(f.Query); q != "" {
		p := arg("%" + likeEscape(strings.ToLower(q)) + "%")
		where = append(where, "(email LIKE "+p+" OR lower(name) LIKE "+p+")")
	}
	if f.Role != "" {
		where = append(where, "EXISTS (SELECT 1 FROM user_roles ur WHERE ur.user_id = users.id AND ur.role = "+arg(f.Role)+")")
	}
	if f.Disabled != nil {
		where = append(where, "disabled = "+arg(*f.Disabled))
	}
	if f.Cursor != "" {
		at, id, err := decodeUserCursor(f.Cursor)
		if err != nil {
			return nil, err
		}
		where = append(where, "(created_at, id) < ("+arg(at)+", "+arg(id)+"::uuid)")
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, fmt.Errorf("accounts: list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*User, error) { return scanUser(row) })
	if err != nil {
		return nil, fmt.Errorf("accounts: list users: %w", err)
	}
	page := &UserPage{Items: users}
	if len(users) > limit {
		page.Items = users[:limit]
		last := page.Items[limit-1]
		c := encodeUserCursor(last.CreatedAt, last.ID)
		page.NextCursor = &c
	}
	if page.Items == nil {
		page.Items = []*User{}
	}
	return page, nil
}

func pageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

// likeEscape makes s match literally inside a LIKE pattern.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// A user cursor is base64url("<created_at unix µs>.<id>"): microseconds are
// Postgres's precision, so the keyset comparison is exact.
func encodeUserCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "." + id))
}

func decodeUserCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	us, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || !uuidRE.MatchString(id) {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMicro(n), id, nil
}

// auditWith completes an admin event: origin carries the actor and request
// facts (audit.Event.FromRequest), the operation adds what happened.
func auditWith(origin audit.Event, typ, targetType, targetID string, details map[string]any) audit.Event {
	e := origin
	e.Type, e.TargetType, e.TargetID, e.Details = typ, targetType, targetID, details
	return e
}
