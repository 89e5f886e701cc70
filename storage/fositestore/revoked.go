package fositestore

import (
	"context"
	"sync"
	"time"
)

// revocationMemory is how long this replica remembers a revocation. It must
// outlive any answer cached outside the store (the oauth package keeps
// introspection answers for at most 1 s).
const revocationMemory = 5 * time.Second

// TokenKeys names everything a cached answer about one access token depends
// on: its family, its user, its client and its own signature (as fosite's
// strategy computes it, unhashed).
type TokenKeys struct {
	RequestID string
	Subject   string
	ClientID  string
	Signature string
}

// RevokedSince reports whether this replica revoked, rotated or deleted
// anything k depends on at or after since. A cache of answers derived from
// the store stamps each answer with time.Now() taken before its read and
// drops the answer when this returns true, so it never outlives a
// revocation made through this Store. Revocations are stamped after they
// commit, hence a read that started before the commit is always caught.
// Other replicas' revocations are not seen here: that is what a short TTL
// is for.
func (s *Store) RevokedSince(k TokenKeys, since time.Time) bool {
	return s.revoked.since(since, revKey{'r', k.RequestID}, revKey{'s', k.Subject},
		revKey{'c', k.ClientID}, revKey{'t', hashKey(k.Signature)})
}

// revKey is one thing a revocation hit: kind r (request id), s (subject),
// c (client) or t (hashed token signature).
type revKey struct {
	kind byte
	key  string
}

type revEntry struct {
	k  revKey
	at time.Time
}

// revocations is the replica's short memory of revocations: the latest time
// per key, and the same in arrival order for pruning.
type revocations struct {
	mu     sync.Mutex
	latest map[revKey]time.Time
	queue  []revEntry
}

func newRevocations() *revocations {
	return &revocations{latest: map[revKey]time.Time{}}
}

func (rv *revocations) add(keys ...revKey) {
	now := time.Now()
	rv.mu.Lock()
	defer rv.mu.Unlock()
	i := 0
	for i < len(rv.queue) && now.Sub(rv.queue[i].at) > revocationMemory {
		if e := rv.queue[i]; rv.latest[e.k].Equal(e.at) {
			delete(rv.latest, e.k)
		}
		i++
	}
	rv.queue = rv.queue[i:]
	for _, k := range keys {
		rv.latest[k] = now
		rv.queue = append(rv.queue, revEntry{k: k, at: now})
	}
}

func (rv *revocations) since(t time.Time, keys ...revKey) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.latest) == 0 {
		return false
	}
	for _, k := range keys {
		if k.key == "" {
			continue
		}
		if at, ok := rv.latest[k]; ok && !at.Before(t) {
			return true
		}
	}
	return false
}

// noteRevoked records that keys were revoked: at once when ctx carries no
// transaction (the statement has committed), else when the transaction
// ends (committed or not: a spurious invalidation only costs a cache miss).
func (s *Store) noteRevoked(ctx context.Context, keys ...revKey) {
	if st, ok := ctx.Value(txKey{}).(*txState); ok {
		st.shared.mu.Lock()
		st.shared.revoked = append(st.shared.revoked, keys...)
		st.shared.mu.Unlock()
		return
	}
	s.revoked.add(keys...)
}

// flushRevoked stamps the revocations a transaction made; called by its
// owner after COMMIT or ROLLBACK.
func (s *Store) flushRevoked(st *txState) {
	st.shared.mu.Lock()
	keys := st.shared.revoked
	st.shared.revoked = nil
	st.shared.mu.Unlock()
	if len(keys) > 0 {
		s.revoked.add(keys...)
	}
}
