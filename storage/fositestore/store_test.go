package fositestore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"
	"time"

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

// Postgres-specific: rows are keyed by hashes, never by what fosite passes,
// so a database leak does not leak a live authorization code.
func TestStore_KeysAreHashed(t *testing.T) {
	db := storagetest.NewDB(t)
	st := fositestore.New(db.Pool, fositestore.Options{})
	ctx := context.Background()
	client := fositetest.MustCreateClient(t, st, "client")
	now := time.Now().UTC()
	code := "ory_ac_raw-code.signature"
	if err := st.CreateOpenIDConnectSession(ctx, code, fositetest.NewRequest(client, fositetest.NewSession("alice", now), now)); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(code))
	var raw, hashed int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE signature = $1), count(*) FILTER (WHERE signature = $2)
		FROM oauth2_oidc`, code, hex.EncodeToString(sum[:])).Scan(&raw, &hashed); err != nil {
		t.Fatal(err)
	}
	if raw != 0 || hashed != 1 {
		t.Fatalf("rows keyed by the raw code: %d, by its hash: %d; want 0 and 1", raw, hashed)
	}
}
