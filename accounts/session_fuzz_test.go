package accounts_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/storage/storagetest"
)

// FuzzSessionByToken: a cookie value that is not a live session's token,
// whatever its bytes, is ErrNoSession (the login page, not a 500), and only
// the real token finds the session.
func FuzzSessionByToken(f *testing.F) {
	db := storagetest.NewDB(f)
	hasher, err := accounts.NewPasswordHasher("bcrypt", 4, 0)
	if err != nil {
		f.Fatal(err)
	}
	svc := accounts.New(db.Pool, hasher, nil, accounts.Config{})
	ctx := context.Background()
	u, err := svc.CreateUser(ctx, accounts.NewUser{Email: "fuzz@example.com", Password: "correct-horse-battery-9"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	token, _, err := svc.CreateSession(ctx, u.ID, "fuzz", "127.0.0.1")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{token, token + "x", token[:len(token)-1], "", " ", "\x00", "\xff\xfe", "' OR '1'='1", "%00", string(make([]byte, 10000))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sess, user, err := svc.SessionByToken(ctx, s)
		if s == token {
			if err != nil || sess == nil || user == nil || user.ID != u.ID {
				t.Fatalf("the real token: %v", err)
			}
			return
		}
		if !errors.Is(err, accounts.ErrNoSession) || sess != nil || user != nil {
			t.Fatalf("%q: session %v user %v err %v, want ErrNoSession", s, sess, user, err)
		}
	})
}
