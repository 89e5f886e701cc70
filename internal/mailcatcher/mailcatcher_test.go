package mailcatcher

import (
	"testing"
	"time"
)

// Closing a catcher at once, before its server goroutine has begun to
// accept (authd dev failing to bind its own address right after starting
// the catcher), returns instead of waiting forever on an Accept nobody
// closes.
func TestCloseRightAfterNew(t *testing.T) {
	for i := 0; i < 50; i++ {
		c, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() { defer close(closed); _ = c.Close() }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("Close right after New still waiting after 10s (round %d)", i)
		}
	}
}
