package docs_test

import (
	"os"
	"testing"

	"github.com/authd/authd/internal/authdtest"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// startAuthd runs the real authd binary against a private database, as an
// operator would.
func startAuthd(t *testing.T) *authdtest.Proc {
	t.Helper()
	return authdtest.Start(t, storagetest.NewDB(t).URL)
}
