package keys_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/testkit"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/storagetest"
)

// jwksKIDs returns the kids in m's JWKS document.
func jwksKIDs(tb testing.TB, m *keys.Manager) []string {
	tb.Helper()
	body, _ := m.JWKS()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		tb.Fatalf("JWKS: %v", err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KID)
	}
	return out
}

func TestManager_Rotate(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	cfg := testConfig(c)
	m := mustNewManager(t, db, newSecretsKey(t), cfg)
	mustStart(t, m)

	l := mustList(t, m)
	old := map[string]string{}
	next := map[string]string{}
	for _, alg := range []string{keys.ES256, keys.RS256} {
		old[alg] = keyIn(t, l, alg, keys.StateActive)
		next[alg] = keyIn(t, l, alg, keys.StateNext)
		if !slices.Contains(jwksKIDs(t, m), next[alg]) {
			t.Fatalf("next %s key %s not pre-published", alg, next[alg])
		}
	}
	c.Advance(settle(cfg)) // the next keys have been in every cached JWKS by now
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}

	l = mustList(t, m)
	published := jwksKIDs(t, m)
	for _, alg := range []string{keys.ES256, keys.RS256} {
		if got := mustSigner(t, m, alg); got != next[alg] {
			t.Errorf("%s: after Rotate signs with %s, want the pre-published %s", alg, got, next[alg])
		}
		if got := keyIn(t, l, alg, keys.StateActive); got != next[alg] {
			t.Errorf("%s: List active = %s, want %s", alg, got, next[alg])
		}
		newNext := keyIn(t, l, alg, keys.StateNext)
		if newNext == next[alg] || newNext == old[alg] {
			t.Errorf("%s: no new next key after Rotate: %+v", alg, l)
		}
		if keyIn(t, l, alg, keys.StateRetired) != old[alg] {
			t.Errorf("%s: old key not retired: %+v", alg, l)
		}
		for _, kid := range []string{old[alg], next[alg], newNext} {
			if !slices.Contains(published, kid) {
				t.Errorf("%s: %s missing from JWKS %v", alg, kid, published)
			}
			if _, _, ok := m.PublicKey(kid); !ok {
				t.Errorf("%s: PublicKey(%s) not found", alg, kid)
			}
		}
	}
	// Rows per alg: the retired, the active and the new next key, one per generation.
	if len(l) != 6 {
		t.Errorf("want 6 keys after one rotation, got %+v", l)
	}
}

func TestManager_RotateDeferredWhileNextKeyIsNew(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	cfg := testConfig(c)
	m := mustNewManager(t, db, newSecretsKey(t), cfg)
	mustStart(t, m)
	old := mustSigner(t, m, keys.ES256)
	next := keyIn(t, mustList(t, m), keys.ES256, keys.StateNext)

	// The next key was created just now: a client may hold a JWKS without it.
	c.Advance(time.Minute)
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustSigner(t, m, keys.ES256); got != old {
		t.Fatalf("Rotate right after creation switched to %s at once", got)
	}
	var info keys.KeyInfo
	for _, k := range mustList(t, m) {
		if k.KID == next {
			info = k
		}
	}
	if want := info.CreatedAt.Add(settle(cfg)); !info.ActivatesAt.Equal(want) {
		t.Fatalf("next key activates at %s, want created+settle = %s", info.ActivatesAt, want)
	}
	// A second Rotate while deferred changes nothing.
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := mustList(t, m); len(l) != 4 {
		t.Fatalf("second deferred Rotate changed the keys: %+v", l)
	}
	c.Advance(settle(cfg) - time.Minute - time.Microsecond)
	if got := mustSigner(t, m, keys.ES256); got != old {
		t.Fatalf("switched to %s before the deferred moment", got)
	}
	c.Advance(time.Microsecond)
	if got := mustSigner(t, m, keys.ES256); got != next {
		t.Fatalf("at the deferred moment signs with %s, want %s", got, next)
	}
}

func TestManager_SecondManagerSeesRotation(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	cfg := testConfig(c)
	secret := newSecretsKey(t)
	m1 := mustNewManager(t, db, secret, cfg)
	mustStart(t, m1)
	m2 := mustNewManager(t, db, secret, cfg)
	mustStart(t, m2)
	polling := cfg
	polling.PollInterval = 10 * time.Millisecond
	m3 := mustNewManager(t, db, secret, polling) // picks rotations up by itself
	mustStart(t, m3)

	before := mustSigner(t, m2, keys.ES256)
	c.Advance(settle(cfg))
	if err := m1.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := mustSigner(t, m1, keys.ES256)
	if want == before {
		t.Fatal("Rotate did not change the ES256 key")
	}
	if got := mustSigner(t, m2, keys.ES256); got != before {
		t.Fatalf("m2 changed keys without reloading: %s", got)
	}
	if err := m2.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mustSigner(t, m2, keys.ES256); got != want {
		t.Errorf("m2 after Reload signs with %s, want %s", got, want)
	}
	testkit.Eventually(t, 5*time.Second, "the polling manager to pick up the rotation", func() bool {
		kid, _, err := m3.Signer(keys.ES256)
		return err == nil && kid == want
	})
	b1, _ := m1.JWKS()
	testkit.Eventually(t, 5*time.Second, "the polling manager to publish the same JWKS", func() bool {
		b3, _ := m3.JWKS()
		return string(b1) == string(b3)
	})
}

func TestManager_ScheduledRotation(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	cfg := testConfig(c)
	cfg.PollInterval = 10 * time.Millisecond
	secret := newSecretsKey(t)
	m1 := mustNewManager(t, db, secret, cfg)
	mustStart(t, m1)
	m2 := mustNewManager(t, db, secret, cfg)
	mustStart(t, m2)
	l := mustList(t, m1)
	old := keyIn(t, l, keys.RS256, keys.StateActive)
	next := keyIn(t, l, keys.RS256, keys.StateNext)

	c.Advance(cfg.RotationPeriod - time.Microsecond)
	if got := mustSigner(t, m1, keys.RS256); got != old {
		t.Fatalf("switched early to %s", got)
	}
	c.Advance(time.Microsecond)
	// Both replicas switch on the schedule itself, without a database write.
	for i, m := range []*keys.Manager{m1, m2} {
		if got := mustSigner(t, m, keys.RS256); got != next {
			t.Errorf("manager %d signs with %s at the scheduled moment, want %s", i+1, got, next)
		}
	}
	// The loops notice the chain has no next key and exactly one creates it.
	testkit.Eventually(t, 10*time.Second, "a new next key", func() bool {
		for _, k := range mustList(t, m1) {
			if k.Alg == keys.RS256 && k.State == keys.StateNext {
				return true
			}
		}
		return false
	})
	var n int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM signing_keys WHERE alg = 'RS256' AND generation = 3`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("generation 3 keys: %d, %v", n, err)
	}
	newNext := keyIn(t, mustList(t, m1), keys.RS256, keys.StateNext)
	testkit.Eventually(t, 5*time.Second, "both managers to publish the new next key", func() bool {
		return slices.Contains(jwksKIDs(t, m1), newNext) && slices.Contains(jwksKIDs(t, m2), newNext)
	})
}

func TestManager_RetiredKeyLeavesJWKSAfterRetention(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	cfg := testConfig(c)
	secret := newSecretsKey(t)
	m := mustNewManager(t, db, secret, cfg)
	mustStart(t, m)
	old := mustSigner(t, m, keys.ES256)
	c.Advance(settle(cfg))
	if err := m.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, etag := m.JWKS()

	c.Advance(cfg.RetainAfter - time.Microsecond)
	if _, _, ok := m.PublicKey(old); !ok || !slices.Contains(jwksKIDs(t, m), old) {
		t.Fatal("retired key left JWKS before RetainAfter")
	}
	c.Advance(time.Microsecond)
	// No reload needed: the published set follows the clock.
	if _, _, ok := m.PublicKey(old); ok || slices.Contains(jwksKIDs(t, m), old) {
		t.Fatal("retired key still published after RetainAfter")
	}
	if _, etag2 := m.JWKS(); etag2 == etag {
		t.Error("ETag unchanged after a key left the JWKS")
	}
	if got := len(jwksKIDs(t, m)); got != 4 {
		t.Errorf("want 4 published keys (active + next per alg), got %d", got)
	}

	// No token can carry the expired kid any more, so a replica's loop
	// deletes the row and its private key.
	polling := cfg
	polling.PollInterval = 10 * time.Millisecond
	mustStart(t, mustNewManager(t, db, secret, polling))
	testkit.Eventually(t, 5*time.Second, "the expired key to be deleted", func() bool {
		var n int
		err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM signing_keys WHERE kid = $1`, old).Scan(&n)
		return err == nil && n == 0
	})
	if l := mustList(t, m); len(l) != 4 {
		t.Errorf("want the two active and two next keys left, got %+v", l)
	}
}

func TestManager_ConcurrentRotateKeepsOneKeyPerGeneration(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	cfg := testConfig(c)
	secret := newSecretsKey(t)
	ms := []*keys.Manager{mustNewManager(t, db, secret, cfg), mustNewManager(t, db, secret, cfg), mustNewManager(t, db, secret, cfg)}
	for _, m := range ms {
		mustStart(t, m)
	}
	c.Advance(settle(cfg))
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Rotate(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Rotate %d: %v", i, err)
		}
	}
	var dup int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM (
SELECT 1 FROM signing_keys GROUP BY alg, generation HAVING count(*) > 1) d`).Scan(&dup); err != nil || dup != 0 {
		t.Fatalf("duplicate generations: %d, %v", dup, err)
	}
	// Each Rotate ran alone under the lock: the first activated the next key,
	// the later ones found a fresh next key and deferred it; one key signs.
	for _, m := range ms {
		if err := m.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := mustSigner(t, ms[0], keys.ES256)
	for i, m := range ms[1:] {
		if got := mustSigner(t, m, keys.ES256); got != want {
			t.Errorf("manager %d signs with %s, manager 0 with %s", i+1, got, want)
		}
	}
	if l := mustList(t, ms[0]); len(l) != 6 {
		t.Errorf("want retired, active and next per alg after concurrent rotations, got %d keys: %+v", len(l), l)
	}
}
