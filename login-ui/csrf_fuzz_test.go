package loginui_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"

	loginui "github.com/authd/authd/login-ui"
)

var csrfFieldRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

// FuzzCheckCSRF: CheckCSRF accepts a posted token only when it is the one
// the UI itself renders for that CSRF cookie, whatever the cookie and token
// hold (garbage, huge, invalid UTF-8, another browser's pair).
func FuzzCheckCSRF(f *testing.F) {
	ui, err := loginui.New([]byte("0123456789abcdef0123456789abcdef"), true, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	// issued renders a form page for cookie and returns its token ("" when
	// the UI would replace the cookie instead).
	issued := func(cookie string) string {
		r := httptest.NewRequest(http.MethodGet, "/login", nil)
		r.AddCookie(&http.Cookie{Name: loginui.HostPrefix + "authd_csrf", Value: cookie})
		w := httptest.NewRecorder()
		ui.Render(w, r, http.StatusOK, "login", loginui.Page{Data: loginui.LoginData{}})
		if len(w.Result().Cookies()) > 0 {
			return "" // the cookie was not acceptable; a new one was set
		}
		m := csrfFieldRE.FindStringSubmatch(w.Body.String())
		if m == nil {
			f.Fatalf("no CSRF field rendered")
		}
		return m[1]
	}
	good := strings.Repeat("k", 43)
	f.Add(good, issued(good))
	f.Add(good, "")
	f.Add(good, issued(good)+"x")
	f.Add(strings.Repeat("k", 31), "")
	f.Add("", "")
	f.Add(strings.Repeat("\xff", 40), "x")
	f.Add(strings.Repeat("z", 5000), strings.Repeat("z", 5000))
	f.Fuzz(func(t *testing.T, cookie, token string) {
		if (&http.Cookie{Name: loginui.HostPrefix + "authd_csrf", Value: cookie}).Valid() != nil {
			return
		}
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"csrf_token": {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: loginui.HostPrefix + "authd_csrf", Value: cookie})
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		ok := ui.CheckCSRF(r)
		want := issued(cookie)
		if ok != (want != "" && token == want) {
			t.Fatalf("cookie %q token %q: CheckCSRF=%v, issued token %q", cookie, token, ok, want)
		}
	})
}
