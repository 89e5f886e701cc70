package clients

import (
	"strings"
	"testing"
)

// Generated client ids are safe as command-line arguments and in URLs: never
// a leading "-", only characters clientIDRE accepts, and distinct.
func TestRandomID_NeverLooksLikeAFlag(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		id := randomID()
		if strings.HasPrefix(id, "-") || !clientIDRE.MatchString(id) || len(id) < 32 {
			t.Fatalf("randomID() = %q", id)
		}
		if seen[id] {
			t.Fatalf("randomID() repeated %q", id)
		}
		seen[id] = true
	}
}
