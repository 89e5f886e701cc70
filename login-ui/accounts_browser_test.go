package loginui_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/authd/authd/accounts"
)

const (
	pw1 = "tulip-garden-42"
	pw2 = "meadow-lantern-7"
)

func TestBrowser_RegisterAndVerifyEmail(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := newBrowser(t)

	open(t, ctx, s.url+"/register")
	screenshot(t, ctx, "register")
	fill(t, ctx, "name", "Ada Lovelace", "email", "ada@example.com", "password", "password123", "confirm_password", "password123")
	if resp := submit(t, ctx, "/register"); resp.Status != 400 {
		t.Fatalf("common password: status %d", resp.Status)
	}
	mustContain(t, ctx, "most common passwords")
	screenshot(t, ctx, "register-error")

	fill(t, ctx, "password", pw1, "confirm_password", pw1)
	if resp := submit(t, ctx, "/register"); resp.Status != 200 {
		t.Fatalf("register: status %d", resp.Status)
	}
	mustContain(t, ctx, "Your account", "ada@example.com", "not verified", "We sent you an email")
	screenshot(t, ctx, "account-welcome")

	link := s.mailTo("ada@example.com", "Verify your email address")
	if !strings.HasPrefix(link, s.url+"/verify-email?token=") {
		t.Fatalf("link = %s", link)
	}
	open(t, ctx, s.url+"/dev/mail")
	screenshot(t, ctx, "dev-mail")
	if st := open(t, ctx, link); st != 200 {
		t.Fatalf("verify: status %d", st)
	}
	mustContain(t, ctx, "Confirm your email address", "ada@example.com")
	screenshot(t, ctx, "verify-email-confirm")
	if u, _ := s.accts.UserByEmail(context.Background(), "ada@example.com"); u.EmailVerified {
		t.Fatal("opening the link verified the address: a mail scanner's fetch would too")
	}
	submit(t, ctx, "/verify-email")
	mustContain(t, ctx, "Email verified", "ada@example.com")
	screenshot(t, ctx, "verify-email")
	u, err := s.accts.UserByEmail(context.Background(), "ada@example.com")
	if err != nil || !u.EmailVerified || u.Name != "Ada Lovelace" {
		t.Fatalf("user = %+v, %v", u, err)
	}
	if st := open(t, ctx, link); st != 400 {
		t.Fatalf("reused link: status %d", st)
	}
	mustContain(t, ctx, "invalid, has expired or was already used")
	screenshot(t, ctx, "verify-email-invalid")
}

func TestBrowser_ForgotAndResetPassword(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := newBrowser(t)
	bg := context.Background()
	u, err := s.accts.CreateUser(bg, accounts.NewUser{Email: "bob@example.com", Password: pw1, Name: "Bob", Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherTok, _, _ := s.accts.CreateSession(bg, u.ID, "Firefox", "10.0.0.1")

	open(t, ctx, s.url+"/password/forgot")
	screenshot(t, ctx, "forgot")
	fill(t, ctx, "email", "bob@example.com")
	submit(t, ctx, "/password/forgot")
	mustContain(t, ctx, "Check your email", "If an account exists")
	screenshot(t, ctx, "forgot-sent")

	link := s.mailTo("bob@example.com", "Reset your password")
	open(t, ctx, link)
	screenshot(t, ctx, "reset")
	fill(t, ctx, "password", pw2, "confirm_password", pw2)
	submit(t, ctx, "/password/reset")
	mustContain(t, ctx, "Password changed")
	screenshot(t, ctx, "reset-done")
	if _, _, err := s.accts.SessionByToken(bg, otherTok); !errors.Is(err, accounts.ErrNoSession) {
		t.Errorf("other session survived the reset: %v", err)
	}
	s.mailTo("bob@example.com", "Your password was changed")

	open(t, ctx, s.url+"/login")
	fill(t, ctx, "email", "bob@example.com", "password", pw1)
	if resp := submit(t, ctx, "/login"); resp.Status != 401 {
		t.Fatalf("old password: status %d", resp.Status)
	}
	fill(t, ctx, "password", pw2)
	submit(t, ctx, "/login")
	mustContain(t, ctx, "Your account", "bob@example.com")

	if st := open(t, ctx, link); st != 400 {
		t.Fatalf("reused reset link: status %d", st)
	}
	screenshot(t, ctx, "reset-invalid")
}

// login logs the browser in through the /login page.
func login(t *testing.T, ctx context.Context, s *site, email, password string) {
	t.Helper()
	open(t, ctx, s.url+"/login")
	fill(t, ctx, "email", email, "password", password)
	submit(t, ctx, "/login")
	mustContain(t, ctx, "Your account")
}

func TestBrowser_ProfileAndSessions(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := newBrowser(t)
	bg := context.Background()
	u, err := s.accts.CreateUser(bg, accounts.NewUser{Email: "cy@example.com", Password: pw1, Name: "Cy", Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherTok, other, _ := s.accts.CreateSession(bg, u.ID, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "10.0.0.7")
	login(t, ctx, s, "cy@example.com", pw1)
	screenshot(t, ctx, "account")

	fill(t, ctx, "name", "Cyrus Smith")
	submit(t, ctx, "/account/profile")
	mustContain(t, ctx, "Your profile was saved.")
	if v, _ := chromedp.Run(ctx, chromedp.Value(chromedp.ID("name"))); v != "Cyrus Smith" {
		t.Fatalf("name field = %q", v)
	}

	// End the other device's session.
	if err := chromedp.Do(ctx, chromedp.Query(chromedp.CSS(`input[name=session_id][value="`+other.ID+`"]`))); err != nil {
		t.Fatalf("other session not listed: %v", err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`input[value="`+other.ID+`"] ~ button`))); err != nil {
		t.Fatal(err)
	}
	mustContain(t, ctx, "The session was ended.")
	screenshot(t, ctx, "account-session-ended")
	if _, _, err := s.accts.SessionByToken(bg, otherTok); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("ended session still live: %v", err)
	}

	// Change the email: the login is recent, so no password is asked; this
	// browser's session confirms the link.
	thirdTok, _, _ := s.accts.CreateSession(bg, u.ID, "curl/8", "10.0.0.8")
	fill(t, ctx, "email", "cyrus@example.com")
	submit(t, ctx, "/account/profile")
	mustContain(t, ctx, "Waiting for you to confirm", "cyrus@example.com")
	screenshot(t, ctx, "account-email-pending")
	got, _ := s.accts.User(bg, u.ID)
	if got.Name != "Cyrus Smith" || got.Email != "cy@example.com" || got.PendingEmail != "cyrus@example.com" {
		t.Fatalf("user = %+v", got)
	}
	s.mailTo("cy@example.com", "Your email address is being changed")
	open(t, ctx, s.mailTo("cyrus@example.com", "Verify your email address"))
	mustContain(t, ctx, "Make cyrus@example.com the email address you log in with?")
	submit(t, ctx, "/verify-email")
	mustContain(t, ctx, "Email verified")
	open(t, ctx, s.url+"/account")
	mustContain(t, ctx, "Signed in as cyrus@example.com")
	if _, _, err := s.accts.SessionByToken(bg, thirdTok); !errors.Is(err, accounts.ErrNoSession) {
		t.Fatalf("another session survived the email change: %v", err)
	}

	// Change the password: wrong current first.
	fill(t, ctx, "current_password", "not-my-password", "new_password", pw2, "confirm_password", pw2)
	if resp := submit(t, ctx, "/account/password"); resp.Status != 400 {
		t.Fatalf("wrong current password: status %d", resp.Status)
	}
	mustContain(t, ctx, "current password is not correct")
	screenshot(t, ctx, "account-password-error")
	fill(t, ctx, "current_password", pw1, "new_password", pw2, "confirm_password", pw2)
	submit(t, ctx, "/account/password")
	mustContain(t, ctx, "Your password was changed.")
	if _, err := s.accts.Authenticate(bg, "cyrus@example.com", pw2); err != nil {
		t.Fatalf("new password: %v", err)
	}
}

// The verification link of an email change, opened in a browser that is not
// logged in to the account, asks for the account's password; the notice to
// the old address carries a link that cancels a change.
func TestBrowser_EmailChangeNeedsTheOwner(t *testing.T) {
	s := newSite(t, siteOpts{})
	ctx := newBrowser(t)
	bg := context.Background()
	u, err := s.accts.CreateUser(bg, accounts.NewUser{Email: "dora@example.com", Password: pw1, Name: "Dora", Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	login(t, ctx, s, "dora@example.com", pw1)
	fill(t, ctx, "email", "dora.new@example.com")
	submit(t, ctx, "/account/profile")
	mustContain(t, ctx, "Waiting for you to confirm")
	submit(t, ctx, "/logout")

	open(t, ctx, s.mailTo("dora.new@example.com", "Verify your email address"))
	mustContain(t, ctx, "Confirm your new email address", "enter its password")
	screenshot(t, ctx, "verify-email-change")
	fill(t, ctx, "password", "not-doras-password")
	if resp := submit(t, ctx, "/verify-email"); resp.Status != 400 {
		t.Fatalf("wrong password: status %d", resp.Status)
	}
	mustContain(t, ctx, "current password is not correct")
	if got, _ := s.accts.User(bg, u.ID); got.Email != "dora@example.com" {
		t.Fatalf("email changed without the password: %+v", got)
	}
	fill(t, ctx, "password", pw1)
	if resp := submit(t, ctx, "/verify-email"); resp.Status != 200 {
		t.Fatalf("with the password: status %d", resp.Status)
	}
	mustContain(t, ctx, "Email verified", "dora.new@example.com")

	// A second change, cancelled from the notice to the (now) old address.
	login(t, ctx, s, "dora.new@example.com", pw1)
	fill(t, ctx, "email", "mallory@example.com")
	submit(t, ctx, "/account/profile")
	cancel := s.mailTo("dora.new@example.com", "Your email address is being changed")
	open(t, ctx, cancel)
	mustContain(t, ctx, "Cancel the email change")
	screenshot(t, ctx, "email-cancel")
	submit(t, ctx, "/email/cancel")
	mustContain(t, ctx, "Email change cancelled")
	if got, _ := s.accts.User(bg, u.ID); got.PendingEmail != "" || got.Email != "dora.new@example.com" {
		t.Fatalf("after cancel: %+v", got)
	}
}
