package fositestore

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
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
)

// clientCache holds clients read by GetClient, but only while the store's
// watcher is LISTENing: without notifications another replica's update or
// delete could go unseen for a whole TTL, so an unwatched store reads
// through. Every invalidation bumps gen, and a read started under an older
// gen is not inserted: a change that lands while a client is being read is
// never overwritten by the stale copy.
type clientCache struct {
	mu        sync.Mutex
	entries   map[string]clientEntry
	gen       uint64
	listening bool
	ready     chan struct{} // closed once the first LISTEN succeeded
	readyOnce sync.Once
}

type clientEntry struct {
	c       *Client
	expires time.Time
}

func newClientCache() *clientCache {
	return &clientCache{entries: map[string]clientEntry{}, ready: make(chan struct{})}
}

// get returns the cached client, or nil and the generation a caller must
// pass to put after reading the database.
func (cc *clientCache) get(id string, now time.Time) (*Client, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.listening {
		return nil, 0, false
	}
	e, ok := cc.entries[id]
	if ok && now.Before(e.expires) {
		return e.c, cc.gen, true
	}
	return nil, cc.gen, false
}

// put caches c unless something was invalidated since gen was read.
func (cc *clientCache) put(c *Client, gen uint64, now time.Time) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.listening || gen != cc.gen {
		return
	}
	if len(cc.entries) >= clientCacheMax {
		for id, e := range cc.entries {
			if !now.Before(e.expires) {
				delete(cc.entries, id)
			}
		}
		if len(cc.entries) >= clientCacheMax {
			clear(cc.entries)
		}
	}
	cc.entries[c.ID] = clientEntry{c: c, expires: now.Add(clientCacheTTL)}
}

// invalidate drops id, or everything when id is empty.
func (cc *clientCache) invalidate(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	if id == "" {
		clear(cc.entries)
		return
	}
	delete(cc.entries, id)
}

// setListening turns caching on or off; both directions start empty, since
// notifications may have been missed while the connection was down.
func (cc *clientCache) setListening(on bool) {
	cc.mu.Lock()
	cc.gen++
	clear(cc.entries)
	cc.listening = on
	cc.mu.Unlock()
	if on {
		cc.readyOnce.Do(func() { close(cc.ready) })
	}
}

// ClientCacheReady is closed once WatchClients is listening for the first
// time, i.e. once GetClient starts caching. Tests wait on it.
func (s *Store) ClientCacheReady() <-chan struct{} { return s.clients.ready }

// WatchClients LISTENs for client changes on a dedicated connection (not
// from the pool, which it would hold forever) and invalidates the client
// cache on each notification, until ctx ends. GetClient caches only while
// it is listening, so every replica that runs it sees another replica's
// update, secret rotation or delete within a notification's latency (the
// 5 s TTL is only a safety net); a replica that does not run it reads
// clients from the database every time. It reconnects with backoff after a
// failure, caching nothing meanwhile. authd runs it as a background worker.
func (s *Store) WatchClients(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenClients(ctx)
		s.clients.setListening(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("client cache: listener lost; reading clients from the database until it is back",
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

func (s *Store) listenClients(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{ClientsChannel}.Sanitize()); err != nil {
		return err
	}
	s.clients.setListening(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		s.clients.invalidate(n.Payload)
	}
}

// cachedClient is GetClient's read: from the cache while watching, else
// (and on a miss) from the database.
func (s *Store) cachedClient(ctx context.Context, id string) (*Client, error) {
	now := time.Now()
	c, gen, ok := s.clients.get(id, now)
	if ok {
		return c, nil
	}
	c, err := s.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	s.clients.put(c, gen, now)
	return c, nil
}

// clientChanged drops this replica's copy of client id at once (the
// trigger's notification, which arrives after the commit, drops it again
// everywhere) and marks its tokens revoked for answer caches.
func (s *Store) clientChanged(ctx context.Context, id string) {
	s.clients.invalidate(id)
	s.noteRevoked(ctx, revKey{'c', id})
}
