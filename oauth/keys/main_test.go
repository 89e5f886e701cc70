package keys_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// newClock stands at a fixed instant until advanced.
func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)) }

// testConfig uses the production defaults, with a poll interval long enough
// that the loop stays out of the way unless a test shortens it.
func testConfig(c *testkit.Clock) keys.Config {
	return keys.Config{
		RotationPeriod: 720 * time.Hour,
		Prepublish:     24 * time.Hour,
		RetainAfter:    time.Hour + 5*time.Minute,
		PollInterval:   time.Hour,
		JWKSMaxAge:     5 * time.Minute,
		Now:            c.Now,
	}
}

// settle is how long a new key must be published before Rotate activates it
// at once: PollInterval + JWKSMaxAge.
func settle(cfg keys.Config) time.Duration { return cfg.PollInterval + cfg.JWKSMaxAge }

func newSecretsKey(tb testing.TB) []byte {
	tb.Helper()
	k := make([]byte, keys.SecretsKeySize)
	if _, err := rand.Read(k); err != nil {
		tb.Fatal(err)
	}
	return k
}

// mustNewManager builds a Manager; the caller starts it (or not).
func mustNewManager(tb testing.TB, db *storagetest.DB, secret []byte, cfg keys.Config) *keys.Manager {
	tb.Helper()
	m, err := keys.NewManager(db.Pool, secret, cfg, zaptest.NewLogger(tb))
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	return m
}

// mustStart starts m and stops its loop (waiting for it) when tb ends, before
// the database is dropped.
func mustStart(tb testing.TB, m *keys.Manager) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		cancel()
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		<-m.Done()
	})
}

func mustSigner(tb testing.TB, m *keys.Manager, alg string) string {
	tb.Helper()
	kid, key, err := m.Signer(alg)
	if err != nil {
		tb.Fatalf("Signer(%s): %v", alg, err)
	}
	if key == nil || kid == "" {
		tb.Fatalf("Signer(%s) = %q, %v", alg, kid, key)
	}
	return kid
}

func mustList(tb testing.TB, m *keys.Manager) []keys.KeyInfo {
	tb.Helper()
	l, err := m.List(context.Background())
	if err != nil {
		tb.Fatalf("List: %v", err)
	}
	return l
}

// keyIn returns the kid of the only key of alg in state, failing otherwise.
func keyIn(tb testing.TB, l []keys.KeyInfo, alg, state string) string {
	tb.Helper()
	var found []string
	for _, k := range l {
		if k.Alg == alg && k.State == state {
			found = append(found, k.KID)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("want one %s key in state %s, got %v (all: %+v)", alg, state, found, l)
	}
	return found[0]
}

const cryptoSHA256 = crypto.SHA256

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
