package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// Role is a named role users can hold.
type Role struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Builtin     bool      `json:"builtin"`
	Users       int64     `json:"users"` // how many users hold it
	CreatedAt   time.Time `json:"created_at"`
}

// MaxRoleDescription bounds a role's description, in bytes.
const MaxRoleDescription = 500

// ListRoles returns every role, by name.
func (s *Service) ListRoles(ctx context.Context) ([]Role, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, description, builtin,
		(SELECT count(*) FROM user_roles ur WHERE ur.role = roles.name), created_at
		FROM roles ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("accounts: list roles: %w", err)
	}
	roles, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Role, error) {
		var r Role
		err := row.Scan(&r.Name, &r.Description, &r.Builtin, &r.Users, &r.CreatedAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: list roles: %w", err)
	}
	if roles == nil {
		roles = []Role{}
	}
	return roles, nil
}

// CreateRole adds a role. Errors: ErrInvalidRole (bad name or description
// too long), ErrRoleExists.
func (s *Service) CreateRole(ctx context.Context, origin audit.Event, name, description string) (*Role, error) {
	if !ValidRoleName(name) {
		return nil, fmt.Errorf("%w: %q must match ^[a-z][a-z0-9_.:-]{0,63}$", ErrInvalidRole, name)
	}
	description = strings.TrimSpace(description)
	if len(description) > MaxRoleDescription {
		return nil, fmt.Errorf("%w: description longer than %d bytes", ErrInvalidRole, MaxRoleDescription)
	}
	r := &Role{Name: name, Description: description}
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO roles (name, description) VALUES ($1, $2) RETURNING created_at`,
			name, description).Scan(&r.CreatedAt)
		if storage.IsUniqueViolation(err, "roles_pkey") {
			return ErrRoleExists
		}
		if err != nil {
			return fmt.Errorf("accounts: create role %s: %w", name, err)
		}
		return audit.Record(ctx, tx, s.log, auditWith(origin, "role.created", "role", name, map[string]any{"description": description}))
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteRole removes a role nobody holds. Errors: ErrUnknownRole,
// ErrRoleBuiltin, ErrRoleInUse.
func (s *Service) DeleteRole(ctx context.Context, origin audit.Event, name string) error {
	if !ValidRoleName(name) {
		return fmt.Errorf("%w: %q", ErrUnknownRole, name)
	}
	return storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var builtin bool
		err := tx.QueryRow(ctx, `SELECT builtin FROM roles WHERE name = $1 FOR UPDATE`, name).Scan(&builtin)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: %q", ErrUnknownRole, name)
		}
		if err != nil {
			return fmt.Errorf("accounts: delete role %s: %w", name, err)
		}
		if builtin {
			return ErrRoleBuiltin
		}
		// The foreign key from user_roles decides "in use": it also catches
		// an assignment committed between a count and the delete.
		_, err = tx.Exec(ctx, `DELETE FROM roles WHERE name = $1`, name)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" {
			return ErrRoleInUse
		}
		if err != nil {
			return fmt.Errorf("accounts: delete role %s: %w", name, err)
		}
		return audit.Record(ctx, tx, s.log, auditWith(origin, "role.deleted", "role", name, nil))
	})
}
