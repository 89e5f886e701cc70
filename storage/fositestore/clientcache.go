package fositestore

import (
	"context"
	"time"

	"github.com/authd/authd/internal/notifycache"
)

// ClientsChannel is the LISTEN/NOTIFY channel on which migration 0009's
// trigger announces every change to oauth2_clients; the payload is the
// client id, or empty for "anything may have changed" (TRUNCATE, long ids).
const ClientsChannel = "authd_oauth2_clients"

const (
	// clientCacheTTL bounds how long a cached client is trusted even when no
	// notification arrives: a safety net, not the invalidation mechanism.
	clientCacheTTL = 5 * time.Second
	// clientCacheMax bounds the cache; a full cache evicts expired entries,
	// then everything (clients are few, so this is a defence, not a policy).
	clientCacheMax = 4096
	// clientListenerName is the watcher connection's application_name.
	clientListenerName = "authd client cache"
)

// newClientCache holds clients read by GetClient, but only while the store's
// watcher is LISTENing (see package notifycache for the rules).
func newClientCache() *notifycache.Cache[*Client] {
	return notifycache.New[*Client](clientCacheTTL, clientCacheMax)
}

// ClientCacheReady is closed once WatchClients is listening for the first
// time, i.e. once GetClient starts caching. Tests wait on it.
func (s *Store) ClientCacheReady() <-chan struct{} { return s.clients.Ready() }

// WatchClients LISTENs for client changes on a dedicated connection and
// invalidates the client cache on each notification, until ctx ends.
// GetClient caches only while it is listening, so every replica that runs it
// sees another replica's update, secret rotation or delete within a
// notification's latency (the 5 s TTL is only a safety net); a replica that
// does not run it reads clients from the database every time. authd runs it
// as a background worker.
func (s *Store) WatchClients(ctx context.Context) {
	s.clients.Watch(ctx, s.pool.Config().ConnConfig, ClientsChannel, clientListenerName, s.log)
}

// cachedClient is GetClient's read: from the cache while watching, else
// (and on a miss) from the database.
func (s *Store) cachedClient(ctx context.Context, id string) (*Client, error) {
	now := time.Now()
	c, gen, ok := s.clients.Get(id, now)
	if ok {
		return c, nil
	}
	c, err := s.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	s.clients.Put(c.ID, c, gen, now)
	return c, nil
}

// clientChanged drops this replica's copy of client id at once (the
// trigger's notification, which arrives after the commit, drops it again
// everywhere) and marks its tokens revoked for answer caches.
func (s *Store) clientChanged(ctx context.Context, id string) {
	s.clients.Invalidate(id)
	s.noteRevoked(ctx, revKey{'c', id})
}
