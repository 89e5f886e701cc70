package reliability_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/reliability"
	"github.com/authd/authd/storage/storagetest"
)

// authdBin is the binary TestMain built for this test process. Test
// infrastructure owned by TestMain, like storagetest's server.
var authdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "authd-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	authdBin, err = reliability.Build(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := storagetest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// newEnv gives t a scratch directory and a database: a private cluster when
// the test stops Postgres, else a clone of the migrated template.
func newEnv(t *testing.T, ownCluster bool) reliability.Env {
	t.Helper()
	env := reliability.Env{Bin: authdBin, Dir: scratch(t), Logf: t.Logf}
	if ownCluster {
		env.DatabaseURL = storagetest.NewCluster(t).URL("authd")
	} else {
		env.DatabaseURL = storagetest.NewDB(t).URL
	}
	return env
}

// scratch is a directory for t's server logs, kept when t fails.
func scratch(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "authd-reliability-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// check fails t with every problem of rep and logs the report.
func check(t *testing.T, rep *reliability.Report) {
	t.Helper()
	t.Logf("\n%s", rep)
	if len(rep.Problems) > 0 {
		t.Errorf("%s: %d broken promise(s):\n%s", rep.Name, len(rep.Problems), strings.Join(rep.Problems, "\n"))
	}
}

// testContext bounds a scenario in time.
func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
