package accounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/authd/authd/storage"
)

var roleNameRE = regexp.MustCompile(`^[a-z][a-z0-9_.:-]{0,63}$`)

// ValidRoleName reports whether name is a well-formed role name.
func ValidRoleName(name string) bool { return roleNameRE.MatchString(name) }

// Roles returns the user's roles, sorted; never nil.
func (s *Service) Roles(ctx context.Context, userID string) ([]string, error) {
	if !uuidRE.MatchString(userID) {
		return []string{}, nil
	}
	return rolesOf(ctx, s.pool, userID)
}

func rolesOf(ctx context.Context, q storage.Querier, userID string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role`, userID)
	if err != nil {
		return nil, fmt.Errorf("accounts: roles of %s: %w", userID, err)
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("accounts: roles of %s: %w", userID, err)
	}
	if roles == nil {
		roles = []string{}
	}
	return roles, nil
}

// AddRole gives the user a role; adding a role the user has is a no-op.
func (s *Service) AddRole(ctx context.Context, userID, role string) error {
	if err := addRole(ctx, s.pool, userID, role); err != nil {
		return err
	}
	s.userChanged(userID)
	return nil
}

func addRole(ctx context.Context, q storage.Querier, userID, role string) error {
	if !ValidRoleName(role) {
		return fmt.Errorf("%w: %q", ErrInvalidRole, role)
	}
	_, err := q.Exec(ctx, `INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, role)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign key: role or user missing
		if pe.ConstraintName == "user_roles_role_fkey" {
			return fmt.Errorf("%w: %q", ErrUnknownRole, role)
		}
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("accounts: add role %s to %s: %w", role, userID, err)
	}
	return nil
}

// RemoveRole takes a role from the user. It reports whether the user had it.
// When q is a transaction, this replica's cached copy of the user is dropped
// now, before the commit, so a read in between may cache the old roles until
// the trigger's notification drops them (a notification's latency); callers
// that need the change visible here at once drop it again after the commit,
// as UnassignRole does.
func (s *Service) RemoveRole(ctx context.Context, q storage.Querier, userID, role string) (bool, error) {
	tag, err := q.Exec(ctx, `DELETE FROM user_roles WHERE user_id = $1 AND role = $2`, userID, role)
	if err != nil {
		return false, fmt.Errorf("accounts: remove role %s from %s: %w", role, userID, err)
	}
	s.userChanged(userID)
	return tag.RowsAffected() == 1, nil
}
