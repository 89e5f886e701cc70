package fositestore_test

import (
	"os"
	"testing"

	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/fositetest"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

func newStore(t *testing.T, opts fositestore.Options) *fositestore.Store {
	t.Helper()
	return fositestore.New(storagetest.NewDB(t).Pool, opts)
}

func TestStore(t *testing.T) { fositetest.RunTests(t, newStore) }

func TestStore_Concurrency(t *testing.T) { fositetest.RunConcurrencyTests(t, newStore) }
