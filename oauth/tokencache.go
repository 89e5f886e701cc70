package oauth

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage/fositestore"
)

// TokenCacheTTL is how long a replica trusts that an access token it
// verified (signature, expiry, and its row not revoked) is still live
// without asking the database again. It is the bound on cross-replica
// revocation: a token revoked on one replica is reported inactive by every
// other within TokenCacheTTL. On the replica that revoked it, never: the
// store reports its own revocations (fositestore.Store.RevokedSince) and a
// cached answer read before one is dropped. Only the token's own facts are
// cached here; the user behind it (roles, disabled) is read on every use
// through accounts.Service.CachedAccess, whose copy a change drops at once
// on the replica that made it and within a notification's latency on the
// others (LISTEN/NOTIFY; it reads the database whenever it is not
// listening).
const TokenCacheTTL = time.Second

// tokenCacheMax bounds each cache; when full, expired entries go, then all.
const tokenCacheMax = 1 << 16

// tokenFacts is what a verified, unrevoked access token says, as cached.
type tokenFacts struct {
	keys    fositestore.TokenKeys
	stamp   time.Time // time.Now() before the lookup, for RevokedSince
	expires time.Time // on the provider's clock: lookup + TTL, or the token's exp if sooner

	subject, clientID, tokenID string
	scopes, audience           []string
	issuedAt, expiresAt        int64 // unix seconds; expiresAt 0 = none
	authTime                   int64 // unix seconds; 0 = unknown

	// answer is the encoded introspection answer last given for these
	// facts, valid while the user's access is the same value (the accounts
	// cache replaces it on every change), so repeated introspection of a
	// token skips the JSON encoding.
	answer atomic.Pointer[encodedAnswer]
}

type encodedAnswer struct {
	access *accounts.Access // nil for client tokens
	body   []byte           // JSON and a newline; never modified
}

// tokenCache maps SHA-256(token) to its facts. One per use (bearer
// verification, introspection), so neither trusts the other's checks.
type tokenCache struct {
	store   *fositestore.Store
	now     func() time.Time
	mu      sync.Mutex
	entries map[[32]byte]*tokenFacts
	swept   time.Time // last sweep of expired entries
}

func newTokenCache(store *fositestore.Store, now func() time.Time) *tokenCache {
	return &tokenCache{store: store, now: now, entries: map[[32]byte]*tokenFacts{}}
}

// lookupStart is taken before reading the database, so that an answer
// never outlives a revocation that committed while it was being read.
type lookupStart struct {
	stamp time.Time
	at    time.Time
}

func (c *tokenCache) begin() lookupStart {
	return lookupStart{stamp: time.Now(), at: c.now()}
}

func (c *tokenCache) get(token string) (*tokenFacts, bool) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	f, ok := c.entries[k]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	if !c.now().Before(f.expires) || c.store.RevokedSince(f.keys, f.stamp) {
		c.mu.Lock()
		if c.entries[k] == f {
			delete(c.entries, k)
		}
		c.mu.Unlock()
		return nil, false
	}
	return f, true
}

func (c *tokenCache) put(token string, start lookupStart, f *tokenFacts) {
	f.stamp = start.stamp
	f.expires = start.at.Add(TokenCacheTTL)
	if f.expiresAt != 0 {
		if exp := time.Unix(f.expiresAt, 0); exp.Before(f.expires) {
			f.expires = exp
		}
	}
	k := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Expired entries of tokens nobody presents again (a refresh replaces
	// its access token) would otherwise stay until the map is full: sweep
	// them once per TTL, which costs a pass over one TTL's worth of tokens.
	if now.Sub(c.swept) >= TokenCacheTTL {
		c.dropExpired(now)
		c.swept = now
	}
	if len(c.entries) >= tokenCacheMax {
		c.dropExpired(now)
		if len(c.entries) >= tokenCacheMax {
			clear(c.entries)
		}
	}
	c.entries[k] = f
}

// dropExpired deletes the entries expired at now; c.mu is held.
func (c *tokenCache) dropExpired(now time.Time) {
	for key, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, key)
		}
	}
}
