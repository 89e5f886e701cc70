package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/internal/notifycache"
)

// UsersChannel is the LISTEN/NOTIFY channel on which migration 0011's
// triggers announce, after commit, every change to a user's roles or
// disabled flag and every deletion of a user; the payload is the user id, or
// empty for "anything may have changed" (TRUNCATE, roles table changes).
const UsersChannel = "authd_users"

const (
	// accessCacheTTL bounds how long a cached Access is trusted even when no
	// notification arrives: a safety net, not the invalidation mechanism. It
	// is what bounds staleness if the listener's connection dies without a
	// word (no FIN, no RST), which the watcher cannot notice at once.
	accessCacheTTL = 2 * time.Second
	// accessCacheMax bounds the cache; a full cache evicts expired entries,
	// then everything.
	accessCacheMax = 1 << 16
)

// listenerName is the application_name of the watcher's connection, so that
// operators (and tests) can find it in pg_stat_activity.
const listenerName = "authd user cache"

// Access is what authorization needs of a user, as CachedAccess returns it:
// whether they may act, and their roles.
type Access struct {
	UserID   string
	Disabled bool
	// Roles is sorted and never nil. It may be shared with the cache and
	// other callers: do not modify it.
	Roles []string
}

// newAccessCache holds Access values read by CachedAccess, but only while
// the service's watcher is LISTENing (see package notifycache for the
// rules). Absent users are not cached, so creating one needs no
// invalidation.
func newAccessCache() *notifycache.Cache[*Access] {
	return notifycache.New[*Access](accessCacheTTL, accessCacheMax)
}

// UserCacheReady is closed once WatchUsers is listening for the first time,
// i.e. once CachedAccess starts caching. Tests wait on it.
func (s *Service) UserCacheReady() <-chan struct{} { return s.access.Ready() }

// CachedAccess returns the user's disabled flag and roles for authorizing a
// request (introspection, bearer tokens). While WatchUsers runs, it answers
// from memory: a change made through this Service is visible at once, one
// made elsewhere (another replica, the CLI, plain SQL) within a
// notification's latency. Otherwise it reads the database every time.
// Errors: ErrNotFound (also for a malformed id).
func (s *Service) CachedAccess(ctx context.Context, userID string) (*Access, error) {
	return s.CachedAccessVia(ctx, s.pool, userID)
}

// RowQuerier is what CachedAccessVia reads through on a miss.
type RowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// CachedAccessVia is CachedAccess reading through q on a cache miss: a
// caller holding a connection and locks (the token endpoint's refresh
// transaction) reads on it instead of waiting for a second connection.
func (s *Service) CachedAccessVia(ctx context.Context, q RowQuerier, userID string) (*Access, error) {
	if !uuidRE.MatchString(userID) {
		return nil, ErrNotFound
	}
	// Notifications carry Postgres' spelling of the id (lower case).
	userID = strings.ToLower(userID)
	now := time.Now()
	a, gen, ok := s.access.Get(userID, now)
	if ok {
		return a, nil
	}
	a, err := s.readAccess(ctx, q, userID)
	if err != nil {
		return nil, err
	}
	s.access.Put(userID, a, gen, now)
	return a, nil
}

func (s *Service) readAccess(ctx context.Context, q RowQuerier, userID string) (*Access, error) {
	a := &Access{UserID: userID}
	err := q.QueryRow(ctx, `SELECT disabled,
		COALESCE((SELECT array_agg(role ORDER BY role) FROM user_roles WHERE user_id = users.id), '{}')
		FROM users WHERE id = $1`, userID).Scan(&a.Disabled, &a.Roles)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("accounts: read roles of %s: %w", userID, err)
	}
	return a, nil
}

// userChanged drops this replica's copy of the user at once, after the
// change committed (the trigger's notification drops it again everywhere).
func (s *Service) userChanged(userID string) { s.access.Invalidate(strings.ToLower(userID)) }

// WatchUsers LISTENs for user changes on a dedicated connection and
// invalidates the access cache on each notification, until ctx ends.
// CachedAccess caches only while it is listening. authd runs it as a
// background worker.
func (s *Service) WatchUsers(ctx context.Context) {
	s.access.Watch(ctx, s.pool.Config().ConnConfig, UsersChannel, listenerName, s.log)
}
