package accounts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/mail"
	"github.com/authd/authd/internal/reqctx"
)

const lcPass = "tulip-garden-42"

// fromIP is a request context whose client address is ip, as the HTTP
// middleware sets it.
func fromIP(ip string) context.Context {
	return reqctx.WithClient(context.Background(), reqctx.Client{IP: ip})
}

func mailData(t *testing.T, pool *pgxpool.Pool, template, addr string) []mail.Data {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT payload FROM outbox WHERE kind = 'mail' AND type = $1 AND payload->>'to' = $2 ORDER BY created_at`, template, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []mail.Data
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var p struct {
			Data mail.Data `json:"data"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Data)
	}
	return out
}

// A password change ends what the old password opened: other sessions, the
// user's OAuth tokens (through the Revoker), and reset links already mailed.
func TestService_ChangePasswordEndsWhatTheOldOneOpened(t *testing.T) {
	ctx := context.Background()
	rv := &revoker{}
	s, pool := MustServiceCfg(t, accounts.Config{Revoker: rv, ResendInterval: time.Nanosecond})
	u, _ := s.Register(ctx, accounts.Registration{Email: "pc@example.com", Password: lcPass, Name: "Pat"})
	_, keep, _ := s.CreateSession(ctx, u.ID, "keep", "127.0.0.1")
	otherTok, _, _ := s.CreateSession(ctx, u.ID, "other", "127.0.0.1")
	if err := s.ForgotPassword(ctx, "pc@example.com"); err != nil {
		t.Fatal(err)
	}
	resetTok := lastToken(t, pool, mail.PasswordReset, "pc@example.com")

	if err := s.ChangePassword(ctx, u.ID, accounts.Proof{Password: lcPass, Session: keep}, "meadow-lantern-7"); err != nil {
		t.Fatal(err)
	}
	if len(rv.calls) != 1 || rv.calls[0] != u.ID {
		t.Errorf("OAuth tokens not revoked: revoker calls %v", rv.calls)
	}
	if _, _, err := s.SessionByToken(ctx, otherTok); !errors.Is(err, accounts.ErrNoSession) {
		t.Errorf("other session survived: %v", err)
	}
	if _, err := s.ResetPassword(ctx, resetTok, "another-pass-99"); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Errorf("reset link mailed before the change still works: %v", err)
	}
	if n := len(mailLinks(t, pool, mail.PasswordChanged, "pc@example.com")); n != 1 {
		t.Errorf("password-changed notices = %d, want 1", n)
	}
	if _, err := s.Authenticate(ctx, "pc@example.com", "meadow-lantern-7"); err != nil {
		t.Errorf("new password: %v", err)
	}
}

// Changing the password or the email needs the current password or a
// recent login; an old session (or a token of unknown age) is not enough.
func TestService_SensitiveChangesNeedProof(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, _ := MustServiceCfg(t, accounts.Config{Now: func() time.Time { return now }})
	u, _ := s.Register(ctx, accounts.Registration{Email: "pr@example.com", Password: lcPass})
	_, sess, _ := s.CreateSession(ctx, u.ID, "ua", "127.0.0.1")
	now = now.Add(10 * time.Minute) // the login is no longer recent
	newAddr := "pr2@example.com"
	for _, tc := range []struct {
		name  string
		proof accounts.Proof
		want  error
	}{
		{"ErrReauthRequiredOldSession", accounts.Proof{Session: sess}, accounts.ErrReauthRequired},
		{"ErrReauthRequiredUnknownAuthTime", accounts.Proof{}, accounts.ErrReauthRequired},
		{"ErrReauthRequiredOldToken", accounts.Proof{AuthTime: now.Add(-6 * time.Minute)}, accounts.ErrReauthRequired},
		{"ErrWrongPassword", accounts.Proof{Password: "not-the-password", Session: sess}, accounts.ErrWrongPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.ChangePassword(ctx, u.ID, tc.proof, "meadow-lantern-7"); !errors.Is(err, tc.want) {
				t.Errorf("password: err = %v, want %v", err, tc.want)
			}
			if _, err := s.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: &newAddr, Proof: tc.proof}); !errors.Is(err, tc.want) {
				t.Errorf("email: err = %v, want %v", err, tc.want)
			}
		})
	}
	name := "Renamed"
	if _, err := s.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Name: &name}); err != nil {
		t.Errorf("a name change needs no proof: %v", err)
	}
	t.Run("OKRecentToken", func(t *testing.T) {
		if _, err := s.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: &newAddr, Proof: accounts.Proof{AuthTime: now.Add(-time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		if err := s.ChangePassword(ctx, u.ID, accounts.Proof{AuthTime: now.Add(-time.Minute)}, "meadow-lantern-7"); err != nil {
			t.Fatal(err)
		}
	})
}

// An email change: the mailed link alone does not complete it (whoever
// asked chose where it went); the account's own session or password does.
// The old address is told, with a link that cancels; completing it ends
// other sessions, OAuth tokens and reset links of the old address.
func TestService_EmailChangeCannotBeHijacked(t *testing.T) {
	ctx := context.Background()
	rv := &revoker{}
	s, pool := MustServiceCfg(t, accounts.Config{Revoker: rv, ResendInterval: time.Nanosecond})
	u, _ := s.Register(ctx, accounts.Registration{Email: "owner@example.com", Password: lcPass, Name: "Visit evil.example now"})
	if _, err := s.VerifyEmail(ctx, lastToken(t, pool, mail.VerifyEmail, "owner@example.com"), accounts.Proof{}); err != nil {
		t.Fatal(err)
	}
	_, ownerSess, _ := s.CreateSession(ctx, u.ID, "owner", "127.0.0.1")
	otherTok, _, _ := s.CreateSession(ctx, u.ID, "other", "127.0.0.1")
	mallory, _ := s.Register(ctx, accounts.Registration{Email: "mallory@example.com", Password: "mallory-pass-1"})
	_, mallorySess, _ := s.CreateSession(ctx, mallory.ID, "mallory", "127.0.0.1")
	if err := s.ForgotPassword(ctx, "owner@example.com"); err != nil {
		t.Fatal(err)
	}
	oldReset := lastToken(t, pool, mail.PasswordReset, "owner@example.com")

	newAddr := "new-home@example.com"
	if _, err := s.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: &newAddr, Proof: accounts.Proof{Password: lcPass}}); err != nil {
		t.Fatal(err)
	}
	verify := lastToken(t, pool, mail.VerifyEmail, newAddr)
	for _, d := range mailData(t, pool, mail.VerifyEmail, newAddr) {
		if d.Name != "" {
			t.Errorf("mail to the unverified address carries the display name %q", d.Name)
		}
	}
	notices := mailData(t, pool, mail.EmailChangeRequested, "owner@example.com")
	if len(notices) != 1 || notices[0].NewEmail != newAddr || !strings.Contains(notices[0].Link, "/email/cancel?token=") {
		t.Fatalf("old address notice = %+v", notices)
	}

	t.Run("PeekChangesNothing", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			link, err := s.PeekEmailLink(ctx, verify)
			if err != nil || !link.Change || link.Address != newAddr || link.UserID != u.ID {
				t.Fatalf("peek: %+v %v", link, err)
			}
		}
		if got, _ := s.User(ctx, u.ID); got.Email != "owner@example.com" {
			t.Fatalf("peeking changed the email to %s", got.Email)
		}
	})
	t.Run("ErrReauthRequiredLinkAlone", func(t *testing.T) {
		if _, err := s.VerifyEmail(ctx, verify, accounts.Proof{}); !errors.Is(err, accounts.ErrReauthRequired) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrReauthRequiredOtherAccountsSession", func(t *testing.T) {
		if _, err := s.VerifyEmail(ctx, verify, accounts.Proof{Session: mallorySess}); !errors.Is(err, accounts.ErrReauthRequired) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ErrWrongPassword", func(t *testing.T) {
		if _, err := s.VerifyEmail(ctx, verify, accounts.Proof{Password: "mallory-pass-1"}); !errors.Is(err, accounts.ErrWrongPassword) {
			t.Fatalf("err = %v", err)
		}
	})
	got, err := s.VerifyEmail(ctx, verify, accounts.Proof{Session: ownerSess})
	if err != nil || got.Email != newAddr {
		t.Fatalf("owner's session: %+v %v", got, err)
	}
	if _, _, err := s.SessionByToken(ctx, otherTok); !errors.Is(err, accounts.ErrNoSession) {
		t.Errorf("other session survived the email change: %v", err)
	}
	if len(rv.calls) != 1 {
		t.Errorf("OAuth tokens not revoked: %v", rv.calls)
	}
	if _, err := s.ResetPassword(ctx, oldReset, "another-pass-99"); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Errorf("reset link of the old address still works: %v", err)
	}
	cancelTok := strings.SplitN(notices[0].Link, "token=", 2)[1]
	if err := s.CancelEmailChange(ctx, cancelTok); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Errorf("cancel link after completion: %v", err)
	}
}

func TestService_CancelEmailChange(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{})
	u, _ := s.Register(ctx, accounts.Registration{Email: "c1@example.com", Password: lcPass})
	newAddr := "c2@example.com"
	if _, err := s.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: &newAddr, Proof: accounts.Proof{Password: lcPass}}); err != nil {
		t.Fatal(err)
	}
	verify := lastToken(t, pool, mail.VerifyEmail, newAddr)
	cancel := lastToken(t, pool, mail.EmailChangeRequested, "c1@example.com")
	if ok, err := s.CancelLinkValid(ctx, cancel); !ok || err != nil {
		t.Fatalf("cancel link valid = %v, %v", ok, err)
	}
	if err := s.CancelEmailChange(ctx, cancel); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(ctx, u.ID); got.PendingEmail != "" || got.Email != "c1@example.com" {
		t.Fatalf("after cancel: %+v", got)
	}
	if _, err := s.VerifyEmail(ctx, verify, accounts.Proof{Password: lcPass}); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Fatalf("verification link survived the cancel: %v", err)
	}
	if err := s.CancelEmailChange(ctx, cancel); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Fatalf("cancel link reused: %v", err)
	}
}

func TestService_EmailChangesRateLimitedPerUser(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, _ := MustServiceCfg(t, accounts.Config{Now: func() time.Time { return now }, EmailChanges: 2})
	u, _ := s.Register(ctx, accounts.Registration{Email: "rl@example.com", Password: lcPass})
	change := func(i int) error {
		a := fmt.Sprintf("rl%d@example.com", i)
		_, err := s.UpdateProfile(ctx, u.ID, accounts.ProfileUpdate{Email: &a, Proof: accounts.Proof{Password: lcPass}})
		return err
	}
	for i := 0; i < 2; i++ {
		if err := change(i); err != nil {
			t.Fatal(err)
		}
	}
	var soon *accounts.TooSoonError
	if err := change(9); !errors.As(err, &soon) || soon.RetryAfter <= 0 || soon.RetryAfter > time.Hour {
		t.Fatalf("third change within the hour: %v", err)
	}
	now = now.Add(time.Hour + time.Second)
	if err := change(10); err != nil {
		t.Fatalf("after the hour: %v", err)
	}
}

// Mail to an address nobody has proven carries nothing the registrant
// chose: a sign-up with a stranger's address cannot relay a message.
func TestService_UnverifiedMailHasNoDisplayName(t *testing.T) {
	ctx := context.Background()
	s, pool := MustServiceCfg(t, accounts.Config{ResendInterval: time.Nanosecond})
	const lure = "Call +1-555-0100 to claim your prize"
	if _, err := s.Register(ctx, accounts.Registration{Email: "victim@example.com", Password: lcPass, Name: lure}); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgotPassword(ctx, "victim@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []string{mail.VerifyEmail, mail.PasswordReset} {
		ds := mailData(t, pool, tmpl, "victim@example.com")
		if len(ds) == 0 {
			t.Fatalf("no %s mail", tmpl)
		}
		for _, d := range ds {
			if d.Name != "" {
				t.Errorf("%s mail to an unverified address carries the name %q", tmpl, d.Name)
			}
		}
	}
}

// Failures from other addresses cannot keep the owner, on an address of
// their own, out for more than AccountLock; the attacker's addresses are
// locked out with a growing backoff.
func TestService_LockoutCannotBeAimed(t *testing.T) {
	now := time.Now()
	s, _ := MustServiceCfg(t, accounts.Config{Now: func() time.Time { return now }})
	if _, err := s.Register(context.Background(), accounts.Registration{Email: "target@example.com", Password: lcPass}); err != nil {
		t.Fatal(err)
	}
	// 300 failures from 60 addresses, 5 each: more than the account-wide
	// allowance (100), as a botnet would.
	for i := 0; i < 300; i++ {
		ctx := fromIP(fmt.Sprintf("198.51.100.%d", i%60))
		_, err := s.Authenticate(ctx, "target@example.com", "guess-"+fmt.Sprint(i))
		var te *accounts.ThrottledError
		if errors.As(err, &te) {
			if te.RetryAfter > 3*time.Second {
				t.Fatalf("attempt %d: locked for %s", i, te.RetryAfter)
			}
			now = now.Add(te.RetryAfter) // the attacker waits out the short account-wide pause
			continue
		}
		if !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	owner := fromIP("203.0.113.7")
	_, err := s.Authenticate(owner, "target@example.com", lcPass)
	var te *accounts.ThrottledError
	if errors.As(err, &te) {
		if te.RetryAfter > 3*time.Second || te.RetryAfterSeconds() > 3 {
			t.Fatalf("owner on a fresh address locked out for %s", te.RetryAfter)
		}
		now = now.Add(te.RetryAfter)
		_, err = s.Authenticate(owner, "target@example.com", lcPass)
	}
	if err != nil {
		t.Fatalf("owner after at most a few seconds: %v", err)
	}
	t.Run("AttackerAddressBacksOff", func(t *testing.T) {
		attacker := fromIP("198.51.100.200")
		for i := 0; i < 8; i++ {
			now = now.Add(5 * time.Second) // past the account-wide pause and this address's lock so far
			if _, err := s.Authenticate(attacker, "target@example.com", "more-guesses"); !errors.Is(err, accounts.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		_, err := s.Authenticate(attacker, "target@example.com", lcPass)
		if !errors.As(err, &te) || te.RetryAfter < 4*time.Second {
			t.Fatalf("attacker address after 8 failures: %v", err)
		}
	})
	t.Run("IPv6SameSubnetShares", func(t *testing.T) {
		for i := 0; i < 9; i++ {
			now = now.Add(5 * time.Second)
			if _, err := s.Authenticate(fromIP(fmt.Sprintf("2001:db8:1:2::%x", i+1)), "target@example.com", "v6-guess"); !errors.Is(err, accounts.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		now = now.Add(4 * time.Second) // past the account-wide pause, within the /64's 8s lock
		if _, err := s.Authenticate(fromIP("2001:db8:1:2::ffff"), "target@example.com", lcPass); !errors.Is(err, accounts.ErrThrottled) {
			t.Fatalf("another address of the same /64: %v", err)
		}
	})
}

// Every login costs exactly one password-hash computation, whether the
// account exists and whatever the password's length (bcrypt refuses over
// 72 bytes at once, which used to make unknown accounts answer faster).
func TestService_LoginCostsOneHashWhateverTheAccount(t *testing.T) {
	for _, algo := range []string{"bcrypt", "argon2id"} {
		t.Run(algo, func(t *testing.T) {
			_, pool := MustServiceCfg(t, accounts.Config{})
			h, err := accounts.NewPasswordHasher(algo, 4, 0)
			if err != nil {
				t.Fatal(err)
			}
			s := accounts.New(pool, h, nil, accounts.Config{Throttle: accounts.ThrottleConfig{Free: 1000}})
			if _, err := s.Register(context.Background(), accounts.Registration{Email: "known@example.com", Password: lcPass}); err != nil {
				t.Fatal(err)
			}
			for _, email := range []string{"known@example.com", "unknown@example.com"} {
				for _, n := range []int{1, 8, 72, 73, 200, 4096} {
					before := h.Ops()
					_, err := s.Authenticate(fromIP("192.0.2.1"), email, strings.Repeat("p", n))
					if !errors.Is(err, accounts.ErrInvalidCredentials) {
						t.Fatalf("%s, %d bytes: %v", email, n, err)
					}
					if ops := h.Ops() - before; ops != 1 {
						t.Errorf("%s, %d-byte password: %d hash computations, want 1", email, n, ops)
					}
				}
			}
		})
	}
}

func TestService_OverlongEmailRefusedBeforeTheDatabase(t *testing.T) {
	s, pool := MustServiceCfg(t, accounts.Config{})
	long := strings.Repeat("a", 300) + "@example.com"
	if _, err := s.Authenticate(fromIP("192.0.2.1"), long, "whatever-pass"); !errors.Is(err, accounts.ErrInvalidEmail) {
		t.Fatalf("err = %v", err)
	}
	if n := countRows(t, pool, `SELECT count(*) FROM login_failures`); n != 0 {
		t.Fatalf("login_failures rows = %d, want 0", n)
	}
}

func TestService_SessionsIdleAndAbsoluteLifetime(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s, _ := MustServiceCfg(t, accounts.Config{Now: func() time.Time { return now }, SessionIdleTimeout: time.Hour, SessionMaxAge: 3 * time.Hour})
	u, _ := s.Register(ctx, accounts.Registration{Email: "sess@example.com", Password: lcPass})
	t.Run("ErrNoSessionIdle", func(t *testing.T) {
		tok, _, _ := s.CreateSession(ctx, u.ID, "ua", "127.0.0.1")
		now = now.Add(59 * time.Minute)
		if _, _, err := s.SessionByToken(ctx, tok); err != nil {
			t.Fatalf("used within the idle timeout: %v", err)
		}
		now = now.Add(61 * time.Minute)
		if _, _, err := s.SessionByToken(ctx, tok); !errors.Is(err, accounts.ErrNoSession) {
			t.Fatalf("idle for 61m: %v", err)
		}
	})
	t.Run("ErrNoSessionMaxAge", func(t *testing.T) {
		tok, _, _ := s.CreateSession(ctx, u.ID, "ua", "127.0.0.1")
		for i := 0; i < 5; i++ { // active every 40 minutes
			now = now.Add(40 * time.Minute)
			_, _, err := s.SessionByToken(ctx, tok)
			if i < 4 && err != nil {
				t.Fatalf("active session at %dm: %v", (i+1)*40, err)
			}
			if i == 4 && !errors.Is(err, accounts.ErrNoSession) {
				t.Fatalf("active session past its absolute lifetime: %v", err)
			}
		}
	})
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"OK", "Ada Lovelace", true},
		{"OKJoiners", "می\u200cخواهم 👩\u200d💻", true},
		{"ErrBidiOverride", "evil\u202Egnp.exe", false},
		{"ErrBidiIsolate", "a\u2067b", false},
		{"ErrRLM", "a\u200Fb", false},
		{"ErrLineSeparator", "a\u2028b", false},
		{"ErrParagraphSeparator", "a\u2029b", false},
		{"ErrZeroWidthSpace", "ad\u200Bmin", false},
		{"ErrBOM", "a\uFEFFb", false},
		{"ErrTag", "a\U000E0041b", false},
		{"ErrControl", "a\x07b", false},
		{"ErrNewline", "a\nb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := accounts.CheckName("name", tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

// On the API, the token's auth_time stands in for the session's login time:
// an email or password change needs it recent, or current_password.
func TestAPI_ChangesNeedPasswordOrRecentLogin(t *testing.T) {
	srv, s := MustAPI(t, accounts.Config{}, accounts.HandlerConfig{})
	u, _ := s.Register(context.Background(), accounts.Registration{Email: "api-re@example.com", Password: lcPass})
	for _, tc := range []struct {
		name, method, path, token string
		body                      map[string]string
		status                    int
	}{
		{"ErrEmailOldToken", "PATCH", "/api/v1/me", u.ID, map[string]string{"email": "api-re2@example.com"}, 403},
		{"ErrPasswordOldToken", "POST", "/api/v1/me/password", u.ID, map[string]string{"new_password": "meadow-lantern-7"}, 403},
		{"OKNameOldToken", "PATCH", "/api/v1/me", u.ID, map[string]string{"name": "Re"}, 200},
		{"OKEmailRecentToken", "PATCH", "/api/v1/me", u.ID + "+recent", map[string]string{"email": "api-re2@example.com"}, 200},
		{"OKPasswordCurrentPassword", "POST", "/api/v1/me/password", u.ID, map[string]string{"current_password": lcPass, "new_password": "meadow-lantern-7"}, 204},
		{"OKPasswordRecentToken", "POST", "/api/v1/me/password", u.ID + "+recent", map[string]string{"new_password": "another-lantern-8"}, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, tc.method, srv.URL+tc.path, tc.token, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if tc.status == 403 && !strings.Contains(string(body), "reauthentication_required") {
				t.Fatalf("403 without the problem type: %s", body)
			}
		})
	}
}
