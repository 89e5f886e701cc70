package reliability_test

import (
	"testing"
	"time"

	"github.com/authd/authd/reliability"
	"github.com/authd/authd/storage/storagetest"
)

// TestDBOutage_FastUnavailableThenRecovers: Postgres stopped under load
// gives fast 503s, no goroutine pile-up, recovery without restart, and a
// ledger where every 2xx spend is durable exactly once.
func TestDBOutage_FastUnavailableThenRecovers(t *testing.T) {
	cluster := storagetest.NewCluster(t)
	env := reliability.Env{Bin: authdBin, Dir: scratch(t), Logf: t.Logf, DatabaseURL: cluster.URL("authd")}
	rep := reliability.DBOutage(testContext(t, 2*time.Minute), env, reliability.DBOutageOptions{Cluster: cluster, Down: 3 * time.Second, Outages: 2})
	check(t, rep)
}
