package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
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

// accessCache holds Access values read by CachedAccess, but only while the
// service's watcher is LISTENing: without notifications another replica's
// change could go unseen for a whole TTL, so an unwatched service reads
// through. Every invalidation bumps gen, and a read started under an older
// gen is not inserted: a change that lands while a user is being read is
// never overwritten by the stale copy. Absent users are not cached, so
// creating one needs no invalidation.
type accessCache struct {
	mu        sync.Mutex
	entries   map[string]accessEntry
	gen       uint64
	listening bool
	ready     chan struct{} // closed once the first LISTEN succeeded
	readyOnce sync.Once
}

type accessEntry struct {
	a       *Access
	expires time.Time
}

func newAccessCache() *accessCache {
	return &accessCache{entries: map[string]accessEntry{}, ready: make(chan struct{})}
}

// get returns the cached Access, or nil and the generation a caller must
// pass to put after reading the database.
func (c *accessCache) get(id string, now time.Time) (*Access, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening {
		return nil, 0, false
	}
	e, ok := c.entries[id]
	if ok && now.Before(e.expires) {
		return e.a, c.gen, true
	}
	return nil, c.gen, false
}

// put caches a unless something was invalidated since gen was read.
func (c *accessCache) put(a *Access, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening || gen != c.gen {
		return
	}
	if len(c.entries) >= accessCacheMax {
		for id, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, id)
			}
		}
		if len(c.entries) >= accessCacheMax {
			clear(c.entries)
		}
	}
	c.entries[a.UserID] = accessEntry{a: a, expires: now.Add(accessCacheTTL)}
}

// invalidate drops id, or everything when id is empty.
func (c *accessCache) invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if id == "" {
		clear(c.entries)
		return
	}
	delete(c.entries, id)
}

// setListening turns caching on or off; both directions start empty, since
// notifications may have been missed while the connection was down.
func (c *accessCache) setListening(on bool) {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.listening = on
	c.mu.Unlock()
	if on {
		c.readyOnce.Do(func() { close(c.ready) })
	}
}

// UserCacheReady is closed once WatchUsers is listening for the first time,
// i.e. once CachedAccess starts caching. Tests wait on it.
func (s *Service) UserCacheReady() <-chan struct{} { return s.access.ready }

// CachedAccess returns the user's disabled flag and roles for authorizing a
// request (introspection, bearer tokens). While WatchUsers runs, it answers
// from memory: a change made through this Service is visible at once, one
// made elsewhere (another replica, the CLI, plain SQL) within a
// notification's latency. Otherwise it reads the database every time.
// Errors: ErrNotFound (also for a malformed id).
func (s *Service) CachedAccess(ctx context.Context, userID string) (*Access, error) {
	if !uuidRE.MatchString(userID) {
		return nil, ErrNotFound
	}
	// Notifications carry Postgres' spelling of the id (lower case).
	userID = strings.ToLower(userID)
	now := time.Now()
	a, gen, ok := s.access.get(userID, now)
	if ok {
		return a, nil
	}
	a, err := s.readAccess(ctx, userID)
	if err != nil {
		return nil, err
	}
	s.access.put(a, gen, now)
	return a, nil
}

func (s *Service) readAccess(ctx context.Context, userID string) (*Access, error) {
	a := &Access{UserID: userID}
	err := s.pool.QueryRow(ctx, `SELECT disabled,
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
func (s *Service) userChanged(userID string) { s.access.invalidate(strings.ToLower(userID)) }

// WatchUsers LISTENs for user changes on a dedicated connection (not from
// the pool, which it would hold forever) and invalidates the access cache on
// each notification, until ctx ends. CachedAccess caches only while it is
// listening. It reconnects with backoff after a failure, caching nothing
// meanwhile. authd runs it as a background worker.
func (s *Service) WatchUsers(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenUsers(ctx)
		s.access.setListening(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("user cache: listener lost; reading users from the database until it is back",
			zap.Error(err), zap.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (s *Service) listenUsers(ctx context.Context) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = listenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{UsersChannel}.Sanitize()); err != nil {
		return err
	}
	s.access.setListening(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.access.invalidate(n.Payload)
	}
}
