package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestMFA_Browser walks the second-factor pages in headless Chromium, with
// no JavaScript needed, and screenshots each new page.
func TestMFA_Browser(t *testing.T) {
	e := newSecEnv(t, "AUTHD_MFA_REQUIRED_ROLES=admin")
	e.mustUser("browser@example.com")
	e.mustUser("chief@example.com", "admin")
	b := newConsoleBrowser(t)
	login := func(email string) {
		b.open(e.URL + "/login?return_to=%2Faccount")
		b.fill("email", email, "password", secUserPass)
		b.submit("/login")
	}
	secretOnPage := func() string {
		s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.ID("totp-secret")))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(s)
	}

	login("browser@example.com")
	b.mustSee("Two-step sign-in", "Off: your password alone opens your account.")
	b.open(e.URL + "/account/mfa")
	b.mustSee("Set up an authenticator app")
	b.shot("mfa-account-off")
	b.submit("/account/mfa/totp")
	b.mustSee("Scan this QR code", "Key:")
	if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`document.querySelector('.qr img').naturalWidth > 0`)); err != nil || !ok {
		t.Fatalf("the QR code image did not load (CSP?): %v", err)
	}
	b.shot("mfa-enrol")
	secret := secretOnPage()
	b.fill("code", mfaCode(t, secret, time.Now()))
	b.submit("/account/mfa/totp/confirm")
	b.mustSee("Save your recovery codes", "Your authenticator app is set up")
	b.shot("mfa-recovery-codes")
	b.open(e.URL + "/account/mfa")
	b.mustSee("You have 10 unused recovery codes")
	b.shot("mfa-account-on")

	b.open(e.URL + "/account")
	b.mustSee("On (authenticator app, recovery codes).")
	b.submit("/logout")
	login("browser@example.com")
	if loc := b.location(); !strings.HasSuffix(loc, "/login/mfa") {
		t.Fatalf("after the password: %s", loc)
	}
	b.mustSee("Authenticator app", "Use a recovery code instead")
	b.shot("mfa-login-step")
	b.fill("code", "000000")
	b.submit("/login/mfa", "totp")
	b.mustSee("That code is not valid")
	b.shot("mfa-login-step-error")
	b.fill("code", mfaCode(t, secret, time.Now().Add(30*time.Second)))
	b.submit("/login/mfa", "totp")
	if loc := b.location(); !strings.HasSuffix(loc, "/account") {
		t.Fatalf("after the code: %s", loc)
	}
	b.submit("/logout")

	// An admin without a factor is led to enrolment right after the password.
	login("chief@example.com")
	b.mustSee("Set up an authenticator app", "Scan this QR code")
	b.shot("mfa-login-enrol")
	b.fill("code", mfaCode(t, secretOnPage(), time.Now()))
	b.submit("/login/mfa")
	b.mustSee("Save your recovery codes")
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(`a.button`))); err != nil {
		t.Fatal(err)
	}
	b.mustSee("Signed in as chief@example.com")
}
