package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
)

// A device approval is held to what a code would be: a client that
// requires a second factor is not approved from a password-only session.
// A user who holds a factor logs in again with it; one who holds none is
// told to set one up; the device's tokens carry the approving login's amr.
func TestMFA_DeviceApprovalNeedsTheSecondFactor(t *testing.T) {
	e := newSecEnv(t)
	id, secret := e.mustClient(clients.Spec{Name: "Strict TV", RequireMFA: true,
		GrantTypes: []string{oauth.DeviceGrantType, "refresh_token"},
		Scopes:     []string{"openid", "profile", "offline_access"}})
	start := func() (deviceCode, userCode string) {
		st, _, out := e.postForm("/oauth2/device/auth", id, secret, url.Values{"scope": {"openid profile offline_access"}})
		if st != http.StatusOK {
			t.Fatalf("device authorization: %d %v", st, out)
		}
		return out["device_code"].(string), out["user_code"].(string)
	}
	poll := func(deviceCode string) (int, map[string]any) {
		st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {oauth.DeviceGrantType}, "device_code": {deviceCode}})
		return st, out
	}
	approve := func(c *acctClient, userCode string) (*http.Response, string) {
		_, page := c.do(http.MethodGet, "/device", nil)
		f := secHidden(page)
		f.Set("user_code", userCode)
		f.Set("decision", "allow")
		rec, body := c.do(http.MethodPost, "/device", f)
		return rec.Result(), body
	}

	// No factor at all: refused with the way forward, nothing approved.
	e.mustUser("nofactor@example.com")
	plain := e.acctClient("10.9.3.1")
	if rec := plain.login("nofactor@example.com", secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	dc, uc := start()
	resp, body := approve(plain, uc)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "two-step sign-in") {
		t.Fatalf("a password-only user approved a device for a client requiring MFA: %d\n%s", resp.StatusCode, body)
	}
	if st, out := poll(dc); st != http.StatusBadRequest || out["error"] != "authorization_pending" {
		t.Fatalf("poll after the refused approval: %d %v", st, out)
	}

	// A factor enrolled after the login: the password-only session must
	// log in again, with the code, before the approval counts.
	e.mustUser("enrolled@example.com")
	c := e.acctClient("10.9.3.2")
	if rec := c.login("enrolled@example.com", secUserPass); rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d", rec.Code)
	}
	totpSecret, _, _ := mfaEnrol(t, c)
	dc, uc = start()
	resp, _ = approve(c, uc)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") {
		t.Fatalf("a password-only session approved a device for a client requiring MFA: %d %q", resp.StatusCode, loc)
	}
	// (Not polled here: a second poll within the interval is slow_down.)
	if n := e.count(`SELECT count(*) FROM oauth2_device WHERE status <> 'pending'`); n != 0 {
		t.Fatalf("%d device authorizations decided before the step-up", n)
	}
	back, _ := url.Parse(loc)
	st, next := mfaPassword(c, back.Query().Get("return_to"), "enrolled@example.com")
	if st != http.StatusSeeOther || next != "/login/mfa" {
		t.Fatalf("password step: %d %q", st, next)
	}
	if st, next, body := mfaStep(c, "totp", mfaCode(t, totpSecret, time.Now().Add(30*time.Second))); st != http.StatusSeeOther || !strings.HasPrefix(next, "/device?") {
		t.Fatalf("second step: %d %q\n%s", st, next, body)
	}
	if resp, body := approve(c, uc); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Your device is connected") {
		t.Fatalf("approval after the step-up: %d\n%s", resp.StatusCode, body)
	}
	st, out := poll(dc)
	if st != http.StatusOK {
		t.Fatalf("tokens: %d %v", st, out)
	}
	amr := strList(idClaims(t, out["id_token"].(string))["amr"])
	if !slices.Contains(amr, "otp") || !slices.Contains(amr, "mfa") {
		t.Fatalf("device ID token amr %v, want the approving login's (otp, mfa)", amr)
	}
}
