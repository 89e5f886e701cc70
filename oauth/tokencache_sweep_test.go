package oauth

import (
	"strconv"
	"testing"
	"time"
)

// Facts of tokens nobody presents again (a refresh replaces the access
// token) do not pile up until the cache is full.
func TestTokenCache_ExpiredEntriesSwept(t *testing.T) {
	now := time.Now()
	c := newTokenCache(nil, func() time.Time { return now })
	for i := range 100 {
		c.put("token-"+strconv.Itoa(i), c.begin(), &tokenFacts{})
	}
	now = now.Add(2 * TokenCacheTTL)
	c.put("fresh", c.begin(), &tokenFacts{})
	if n := len(c.entries); n != 1 {
		t.Fatalf("%d entries after every other one expired; want 1", n)
	}
}
