package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
)

// TestRolling_SIGTERMUnderLoadFailsNoAcceptedRequest: every replica in turn
// is stopped with SIGTERM and started again under load; no request a
// replica accepted fails, and the ledger stays exact.
func TestRolling_SIGTERMUnderLoadFailsNoAcceptedRequest(t *testing.T) {
	t.Parallel()
	env := newEnv(t, false)
	rep := reliability.Rolling(testContext(t, 3*time.Minute), env, reliability.RollingOptions{Replicas: 3, Rounds: 1})
	check(t, rep)
}
