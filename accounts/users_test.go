package accounts_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage/storagetest"
)

func TestMain(m *testing.M) { os.Exit(storagetest.Main(m)) }

// MustService returns an accounts service on a fresh database, with a cheap
// bcrypt cost so tests stay fast.
func MustService(t *testing.T) *accounts.Service {
	t.Helper()
	db := storagetest.NewDB(t)
	h, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	return accounts.New(db.Pool, h, zap.NewNop(), accounts.Config{})
}

func TestService_CreateUser(t *testing.T) {
	ctx := context.Background()
	s := MustService(t)
	u, err := s.CreateUser(ctx, accounts.NewUser{Email: "  Alice@Example.COM ", Password: "correct horse", Roles: []string{"admin"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "alice@example.com" {
		t.Errorf("email = %q, want normalised", u.Email)
	}
	if !slices.Equal(u.Roles, []string{"admin", "user"}) {
		t.Errorf("roles = %v, want [admin user]", u.Roles)
	}
	t.Run("ErrEmailTaken", func(t *testing.T) {
		_, err := s.CreateUser(ctx, accounts.NewUser{Email: "ALICE@example.com", Password: "x"}, nil)
		if !errors.Is(err, accounts.ErrEmailTaken) {
			t.Fatalf("err = %v, want ErrEmailTaken", err)
		}
	})
	t.Run("ErrUnknownRole", func(t *testing.T) {
		_, err := s.CreateUser(ctx, accounts.NewUser{Email: "bob@example.com", Password: "x", Roles: []string{"nope"}}, nil)
		if !errors.Is(err, accounts.ErrUnknownRole) {
			t.Fatalf("err = %v, want ErrUnknownRole", err)
		}
		if _, err := s.UserByEmail(ctx, "bob@example.com"); !errors.Is(err, accounts.ErrNotFound) {
			t.Fatalf("half-created user survived: %v", err)
		}
	})
	t.Run("ErrInvalidEmail", func(t *testing.T) {
		_, err := s.CreateUser(ctx, accounts.NewUser{Email: "not an email", Password: "x"}, nil)
		if !errors.Is(err, accounts.ErrInvalidEmail) {
			t.Fatalf("err = %v, want ErrInvalidEmail", err)
		}
	})
}

func TestService_Authenticate(t *testing.T) {
	ctx := context.Background()
	s := MustService(t)
	if _, err := s.CreateUser(ctx, accounts.NewUser{Email: "a@example.com", Password: "right password"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "A@example.com", "right password"); err != nil {
		t.Fatalf("OK: %v", err)
	}
	for _, tc := range []struct{ name, email, pw string }{
		{"WrongPassword", "a@example.com", "wrong"},
		{"UnknownEmail", "nobody@example.com", "right password"},
		{"TooLong", "a@example.com", string(make([]byte, 200))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Authenticate(ctx, tc.email, tc.pw); !errors.Is(err, accounts.ErrInvalidCredentials) {
				t.Fatalf("err = %v, want ErrInvalidCredentials", err)
			}
		})
	}
}

func TestPasswordHasher_RehashWhenParametersChange(t *testing.T) {
	ctx := context.Background()
	old, _ := accounts.NewPasswordHasher("bcrypt", 4, 1)
	h, err := old.Hash(ctx, "pw-12345678")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		algo       string
		cost       int
		wantRehash bool
	}{{"SameCost", "bcrypt", 4, false}, {"HigherCost", "bcrypt", 5, true}, {"Argon2id", "argon2id", 4, true}} {
		t.Run(tc.name, func(t *testing.T) {
			nh, _ := accounts.NewPasswordHasher(tc.algo, tc.cost, 1)
			ok, rehash, err := nh.Verify(ctx, h, "pw-12345678")
			if err != nil || !ok || rehash != tc.wantRehash {
				t.Fatalf("ok=%v rehash=%v err=%v; want ok, rehash=%v", ok, rehash, err, tc.wantRehash)
			}
		})
	}
	t.Run("Argon2idRoundTrip", func(t *testing.T) {
		a, _ := accounts.NewPasswordHasher("argon2id", 0, 1)
		enc, err := a.Hash(ctx, "pw-12345678")
		if err != nil {
			t.Fatal(err)
		}
		if ok, rehash, err := a.Verify(ctx, enc, "pw-12345678"); !ok || rehash || err != nil {
			t.Fatalf("ok=%v rehash=%v err=%v", ok, rehash, err)
		}
		if ok, _, _ := a.Verify(ctx, enc, "other"); ok {
			t.Fatal("wrong password accepted")
		}
	})
}

func TestService_Sessions(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{})
	u, _ := s.CreateUser(ctx, accounts.NewUser{Email: "a@example.com", Password: "pw"}, nil)
	tok1, s1, err := s.CreateSession(ctx, u.ID, "ua1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, _ := s.CreateSession(ctx, u.ID, "ua2", "127.0.0.1")
	if got, gu, err := s.SessionByToken(ctx, tok1); err != nil || got.ID != s1.ID || gu.ID != u.ID {
		t.Fatalf("lookup: %v", err)
	}
	if _, _, err := s.SessionByToken(ctx, "forged"); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("forged token: %v", err)
	}
	if err := s.RevokeUserSessions(ctx, pool, u.ID, s1.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByToken(ctx, tok2); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("revoked session still live: %v", err)
	}
	if _, _, err := s.SessionByToken(ctx, tok1); err != nil {
		t.Fatalf("kept session was revoked: %v", err)
	}
	list, _ := s.Sessions(ctx, u.ID)
	if len(list) != 1 {
		t.Fatalf("live sessions = %d, want 1", len(list))
	}
}
