package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
)

// TestPeerFaults_RetriedUntilDeliveredWithoutSlowingRequests: SMTP refusing,
// hanging or hanging up mid-DATA and a webhook receiver answering 500 or
// hanging are retried with backoff until delivered; registration is not
// slowed meanwhile.
func TestPeerFaults_RetriedUntilDeliveredWithoutSlowingRequests(t *testing.T) {
	t.Parallel()
	env := newEnv(t, false)
	rep := reliability.PeerFaults(testContext(t, 4*time.Minute), env, reliability.PeerOptions{Registrations: 8, Fault: 3 * time.Second})
	check(t, rep)
}
