package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds and returns how long that took, or
// fails tb once within has passed. The condition is the synchronisation;
// the polling interval only bounds its cost.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > within {
			tb.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
	return time.Since(start)
}
