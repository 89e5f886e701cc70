package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// The admin mutations below each write exactly one audit event, in the
// transaction of the change. origin is the event's actor and request facts
// (audit.Event{ActorType, ActorID}.FromRequest(r)); the method fills in the
// type, target and details.
//
// Token revocation (Config.Revoker) runs after the commit, never before: a
// refresh racing the change then either sees the committed change (refresh
// reads roles and the disabled flag through the access cache, which the
// change invalidates) or has its new tokens revoked.
// If revocation fails after the commit, the change stands and the error is
// returned; repeating the call repeats the revocation.

// SetDisabled disables (or enables) the user. Disabling with revoke true
// ends the user's browser sessions in the same transaction and revokes every
// refresh and access token right after it. Without revoke, sessions and
// tokens are unusable only while the user stays disabled (every check reads
// the flag live) and come back on enable. Errors: ErrNotFound.
func (s *Service) SetDisabled(ctx context.Context, origin audit.Event, userID string, disabled, revoke bool) (*User, error) {
	if !uuidRE.MatchString(userID) {
		return nil, ErrNotFound
	}
	typ := "user.enabled"
	details := map[string]any{}
	if disabled {
		typ = "user.disabled"
		details["revoke_sessions"] = revoke
	}
	var out *User
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var was bool
		err := tx.QueryRow(ctx, `SELECT disabled FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&was)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("accounts: set disabled of %s: %w", userID, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET disabled = $2, updated_at = now() WHERE id = $1`, userID, disabled); err != nil {
			return fmt.Errorf("accounts: set disabled of %s: %w", userID, err)
		}
		var ended []string
		if disabled && revoke {
			if ended, err = endSessions(ctx, tx, userID, ""); err != nil {
				return err
			}
		}
		// Relying parties end their sessions when the user goes from enabled
		// to disabled, even when authd's sessions survive for a later enable.
		if err := s.queueLogouts(ctx, tx, userID, ended, disabled && !was); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, s.log, auditWith(origin, typ, "user", userID, details)); err != nil {
			return err
		}
		out, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, userID))
		return err
	})
	if err != nil {
		return nil, err
	}
	s.userChanged(userID)
	if disabled && revoke {
		if err := s.revokeTokens(ctx, userID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AssignRole gives the user role; assigning a role the user has changes
// nothing but is still recorded. Adding a role revokes nothing: the next
// refresh or introspection shows it. Errors: ErrUnknownRole (also for a
// malformed name), ErrNotFound.
func (s *Service) AssignRole(ctx context.Context, origin audit.Event, userID, role string) ([]string, error) {
	if !uuidRE.MatchString(userID) {
		return nil, ErrNotFound
	}
	if !ValidRoleName(role) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRole, role)
	}
	var roles []string
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if err := addRole(ctx, tx, userID, role); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, s.log, auditWith(origin, "user.role_added", "user", userID, map[string]any{"role": role})); err != nil {
			return err
		}
		var err error
		roles, err = rolesOf(ctx, tx, userID)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.userChanged(userID)
	return roles, nil
}

// UnassignRole takes role from the user. When the user had it and revoke is
// true, their browser sessions end in the same transaction and their tokens
// are revoked right after, so no token minted with the old roles survives.
// Taking a role the user does not have changes and revokes nothing (the call
// is still recorded). Errors: ErrUnknownRole, ErrNotFound.
func (s *Service) UnassignRole(ctx context.Context, origin audit.Event, userID, role string, revoke bool) ([]string, error) {
	if !uuidRE.MatchString(userID) {
		return nil, ErrNotFound
	}
	if !ValidRoleName(role) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownRole, role)
	}
	var roles []string
	var had bool
	err := storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		if err := lockUserAndRole(ctx, tx, userID, role); err != nil {
			return err
		}
		var err error
		if had, err = s.RemoveRole(ctx, tx, userID, role); err != nil {
			return err
		}
		if had && revoke {
			if err := s.RevokeUserSessions(ctx, tx, userID, ""); err != nil {
				return err
			}
		}
		details := map[string]any{"role": role, "had_role": had, "revoke_sessions": had && revoke}
		if err := audit.Record(ctx, tx, s.log, auditWith(origin, "user.role_removed", "user", userID, details)); err != nil {
			return err
		}
		roles, err = rolesOf(ctx, tx, userID)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.userChanged(userID)
	if had && revoke {
		if err := s.revokeTokens(ctx, userID); err != nil {
			return nil, err
		}
	}
	return roles, nil
}

// lockUserAndRole checks both exist, locking the user row so concurrent
// admin changes to one user serialise.
func lockUserAndRole(ctx context.Context, tx pgx.Tx, userID, role string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("accounts: lock user %s: %w", userID, err)
	}
	var roleOK bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1)`, role).Scan(&roleOK); err != nil {
		return fmt.Errorf("accounts: look up role %s: %w", role, err)
	}
	if !roleOK {
		return fmt.Errorf("%w: %q", ErrUnknownRole, role)
	}
	return nil
}

// DeleteResult says what DeleteUser did.
type DeleteResult struct {
	ID string `json:"id"`
	// Outcome is "deleted" (the row and everything hanging off it are gone)
	// or "anonymised" (the user has ledger history, which is append-only
	// and must keep its account: personal data is erased and the user is
	// disabled instead).
	Outcome string `json:"outcome"`
}

// Delete outcomes.
const (
	OutcomeDeleted    = "deleted"
	OutcomeAnonymised = "anonymised"
)

// DeleteUser removes the user. What happens to their data:
//   - OAuth tokens and codes: revoked (Config.Revoker), after the commit;
//   - browser sessions, roles, email tokens, remembered consents: deleted;
//   - login backoff rows for their email: deleted;
//   - ledger: a user with no ledger transactions loses their empty account
//     with the row (ON DELETE CASCADE). A user with ledger history cannot be
//     removed without breaking the append-only, hash-chained ledger, so the
//     user is anonymised instead: email becomes deleted-<id>@deleted.invalid,
//     name and pending email are cleared, the password is replaced by an
//     unknown random one, the user is disabled and loses roles, sessions and
//     email tokens; the id, the ledger account and its history remain;
//   - audit events naming the user stay (append-only; they hold ids, not
//     personal data).
//
// Errors: ErrNotFound.
func (s *Service) DeleteUser(ctx context.Context, origin audit.Event, userID string) (*DeleteResult, error) {
	if !uuidRE.MatchString(userID) {
		return nil, ErrNotFound
	}
	// Hashed before the transaction: hashing is slow and runs under a limit.
	junk, _ := NewToken()
	junkHash, err := s.hasher.Hash(ctx, junk)
	if err != nil {
		return nil, err
	}
	res := &DeleteResult{ID: userID}
	err = storage.InTx(ctx, s.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var email string
		var history bool
		err := tx.QueryRow(ctx, `SELECT email, EXISTS (SELECT 1 FROM ledger_accounts a
			WHERE a.user_id = users.id AND a.head_seq > 0) FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&email, &history)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("accounts: delete user %s: %w", userID, err)
		}
		if err := clearAllFailures(ctx, tx, email); err != nil {
			return err
		}
		// Before the rows go: the relying parties are found through them.
		if err := s.logOutEverywhere(ctx, tx, userID); err != nil {
			return err
		}
		if history {
			res.Outcome = OutcomeAnonymised
			err = anonymise(ctx, tx, userID, junkHash)
		} else {
			res.Outcome = OutcomeDeleted
			_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
		}
		if err != nil {
			return fmt.Errorf("accounts: delete user %s: %w", userID, err)
		}
		return audit.Record(ctx, tx, s.log, auditWith(origin, "user.deleted", "user", userID, map[string]any{"outcome": res.Outcome}))
	})
	if err != nil {
		return nil, err
	}
	s.userChanged(userID)
	if err := s.revokeTokens(ctx, userID); err != nil {
		return nil, err
	}
	return res, nil
}

func anonymise(ctx context.Context, tx pgx.Tx, userID, passwordHash string) error {
	if _, err := tx.Exec(ctx, `UPDATE users SET email = 'deleted-' || id::text || '@deleted.invalid', name = '',
		pending_email = NULL, email_verified = false, disabled = true, password_hash = $2, updated_at = now()
		WHERE id = $1`, userID, passwordHash); err != nil {
		return err
	}
	for _, table := range []string{"user_roles", "browser_sessions", "email_tokens", "oauth2_consents"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE user_id = $1`, userID); err != nil {
			return err
		}
	}
	return nil
}
