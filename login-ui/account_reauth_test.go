package loginui_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd/authd/accounts"
)

// On /account, changing the password or the email needs the current
// password once the login is more than a few minutes old; the session alone
// (a browser left open, a stolen cookie) is not enough.
func TestAccountPage_ChangesNeedThePasswordAfterAFewMinutes(t *testing.T) {
	var skew atomic.Int64 // how far the service's clock runs ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	s := newSite(t, siteOpts{cfg: accounts.Config{Now: clock}})
	u, err := s.accts.CreateUser(context.Background(), accounts.NewUser{Email: "eve@example.com", Password: pw1, Verified: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := func(path string) string {
		t.Helper()
		resp, err := c.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post := func(path string, f url.Values) (int, string) {
		t.Helper()
		m := csrfFieldRE.FindStringSubmatch(page("/account"))
		if m == nil {
			m = csrfFieldRE.FindStringSubmatch(page("/login"))
		}
		f.Set("csrf_token", m[1])
		resp, err := c.PostForm(s.url+path, f)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := post("/login", url.Values{"email": {u.Email}, "password": {pw1}, "return_to": {"/account"}}); st != http.StatusOK || !strings.Contains(body, "Your account") {
		t.Fatalf("login: %d", st)
	}
	skew.Store(int64(10 * time.Minute))
	if st, body := post("/account/password", url.Values{"new_password": {pw2}, "confirm_password": {pw2}}); st != http.StatusForbidden || !strings.Contains(body, "enter your current password") {
		t.Fatalf("password change with a 10-minute-old login: %d", st)
	}
	if st, _ := post("/account/profile", url.Values{"name": {""}, "email": {"eve.new@example.com"}}); st != http.StatusForbidden {
		t.Fatalf("email change with a 10-minute-old login: %d", st)
	}
	if got, _ := s.accts.User(context.Background(), u.ID); got.PendingEmail != "" {
		t.Fatalf("pending email %q", got.PendingEmail)
	}
	if st, body := post("/account/password", url.Values{"current_password": {pw1}, "new_password": {pw2}, "confirm_password": {pw2}}); st != http.StatusOK || !strings.Contains(body, "Your password was changed") {
		t.Fatalf("with the current password: %d", st)
	}
}
