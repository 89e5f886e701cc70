package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
)

// TestInfra_BehindProxy: behind a trusted proxy one attacker's failures
// refuse neither other clients nor other addresses, and a spoofed
// X-Forwarded-For from an untrusted peer is ignored.
func TestInfra_BehindProxy(t *testing.T) {
	t.Parallel()
	rep := reliability.BehindProxy(testContext(t, 2*time.Minute), newEnv(t, false))
	check(t, rep)
}
