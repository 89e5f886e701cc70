package keys_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/storagetest"
)

func TestManager_StartCreatesKeys(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	m := mustNewManager(t, db, newSecretsKey(t), testConfig(c))
	mustStart(t, m)

	l := mustList(t, m)
	if len(l) != 4 {
		t.Fatalf("want an active and a next key per alg, got %+v", l)
	}
	for _, alg := range []string{keys.ES256, keys.RS256} {
		active := keyIn(t, l, alg, keys.StateActive)
		next := keyIn(t, l, alg, keys.StateNext)
		if got := mustSigner(t, m, alg); got != active {
			t.Errorf("Signer(%s) = %s, want the active key %s", alg, got, active)
		}
		for _, kid := range []string{active, next} {
			if _, gotAlg, ok := m.PublicKey(kid); !ok || gotAlg != alg {
				t.Errorf("PublicKey(%s) = %q, %v; want %s published", kid, gotAlg, ok, alg)
			}
		}
	}
	_, es, _ := m.Signer(keys.ES256)
	if _, ok := es.(*ecdsa.PrivateKey); !ok {
		t.Errorf("ES256 signer is %T, want *ecdsa.PrivateKey", es)
	}
	_, rs, _ := m.Signer(keys.RS256)
	if k, ok := rs.(*rsa.PrivateKey); !ok || k.N.BitLen() != 2048 {
		t.Errorf("RS256 signer is %T, want a 2048-bit *rsa.PrivateKey", rs)
	}
	// The next key takes over exactly when the active one retires.
	for _, k := range l {
		if k.State == keys.StateActive {
			if !k.ActivatesAt.Equal(c.Now()) || !k.RetiresAt.Equal(c.Now().Add(720*time.Hour)) {
				t.Errorf("active %s window %s..%s", k.Alg, k.ActivatesAt, k.RetiresAt)
			}
		}
		if k.State == keys.StateNext && !k.ActivatesAt.Equal(c.Now().Add(720*time.Hour)) {
			t.Errorf("next %s activates at %s", k.Alg, k.ActivatesAt)
		}
	}
}

func TestManager_SecondManagerLoadsSameKeys(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	secret := newSecretsKey(t)
	m1 := mustNewManager(t, db, secret, testConfig(c))
	mustStart(t, m1)
	before := mustList(t, m1)

	m2 := mustNewManager(t, db, secret, testConfig(c))
	start := time.Now()
	mustStart(t, m2)
	// Later starts only read and decrypt; the design allows 300ms to ready.
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Errorf("Start with existing keys took %s, want <= 300ms", d)
	}
	for _, alg := range []string{keys.ES256, keys.RS256} {
		if a, b := mustSigner(t, m1, alg), mustSigner(t, m2, alg); a != b {
			t.Errorf("%s: managers sign with %s and %s", alg, a, b)
		}
	}
	if after := mustList(t, m2); len(after) != len(before) {
		t.Errorf("second start changed the keys: %+v -> %+v", before, after)
	}
	b1, e1 := m1.JWKS()
	b2, e2 := m2.JWKS()
	if !bytes.Equal(b1, b2) || e1 != e2 {
		t.Errorf("managers publish different JWKS:\n%s\n%s", b1, b2)
	}
}

func TestManager_ConcurrentStartCreatesOneKeyPerGeneration(t *testing.T) {
	for round := range 3 {
		db := storagetest.NewDB(t)
		c := newClock()
		secret := newSecretsKey(t)
		const n = 4
		ms := make([]*keys.Manager, n)
		for i := range ms {
			ms[i] = mustNewManager(t, db, secret, testConfig(c))
		}
		ctx, cancel := context.WithCancel(context.Background())
		errs := make([]error, n)
		var ready, wg sync.WaitGroup
		ready.Add(n)
		gate := make(chan struct{})
		for i, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ready.Done()
				<-gate
				errs[i] = m.Start(ctx)
			}()
		}
		ready.Wait()
		close(gate)
		wg.Wait()
		t.Cleanup(func() {
			cancel()
			for _, m := range ms {
				<-m.Done()
			}
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Start %d: %v", round, i, err)
			}
		}
		rows, err := db.Pool.Query(ctx, `SELECT alg, generation, count(*) FROM signing_keys GROUP BY alg, generation ORDER BY 1, 2`)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var alg string
			var gen, count int
			if err := rows.Scan(&alg, &gen, &count); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s:%dx%d", alg, gen, count))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if want := "ES256:1x1 ES256:2x1 RS256:1x1 RS256:2x1"; strings.Join(got, " ") != want {
			t.Fatalf("round %d: keys per generation = %v, want %s", round, got, want)
		}
		for _, alg := range []string{keys.ES256, keys.RS256} {
			want := mustSigner(t, ms[0], alg)
			for i, m := range ms[1:] {
				if got := mustSigner(t, m, alg); got != want {
					t.Errorf("round %d: manager %d signs %s with %s, manager 0 with %s", round, i+1, alg, got, want)
				}
			}
		}
	}
}

func TestManager_EncryptedAtRest(t *testing.T) {
	db := storagetest.NewDB(t)
	m := mustNewManager(t, db, newSecretsKey(t), testConfig(newClock()))
	mustStart(t, m)

	_, es, _ := m.Signer(keys.ES256)
	_, rs, _ := m.Signer(keys.RS256)
	var secrets [][]byte
	for _, k := range []any{es, rs} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, der)
	}
	secrets = append(secrets, es.(*ecdsa.PrivateKey).D.Bytes(), rs.(*rsa.PrivateKey).D.Bytes(),
		rs.(*rsa.PrivateKey).Primes[0].Bytes())

	// Every column of every row, as bytes and as Postgres renders it.
	rows, err := db.Pool.Query(context.Background(), `SELECT private_key, t::text FROM signing_keys t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var sealed []byte
		var text string
		if err := rows.Scan(&sealed, &text); err != nil {
			t.Fatal(err)
		}
		n++
		for _, s := range secrets {
			if bytes.Contains(sealed, s) || strings.Contains(text, hex.EncodeToString(s)) {
				t.Fatalf("private key material stored in clear in %s", text[:40])
			}
		}
	}
	if err := rows.Err(); err != nil || n != 4 {
		t.Fatalf("rows: %d, %v", n, err)
	}
}

func TestManager_WrongSecretsKeyFailsStart(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	m1 := mustNewManager(t, db, newSecretsKey(t), testConfig(c))
	mustStart(t, m1)

	m2 := mustNewManager(t, db, newSecretsKey(t), testConfig(c))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := m2.Start(ctx)
	if !errors.Is(err, keys.ErrDecrypt) {
		t.Fatalf("Start with another secrets key: %v, want ErrDecrypt", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "AUTHD_SECRETS_KEY") || strings.Contains(msg, "\n") {
		t.Errorf("error should be one line naming AUTHD_SECRETS_KEY: %q", msg)
	}
	if err := m2.Rotate(ctx); !errors.Is(err, keys.ErrDecrypt) {
		t.Errorf("Rotate with another secrets key: %v, want ErrDecrypt", err)
	}
	if l := mustList(t, m1); len(l) != 4 {
		t.Errorf("a manager with the wrong key changed the keys: %+v", l)
	}
	if _, _, err := m2.Signer(keys.ES256); !errors.Is(err, keys.ErrNoActiveKey) {
		t.Errorf("Signer after failed Start: %v, want ErrNoActiveKey", err)
	}
}

func TestManager_TamperedRowFailsStart(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	secret := newSecretsKey(t)
	m1 := mustNewManager(t, db, secret, testConfig(c))
	mustStart(t, m1)
	es := mustSigner(t, m1, keys.ES256)
	rs := mustSigner(t, m1, keys.RS256)
	// Swap two ciphertexts: each still decrypts under the key, but not with
	// its own kid as additional data.
	_, err := db.Pool.Exec(context.Background(), `UPDATE signing_keys a SET private_key = b.private_key
FROM signing_keys b WHERE (a.kid, b.kid) IN (($1, $2), ($2, $1))`, es, rs)
	if err != nil {
		t.Fatal(err)
	}
	m2 := mustNewManager(t, db, secret, testConfig(c))
	if err := m2.Start(context.Background()); !errors.Is(err, keys.ErrDecrypt) {
		t.Fatalf("Start over swapped ciphertexts: %v, want ErrDecrypt", err)
	}
}

func TestNewManager_InvalidConfig(t *testing.T) {
	db := storagetest.NewDB(t)
	c := newClock()
	tests := []struct {
		name   string
		secret []byte
		cfg    func(*keys.Config)
		want   string
	}{
		{"ErrShortSecretsKey", make([]byte, 16), func(*keys.Config) {}, "AUTHD_SECRETS_KEY"},
		{"ErrPrepublishBelowMaxAge", newSecretsKey(t), func(cfg *keys.Config) { cfg.Prepublish = time.Minute }, "AUTHD_KEY_PREPUBLISH"},
		{"ErrRotationBelowPrepublish", newSecretsKey(t), func(cfg *keys.Config) { cfg.RotationPeriod = time.Hour }, "AUTHD_KEY_ROTATION_PERIOD"},
		{"ErrNegativePoll", newSecretsKey(t), func(cfg *keys.Config) { cfg.PollInterval = -time.Second }, "poll interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(c)
			tt.cfg(&cfg)
			_, err := keys.NewManager(db.Pool, tt.secret, cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewManager: %v, want an error naming %s", err, tt.want)
			}
		})
	}
	t.Run("OKDefaults", func(t *testing.T) {
		if _, err := keys.NewManager(db.Pool, newSecretsKey(t), keys.Config{}, nil); err != nil {
			t.Fatal(err)
		}
	})
}
