package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
)

// TestRefreshFamilies_DeadEveryRound: across three replicas, a family
// killed by reuse detection or by a role removal while it is being rotated
// has no survivor, every round.
func TestRefreshFamilies_DeadEveryRound(t *testing.T) {
	t.Parallel()
	env := newEnv(t, false)
	rep := reliability.RefreshFamilies(testContext(t, 4*time.Minute), env, reliability.RefreshFamilyOptions{Replicas: 3, Parallel: 8, Rounds: 6})
	check(t, rep)
}
