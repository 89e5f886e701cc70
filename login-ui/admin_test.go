package loginui_test

import (
	"testing"

	loginui "github.com/authd/authd/login-ui"
)

// The login page returns to a console page after login, and to nothing
// that could leave the site or reach the JSON admin API.
func TestSafeReturnTo_ConsolePages(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"console", "/admin", "/admin"},
		{"console page with query", "/admin/users?q=ann&role=admin", "/admin/users?q=ann&role=admin"},
		{"admin API", "/admin/v1/users", "/account"},
		{"prefix lookalike", "/administrator", "/account"},
		{"protocol-relative", "//evil.example/admin", "/account"},
		{"absolute", "https://evil.example/admin", "/account"},
		{"backslash", "/admin\\..\\evil", "/account"},
		{"dot segments", "/admin/../account/x", "/account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := loginui.SafeReturnTo(tc.in); got != tc.want {
				t.Errorf("SafeReturnTo(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
