// Package notifycache is an in-memory, per-replica cache that Postgres keeps
// honest. Triggers announce every change of a cached row on a LISTEN/NOTIFY
// channel after its commit (payload: the key, or "" for "anything may have
// changed"); Watch drops what they name. Each cache holds its entries only
// while its listener is connected: without notifications another replica's
// change could go unseen, so a cache that is not listening reads through
// (Get misses), and it starts empty whenever listening starts or stops.
//
// A read is cached only if nothing was invalidated since it began (Get
// returns the generation that Put checks), so a change that lands while a
// row is being read is never overwritten by the stale copy. The TTL is a
// safety net for a connection that dies without a word, not the
// invalidation mechanism. The client cache (storage/fositestore) and the
// users' access cache (accounts) are built on it.
package notifycache

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

// Cache maps keys to values of type V. The zero value is not usable; call New.
type Cache[V any] struct {
	ttl time.Duration
	max int

	mu        sync.Mutex
	entries   map[string]entry[V]
	swept     time.Time // last sweep of expired entries
	gen       uint64
	listening bool
	ready     chan struct{} // closed once the first LISTEN succeeded
	readyOnce sync.Once
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns a cache whose entries live at most ttl and which holds at most
// max of them (a full cache drops expired entries, then everything).
func New[V any](ttl time.Duration, max int) *Cache[V] {
	return &Cache[V]{ttl: ttl, max: max, entries: map[string]entry[V]{}, ready: make(chan struct{})}
}

// Get returns the cached value of key, or ok false and the generation to
// pass to Put once the caller has read the database.
func (c *Cache[V]) Get(key string, now time.Time) (v V, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening {
		return v, 0, false
	}
	e, found := c.entries[key]
	if found && now.Before(e.expires) {
		return e.v, c.gen, true
	}
	return v, c.gen, false
}

// Put caches v under key unless something was invalidated since gen was
// returned by Get (or the cache is not listening).
func (c *Cache[V]) Put(key string, v V, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening || gen != c.gen {
		return
	}
	// Expired entries nobody asks for again would otherwise stay until the
	// map is full: sweep them once per TTL (a pass over one TTL's worth).
	if now.Sub(c.swept) >= c.ttl {
		c.dropExpired(now)
		c.swept = now
	}
	if len(c.entries) >= c.max {
		c.dropExpired(now)
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[key] = entry[V]{v: v, expires: now.Add(c.ttl)}
}

// dropExpired deletes the entries expired at now; c.mu is held.
func (c *Cache[V]) dropExpired(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
}

// Invalidate drops key, or everything when key is empty.
func (c *Cache[V]) Invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if key == "" {
		clear(c.entries)
		return
	}
	delete(c.entries, key)
}

// Ready is closed once Watch is listening for the first time, i.e. once the
// cache starts caching. Tests wait on it.
func (c *Cache[V]) Ready() <-chan struct{} { return c.ready }

// SetListening turns caching on or off; both directions start empty, since
// notifications may have been missed while no connection listened. Watch
// calls it; tests of the cache's rules may too.
func (c *Cache[V]) SetListening(on bool) {
	c.mu.Lock()
	c.gen++
	clear(c.entries)
	c.listening = on
	c.mu.Unlock()
	if on {
		c.readyOnce.Do(func() { close(c.ready) })
	}
}

// Watch LISTENs on channel over a dedicated connection made from cfg (not
// from a pool, which it would hold forever; application_name is set to name,
// so operators can find it in pg_stat_activity) and invalidates each
// notification's payload, until ctx ends. It reconnects with backoff after a
// failure, caching nothing meanwhile. authd runs one per cache as a
// background worker.
func (c *Cache[V]) Watch(ctx context.Context, cfg *pgx.ConnConfig, channel, name string, log *zap.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listen(ctx, cfg, channel, name)
		c.SetListening(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn(name+": listener lost; reading through to the database until it is back",
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

func (c *Cache[V]) listen(ctx context.Context, cfg *pgx.ConnConfig, channel, name string) error {
	cfg = cfg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	c.SetListening(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		c.Invalidate(n.Payload)
	}
}
