package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
	"github.com/authd/authd/storage/storagetest"
)

// TestInfra_BehindProxy: behind a trusted proxy one attacker's failures
// refuse neither other clients nor other addresses, and a spoofed
// X-Forwarded-For from an untrusted peer is ignored.
func TestInfra_BehindProxy(t *testing.T) {
	t.Parallel()
	rep := reliability.BehindProxy(testContext(t, 2*time.Minute), newEnv(t, false))
	check(t, rep)
}

// TestInfra_LockedTableFailsFastAndRecovers: a table locked by someone else
// gives 503 with Retry-After within the request deadline, and service
// resumes the moment the lock goes.
func TestInfra_LockedTableFailsFastAndRecovers(t *testing.T) {
	t.Parallel()
	rep := reliability.LockedTable(testContext(t, 2*time.Minute), newEnv(t, false))
	check(t, rep)
}

// TestInfra_KilledBackend: a database session terminated mid-query gives
// 503, never 500.
func TestInfra_KilledBackend(t *testing.T) {
	t.Parallel()
	rep := reliability.KilledBackend(testContext(t, 2*time.Minute), newEnv(t, false))
	check(t, rep)
}

// TestInfra_ReadOnlyDatabase: a read-only database gives 503 naming it and
// /readyz 503, until it is writable again.
func TestInfra_ReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	rep := reliability.ReadOnlyDatabase(testContext(t, 2*time.Minute), newEnv(t, false))
	check(t, rep)
}

// TestInfra_AdminShutdown: Postgres shut down under a request in flight
// gives 503 and /readyz 503, and authd recovers when it is back.
func TestInfra_AdminShutdown(t *testing.T) {
	t.Parallel()
	cluster := storagetest.NewCluster(t)
	env := reliability.Env{Bin: authdBin, Dir: scratch(t), Logf: t.Logf, DatabaseURL: cluster.URL("authd")}
	rep := reliability.AdminShutdown(testContext(t, 2*time.Minute), env, cluster)
	check(t, rep)
}

// TestInfra_DiskFull: writes failing with disk_full give 503 naming it and
// /readyz 503, until the disk has room again.
func TestInfra_DiskFull(t *testing.T) {
	t.Parallel()
	rep := reliability.DiskFull(testContext(t, 2*time.Minute), newEnv(t, false))
	check(t, rep)
}

// TestInfra_CrashedBackend: a Postgres backend killed by a signal makes
// Postgres reset every session and recover; the request in flight gets 503,
// /readyz is 503 during the reset, and authd recovers by itself.
func TestInfra_CrashedBackend(t *testing.T) {
	t.Parallel()
	cluster := storagetest.NewDurableCluster(t)
	env := reliability.Env{Bin: authdBin, Dir: scratch(t), Logf: t.Logf, DatabaseURL: cluster.URL("authd")}
	rep := reliability.CrashedBackend(testContext(t, 3*time.Minute), env)
	check(t, rep)
}
