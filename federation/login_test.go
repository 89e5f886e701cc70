package federation

import (
	"context"
	"os"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// mustService is the federation service over a fresh database, without
// pages (resolve needs none).
func mustService(t *testing.T) (*Service, *Provider) {
	t.Helper()
	db := storagetest.NewDB(t)
	h, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	accts := accounts.New(db.Pool, h, zap.NewNop(), accounts.Config{})
	sealer, err := accounts.NewLinkSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry(db.Pool, sealer, nil)
	p, err := reg.Create(context.Background(), audit.Event{}, Spec{Slug: "idp", Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s", AllowSignup: true})
	if err != nil {
		t.Fatal(err)
	}
	return New(reg, accts, nil, sealer, nil, Config{BaseURL: "http://localhost"}), p
}

// TestResolve_ConcurrentFirstLoginsMakeOneAccount: the same new identity
// arriving many times at once (double clicks, two tabs) yields one
// account, one identity row and the same user for every login.
func TestResolve_ConcurrentFirstLoginsMakeOneAccount(t *testing.T) {
	s, p := mustService(t)
	id := &Identity{ProviderID: p.ID, Subject: "sub-1", Email: "new@example.com", EmailVerified: true}
	const n = 8
	var wg sync.WaitGroup
	users := make([]string, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			out, err := s.resolve(context.Background(), p, id, "")
			errs[i] = err
			switch {
			case out.user != nil:
				users[i] = out.user.ID
			case out.prove != nil:
				// Lost the race to the account made by another login with
				// the same address: it must prove the account, never link.
				users[i] = "prove:" + out.prove.ID
			default:
				users[i] = "refused:" + out.code
			}
		}(i)
	}
	close(start)
	wg.Wait()
	var winner string
	for i := range users {
		if errs[i] != nil {
			t.Fatalf("login %d: %v", i, errs[i])
		}
		if len(users[i]) == 36 {
			if winner != "" && winner != users[i] {
				t.Fatalf("two accounts: %s and %s", winner, users[i])
			}
			winner = users[i]
		}
	}
	if winner == "" {
		t.Fatalf("no login succeeded: %v", users)
	}
	var accountsN, identities int
	pool := s.Providers.pool
	_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM users`).Scan(&accountsN)
	_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM user_identities WHERE user_id = $1`, winner).Scan(&identities)
	if accountsN != 1 || identities != 1 {
		t.Fatalf("%d accounts, %d identities", accountsN, identities)
	}
}

// TestUnlink_ConcurrentUnlinksKeepOneWayIn: a password-less account with
// two identities, both unlinked at once: one unlink wins, the other finds
// it would remove the last way in.
func TestUnlink_ConcurrentUnlinksKeepOneWayIn(t *testing.T) {
	s, p := mustService(t)
	ctx := context.Background()
	a := &Identity{ProviderID: p.ID, Subject: "a", Email: "two@example.com", EmailVerified: true}
	out, err := s.resolve(ctx, p, a, "")
	if err != nil || out.user == nil {
		t.Fatalf("first login: %+v %v", out, err)
	}
	uid := out.user.ID
	b := &Identity{ProviderID: p.ID, Subject: "b"}
	// Many rounds: the interleaving that would let both unlinks pass is rare.
	for round := 0; round < 30; round++ {
		for _, id := range []*Identity{a, b} {
			if err := s.link(ctx, audit.Event{}, uid, id, "password", nil); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, sub := range []string{"a", "b"} {
			wg.Add(1)
			go func(i int, sub string) {
				defer wg.Done()
				<-start
				errs[i] = s.Unlink(ctx, audit.Event{}, uid, p.ID, sub)
			}(i, sub)
		}
		close(start)
		wg.Wait()
		var left int
		_ = s.Providers.pool.QueryRow(ctx, `SELECT count(*) FROM user_identities WHERE user_id = $1`, uid).Scan(&left)
		if left != 1 || (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("round %d: %d identities left (errors %v)", round, left, errs)
		}
	}
}
