package notifycache

import (
	"strconv"
	"testing"
	"time"
)

// A read that started before an invalidation (its database answer may
// predate the change) is not cached over it; one that started after is; no
// entry outlives its TTL or is served while the cache is not listening.
func TestCache_ReadStartedBeforeInvalidationNotCached(t *testing.T) {
	c := New[string](time.Second, 16)
	c.SetListening(true)
	now := time.Now()
	_, gen, ok := c.Get("u", now)
	if ok {
		t.Fatal("empty cache hit")
	}
	c.Invalidate("u") // the change commits while the read is in flight
	c.Put("u", "stale", gen, now)
	if v, _, ok := c.Get("u", now); ok {
		t.Fatalf("stale read cached over the change: %q", v)
	}
	_, gen, _ = c.Get("u", now)
	c.Put("u", "fresh", gen, now)
	if v, _, ok := c.Get("u", now); !ok || v != "fresh" {
		t.Fatalf("a read started after the change: got %q, %v; want it cached", v, ok)
	}
	if _, _, ok := c.Get("u", now.Add(time.Second)); ok {
		t.Fatal("entry served past its TTL")
	}
	c.SetListening(false)
	if _, _, ok := c.Get("u", now); ok {
		t.Fatal("entry served while not listening")
	}
}

func TestCache_NotListeningCachesNothing(t *testing.T) {
	c := New[int](time.Minute, 16)
	now := time.Now()
	_, gen, _ := c.Get("k", now)
	c.Put("k", 1, gen, now)
	c.SetListening(true)
	if _, _, ok := c.Get("k", now); ok {
		t.Fatal("a value put before listening started is served")
	}
}

func TestCache_EmptyPayloadDropsEverythingAndFullCacheStaysBounded(t *testing.T) {
	c := New[int](time.Minute, 4)
	c.SetListening(true)
	now := time.Now()
	for i, k := range []string{"a", "b", "c", "d", "e", "f"} {
		_, gen, _ := c.Get(k, now)
		c.Put(k, i, gen, now)
		if n := len(c.entries); n > 4 {
			t.Fatalf("%d entries in a cache bounded at 4", n)
		}
	}
	c.Invalidate("")
	for _, k := range []string{"a", "e", "f"} {
		if _, _, ok := c.Get(k, now); ok {
			t.Fatalf("%q survived an empty payload", k)
		}
	}
}

// Entries nobody asks for again do not pile up until the cache is full.
func TestCache_ExpiredEntriesSweptWithoutBeingAskedFor(t *testing.T) {
	c := New[int](time.Second, 1<<16)
	c.SetListening(true)
	now := time.Now()
	for i := range 100 {
		_, gen, _ := c.Get("old", now)
		c.Put(string(rune('a'+i%26))+strconv.Itoa(i), i, gen, now)
	}
	later := now.Add(2 * time.Second)
	_, gen, _ := c.Get("new", later)
	c.Put("new", 1, gen, later)
	if n := len(c.entries); n != 1 {
		t.Fatalf("%d entries after every other one expired; want 1", n)
	}
}
