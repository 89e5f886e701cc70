package accounts

import (
	"testing"
	"time"
)

// A read that started before an invalidation (its database answer may
// predate the change) is not cached over it; one that started after is.
func TestAccessCache_ReadStartedBeforeInvalidationNotCached(t *testing.T) {
	c := newAccessCache()
	c.setListening(true)
	now := time.Now()
	_, gen, ok := c.get("u", now)
	if ok {
		t.Fatal("empty cache hit")
	}
	c.invalidate("u") // the change commits while the read is in flight
	c.put(&Access{UserID: "u", Roles: []string{"admin"}}, gen, now)
	if a, _, ok := c.get("u", now); ok {
		t.Fatalf("stale read cached over the change: %+v", a)
	}
	_, gen, _ = c.get("u", now)
	c.put(&Access{UserID: "u", Roles: []string{}}, gen, now)
	if _, _, ok := c.get("u", now); !ok {
		t.Fatal("a read started after the change was not cached")
	}
	if _, _, ok := c.get("u", now.Add(accessCacheTTL)); ok {
		t.Fatal("entry served past its TTL")
	}
	c.setListening(false)
	if _, _, ok := c.get("u", now); ok {
		t.Fatal("entry served while not listening")
	}
}
