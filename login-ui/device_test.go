package loginui_test

import (
	"testing"

	loginui "github.com/authd/authd/login-ui"
)

// After login the browser may go back to the device page with the code it
// carried, and nowhere else that merely starts with /device.
func TestSafeReturnTo_DevicePage(t *testing.T) {
	for in, want := range map[string]string{
		"/device":                           "/device",
		"/device?user_code=BCDF-GHJK":       "/device?user_code=BCDF-GHJK",
		"/device?user_code=B&next=//evil":   "/device?user_code=B",
		"/device/../admin":                  "/account",
		"/devices":                          "/account",
		"//evil.example/device":             "/account",
		"https://evil.example/device":       "/account",
		"/device?user_code=" + long():       "/device",
		"/oauth2/auth?client_id=a&state=s1": "/oauth2/auth?client_id=a&state=s1",
	} {
		if got := loginui.SafeReturnTo(in); got != want {
			t.Errorf("SafeReturnTo(%q) = %q, want %q", in, got, want)
		}
	}
}

func long() string {
	b := make([]byte, 21)
	for i := range b {
		b[i] = 'B'
	}
	return string(b)
}
