package fositestore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/fositetest"
	"github.com/authd/authd/storage/storagetest"
)

// propagation bounds how long a change on one replica may take to reach
// another replica's client cache (a notification's latency, in practice
// milliseconds; the 5 s TTL is the safety net, not what is tested here).
const propagation = 2 * time.Second

// watchingStore returns a Store on pool whose client watcher runs for the
// test's lifetime and is listening when this returns.
func watchingStore(t *testing.T, pool *pgxpool.Pool, opts fositestore.Options) *fositestore.Store {
	t.Helper()
	st := fositestore.New(pool, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); st.WatchClients(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-st.ClientCacheReady():
	case <-time.After(10 * time.Second):
		t.Fatal("client watcher did not start listening")
	}
	return st
}

func newWatchingStore(t *testing.T, opts fositestore.Options) *fositestore.Store {
	t.Helper()
	return watchingStore(t, storagetest.NewDB(t).Pool, opts)
}

// The whole storage contract holds with the client cache on.
func TestStore_WithClientCache(t *testing.T) { fositetest.RunTests(t, newWatchingStore) }

func TestStore_ConcurrencyWithClientCache(t *testing.T) {
	fositetest.RunConcurrencyTests(t, newWatchingStore)
}

// Two replicas (two Stores with their own pools on one database): a change
// made on A reaches B's cache through NOTIFY, well before the TTL.
func TestClientCache_ChangeOnOtherReplicaSeen(t *testing.T) {
	db := storagetest.NewDB(t)
	poolB, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(poolB.Close)
	a := watchingStore(t, db.Pool, fositestore.Options{})
	b := watchingStore(t, poolB, fositestore.Options{})
	ctx := context.Background()
	fositetest.MustCreateClient(t, a, "svc")

	load := func() (*fositestore.Client, error) {
		c, err := b.GetClient(ctx, "svc")
		if err != nil {
			return nil, err
		}
		return c.(*fositestore.Client), nil
	}
	first, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := load(); again != first {
		t.Fatal("second GetClient on B was not served from its cache")
	}

	t.Run("UpdateSeen", func(t *testing.T) {
		c, err := a.Client(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		c.Scopes = append(c.Scopes, "introspect")
		if err := a.UpdateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		d := testkit.Eventually(t, propagation, "scope added on A, read on B", func() bool {
			c, err := load()
			return err == nil && slices.Contains(c.Scopes, "introspect")
		})
		t.Logf("update seen on B after %v", d)
	})
	t.Run("SecretRotationSeen", func(t *testing.T) {
		c, err := a.Client(ctx, "svc")
		if err != nil {
			t.Fatal(err)
		}
		c.SecretHash, _ = fositestore.SHA256Hasher{}.Hash(ctx, []byte("rotated"))
		if err := a.UpdateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, propagation, "secret rotated on A, read on B", func() bool {
			c, err := load()
			return err == nil && fositestore.SHA256Hasher{}.Compare(ctx, c.SecretHash, []byte("rotated")) == nil
		})
	})
	t.Run("DeleteSeen", func(t *testing.T) {
		if err := a.DeleteClient(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, propagation, "client deleted on A, gone on B", func() bool {
			_, err := load()
			return errors.Is(err, fositestore.ErrNotFound)
		})
	})
}

// A change made behind the store's back (plain SQL, another tool) is seen
// through the trigger too, and a store without a watcher never caches.
func TestClientCache_SQLChangeSeenAndUnwatchedReadsThrough(t *testing.T) {
	db := storagetest.NewDB(t)
	watched := watchingStore(t, db.Pool, fositestore.Options{})
	unwatched := fositestore.New(db.Pool, fositestore.Options{})
	ctx := context.Background()
	fositetest.MustCreateClient(t, watched, "svc")
	for _, st := range []*fositestore.Store{watched, unwatched} {
		if _, err := st.GetClient(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE oauth2_clients SET name = 'renamed' WHERE id = 'svc'`); err != nil {
		t.Fatal(err)
	}
	if c, err := unwatched.GetClient(ctx, "svc"); err != nil || c.(*fositestore.Client).Name != "renamed" {
		t.Fatalf("unwatched store: %v, %v; want the renamed client at once", c, err)
	}
	testkit.Eventually(t, propagation, "SQL rename", func() bool {
		c, err := watched.GetClient(ctx, "svc")
		return err == nil && c.(*fositestore.Client).Name == "renamed"
	})
	if _, err := db.Pool.Exec(ctx, `TRUNCATE oauth2_clients CASCADE`); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, propagation, "TRUNCATE", func() bool {
		_, err := watched.GetClient(ctx, "svc")
		return errors.Is(err, fositestore.ErrNotFound)
	})
}
