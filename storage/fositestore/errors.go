package fositestore

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage"
)

// ErrNotFound is returned when a client or token row does not exist. It
// matches both fosite.ErrNotFound (what fosite's handlers test for) and
// storage.ErrNotFound (what the rest of authd tests for) under errors.Is.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "fositestore: not found" }

func (notFoundError) Is(target error) bool {
	return target == storage.ErrNotFound || target == fosite.ErrNotFound
}

// ErrClientExists is returned by CreateClient when the id is taken.
var ErrClientExists = errors.New("fositestore: client already exists")

// ErrPKCEConsumed is returned by GetPKCERequestSession for a PKCE request that
// fosite already consumed. It is deliberately not ErrNotFound: fosite treats
// "not found" as "this code had no PKCE", which would let a second attempt
// skip the verifier (fosite PR #883).
var ErrPKCEConsumed = errors.New("fositestore: PKCE request already consumed")

// ErrNoTransaction is returned by Commit and Rollback when ctx carries no
// transaction begun by BeginTX.
var ErrNoTransaction = errors.New("fositestore: a transaction from BeginTX is required")

// mapErr translates driver errors at this edge: no rows → ErrNotFound,
// serialization failure or deadlock → fosite.ErrSerializationFailure (which
// fosite's refresh handler answers with "retry"). The cause stays wrapped.
func mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows), isEncodingError(err):
		return ErrNotFound
	case storage.IsRetryable(err):
		return fmt.Errorf("fositestore: %s: %w: %w", op, fosite.ErrSerializationFailure, err)
	default:
		return fmt.Errorf("fositestore: %s: %w", op, err)
	}
}

// isEncodingError reports Postgres refusing a parameter that is not valid
// UTF-8 (22021): a client id or jti like that is hostile input naming no
// row, not a server error.
func isEncodingError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22021"
}
