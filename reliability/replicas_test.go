package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
)

// TestReplicas_ActAsOneServer: three authd processes on one database share
// tokens, refresh-reuse detection, rotated keys, an exact ledger under
// concurrent spends, and an outbox delivered once per event.
func TestReplicas_ActAsOneServer(t *testing.T) {
	t.Parallel()
	env := newEnv(t, false)
	rep := reliability.Replicas(testContext(t, 3*time.Minute), env, reliability.ReplicaOptions{Replicas: 3, Spends: 150, Registrations: 30})
	check(t, rep)
}
