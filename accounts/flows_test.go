package accounts_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
)

// revoker is a function-field fake of accounts.TokenRevoker.
type revoker struct {
	mu    sync.Mutex
	calls []string
}

func (r *revoker) RevokeSubject(_ context.Context, userID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, userID)
	return nil
}

var _ accounts.TokenRevoker = (*revoker)(nil)

func TestService_Register(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{Webhooks: true})
	u, err := s.Register(ctx, accounts.Registration{Email: " New@Example.com", Password: "tulip-garden-42", Name: "New"})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "new@example.com" || u.EmailVerified || len(u.Roles) != 1 || u.Roles[0] != "user" {
		t.Fatalf("user = %+v", u)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM outbox WHERE kind='webhook' AND type='user.registered' AND payload->>'user_id' = $1`, u.ID); n != 1 {
		t.Errorf("user.registered rows = %d", n)
	}
	if len(mailLinks(t, pool, mail.VerifyEmail, u.Email)) != 1 {
		t.Error("no verification mail queued")
	}
	for _, tc := range []struct{ name, email, pw, field string }{
		{"ErrCommonPassword", "a@example.com", "password123", "password"},
		{"ErrCommonPasswordAnyCase", "a@example.com", "PASSWORD123", "password"},
		{"ErrShortPassword", "a@example.com", "short", "password"},
		{"ErrLongPassword", "a@example.com", string(make([]byte, 73)), "password"},
		{"ErrEmail", "nope", "tulip-garden-42", "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Register(ctx, accounts.Registration{Email: tc.email, Password: tc.pw})
			var pe *accounts.PolicyError
			if !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("err = %v, want policy error on %s", err, tc.field)
			}
		})
	}
	t.Run("ErrEmailTaken", func(t *testing.T) {
		if _, err := s.Register(ctx, accounts.Registration{Email: "NEW@example.com", Password: "tulip-garden-42"}); !errors.Is(err, accounts.ErrEmailTaken) {
			t.Fatalf("err = %v", err)
		}
		if n := countRows(t, pool, `SELECT count(*) FROM outbox`); n != 2 {
			t.Errorf("outbox rows = %d after failed registration, want 2 (nothing from the failure)", n)
		}
	})
	if p := accounts.NewPasswordPolicy(); p.Len() != 1000 {
		t.Errorf("blocklist holds %d passwords, want 1000", p.Len())
	}
}

func TestService_VerifyEmail(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{Webhooks: true})
	u, _ := s.Register(ctx, accounts.Registration{Email: "v@example.com", Password: "tulip-garden-42"})
	tok := lastToken(t, pool, mail.VerifyEmail, "v@example.com")
	if len(tok) < 22 { // 128 bits in base64url
		t.Fatalf("token %q too short", tok)
	}
	got, err := s.VerifyEmail(ctx, tok, accounts.Proof{})
	if err != nil || !got.EmailVerified {
		t.Fatalf("verify: %v %+v", err, got)
	}
	t.Run("ErrInvalidTokenReused", func(t *testing.T) {
		if _, err := s.VerifyEmail(ctx, tok, accounts.Proof{}); !errors.Is(err, accounts.ErrInvalidToken) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrAlreadyVerified", func(t *testing.T) {
		if err := s.ResendVerification(ctx, u.ID); !errors.Is(err, accounts.ErrAlreadyVerified) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrInvalidTokenExpired", func(t *testing.T) {
		now := time.Now()
		s2, pool2 := MustServiceCfg(t, accounts.Config{Now: func() time.Time { return now }})
		if _, err := s2.Register(ctx, accounts.Registration{Email: "x@example.com", Password: "tulip-garden-42"}); err != nil {
			t.Fatal(err)
		}
		tok := lastToken(t, pool2, mail.VerifyEmail, "x@example.com")
		now = now.Add(25 * time.Hour)
		if _, err := s2.VerifyEmail(ctx, tok, accounts.Proof{}); !errors.Is(err, accounts.ErrInvalidToken) {
			t.Fatalf("err = %v", err)
		}
	})
	if n := countRows(t, pool, `SELECT count(*) FROM outbox WHERE type='user.email_verified'`); n != 1 {
		t.Errorf("user.email_verified rows = %d", n)
	}
}

func TestService_EmailChangeNeedsVerification(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{})
	u, _ := s.Register(ctx, accounts.Registration{Email: "old@example.com", Password: "tulip-garden-42"})
	newAddr := "new@example.com"
	got, err := s.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: &newAddr, Proof: accounts.Proof{Password: "tulip-garden-42"}})
	if err != nil || got.Email != "old@example.com" || got.PendingEmail != newAddr {
		t.Fatalf("update: %v %+v", err, got)
	}
	if _, err := s.Authenticate(ctx, newAddr, "tulip-garden-42"); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Fatalf("unverified address logs in: %v", err)
	}
	if err := s.ForgotPassword(ctx, newAddr); err != nil || len(mailLinks(t, pool, mail.PasswordReset, newAddr)) != 0 {
		t.Fatalf("reset mailed to unverified address: %v", err)
	}
	if _, err := s.VerifyEmail(ctx, lastToken(t, pool, mail.VerifyEmail, newAddr), accounts.Proof{Password: "tulip-garden-42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, newAddr, "tulip-garden-42"); err != nil {
		t.Fatalf("verified new address cannot log in: %v", err)
	}
	t.Run("ErrEmailTaken", func(t *testing.T) {
		other, _ := s.Register(ctx, accounts.Registration{Email: "other@example.com", Password: "tulip-garden-42"})
		if _, err := s.UpdateProfile(ctx, other.ID, accounts.ProfileUpdate{Email: &newAddr, Proof: accounts.Proof{Password: "tulip-garden-42"}}); !errors.Is(err, accounts.ErrEmailTaken) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestService_ResetPassword(t *testing.T) {
	ctx := context.Background()
	rv := &revoker{}
	s, pool := MustServiceCfg(t, accounts.Config{Webhooks: true, Revoker: rv, ResendInterval: time.Nanosecond})
	u, _ := s.Register(ctx, accounts.Registration{Email: "r@example.com", Password: "tulip-garden-42"})
	sessTok, _, _ := s.CreateSession(ctx, u.ID, "ua", "127.0.0.1")
	if err := s.ForgotPassword(ctx, "R@example.com"); err != nil {
		t.Fatal(err)
	}
	older := lastToken(t, pool, mail.PasswordReset, "r@example.com")
	if err := s.ForgotPassword(ctx, "r@example.com"); err != nil {
		t.Fatal(err)
	}
	tok := lastToken(t, pool, mail.PasswordReset, "r@example.com")
	t.Run("ErrInvalidTokenSuperseded", func(t *testing.T) {
		if _, err := s.ResetPassword(ctx, older, "meadow-lantern-7"); !errors.Is(err, accounts.ErrInvalidToken) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrPolicy", func(t *testing.T) {
		if _, err := s.ResetPassword(ctx, tok, "qwerty123"); !errors.Is(err, accounts.ErrPolicy) {
			t.Fatalf("err = %v", err)
		}
	})
	if _, err := s.ResetPassword(ctx, tok, "meadow-lantern-7"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "r@example.com", "tulip-garden-42"); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Errorf("old password still works: %v", err)
	}
	if _, err := s.Authenticate(ctx, "r@example.com", "meadow-lantern-7"); err != nil {
		t.Errorf("new password fails: %v", err)
	}
	if _, _, err := s.SessionByToken(ctx, sessTok); !errors.Is(err, accounts.ErrNoSession) {
		t.Errorf("session survived reset: %v", err)
	}
	if len(rv.calls) != 1 || rv.calls[0] != u.ID {
		t.Errorf("revoker calls = %v, want [%s]", rv.calls, u.ID)
	}
	if _, err := s.ResetPassword(ctx, tok, "another-pass-9"); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Errorf("reset token reusable: %v", err)
	}
	if len(mailLinks(t, pool, mail.PasswordChanged, "r@example.com")) != 1 {
		t.Error("no password changed notice queued")
	}
	if n := countRows(t, pool, `SELECT count(*) FROM outbox WHERE type='user.password_reset'`); n != 1 {
		t.Errorf("user.password_reset rows = %d", n)
	}
}

func TestService_AuthenticateThrottled(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, _ := MustServiceCfg(t, accounts.Config{Now: func() time.Time { return now }, Throttle: accounts.ThrottleConfig{Free: 3, Base: time.Second}})
	if _, err := s.Register(ctx, accounts.Registration{Email: "b@example.com", Password: "tulip-garden-42"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if _, err := s.Authenticate(ctx, "b@example.com", "wrong-guess"); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	_, err := s.Authenticate(ctx, "b@example.com", "tulip-garden-42")
	var te *accounts.ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, accounts.ErrThrottled) || te.RetryAfter <= 0 || te.RetryAfterSeconds() != 1 {
		t.Fatalf("right password during backoff: err = %v, want ThrottledError", err)
	}
	t.Run("UnknownEmailThrottledAlike", func(t *testing.T) {
		for i := 0; i < 4; i++ {
			_, _ = s.Authenticate(ctx, "ghost@example.com", "x-wrong-guess")
		}
		if _, err := s.Authenticate(ctx, "ghost@example.com", "x"); !errors.Is(err, accounts.ErrThrottled) {
			t.Fatalf("err = %v", err)
		}
	})
	now = now.Add(2 * time.Second)
	if _, err := s.Authenticate(ctx, "b@example.com", "tulip-garden-42"); err != nil {
		t.Fatalf("after the backoff: %v", err)
	}
	// Success cleared the counter: one failure is not throttled.
	_, _ = s.Authenticate(ctx, "b@example.com", "wrong-guess")
	if _, err := s.Authenticate(ctx, "b@example.com", "tulip-garden-42"); err != nil {
		t.Fatalf("counter not cleared by success: %v", err)
	}
}

func TestService_ChangePasswordAndSessions(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{})
	u, _ := s.Register(ctx, accounts.Registration{Email: "c@example.com", Password: "tulip-garden-42"})
	keepTok, keep, _ := s.CreateSession(ctx, u.ID, "keep", "127.0.0.1")
	otherTok, other, _ := s.CreateSession(ctx, u.ID, "other", "127.0.0.1")
	if err := s.ChangePassword(ctx, u.ID, accounts.Proof{Password: "wrong", Session: keep}, "meadow-lantern-7"); !errors.Is(err, accounts.ErrWrongPassword) {
		t.Fatalf("wrong current: %v", err)
	}
	if err := s.ChangePassword(ctx, u.ID, accounts.Proof{Password: "tulip-garden-42", Session: keep}, "meadow-lantern-7"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByToken(ctx, keepTok); err != nil {
		t.Errorf("current session ended: %v", err)
	}
	if _, _, err := s.SessionByToken(ctx, otherTok); !errors.Is(err, accounts.ErrNoSession) {
		t.Errorf("other session survived: %v", err)
	}
	if len(mailLinks(t, pool, mail.PasswordChanged, "c@example.com")) != 1 {
		t.Error("no notice queued")
	}
	if err := s.EndSession(ctx, u.ID, other.ID); !errors.Is(err, accounts.ErrNoSession) {
		t.Errorf("ending an ended session: %v", err)
	}
	if err := s.EndSession(ctx, u.ID, keep.ID); err != nil {
		t.Fatal(err)
	}
}
