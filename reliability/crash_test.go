package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
)

// TestCrash_KillNineLosesNothing: SIGKILL in the middle of spends and
// registrations loses no acknowledged write, half-creates no user and
// still delivers every queued outbox row after the restart.
func TestCrash_KillNineLosesNothing(t *testing.T) {
	t.Parallel() // may wait out a killed worker's outbox lease (1 min)
	env := newEnv(t, false)
	rep := reliability.Crash(testContext(t, 4*time.Minute), env, reliability.CrashOptions{Kills: 2})
	check(t, rep)
}
