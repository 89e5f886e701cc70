package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
)

// TestLogstash_FaultsNeverSlowRequestsAndDropsAreCounted: a Logstash peer
// that is down, never reads, or hangs up keeps /oauth2/token's p99 within
// the bound of a server without Logstash, and every lost line is counted.
func TestLogstash_FaultsNeverSlowRequestsAndDropsAreCounted(t *testing.T) {
	env := newEnv(t, false)
	rep := reliability.Logstash(testContext(t, 3*time.Minute), env, reliability.LogstashOptions{
		Rounds: 5, Requests: 200, MaxRatio: 1.10, Slack: 2 * time.Millisecond,
	})
	check(t, rep)
}
