package main

// Second attack review (admin console, device grant, PAR, email links,
// client addresses, refresh rotation). Each test here states a hole: it
// fails while the hole is open.

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
)

// TestAttack2_ConsoleSelfLockoutByUppercaseID: the console's self-lockout
// guards compare the {id} path segment with the admin's id as strings, but
// the domain code accepts any-case UUIDs (uuidRE has A-F) and Postgres
// compares them as uuid values. An administrator (or anyone holding their
// session and CSRF token) posts /admin/users/<OWN-ID-UPPERCASED>/roles/remove
// role=admin (or /disable, /delete) and locks themself out, which the
// console promises cannot happen.
func TestAttack2_ConsoleSelfLockoutByUppercaseID(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	ctx := context.Background()
	// One administrator per attempt: each attempt, when it works, locks
	// its administrator out for good.
	for _, action := range []string{"roles/remove", "disable", "delete"} {
		email := strings.ReplaceAll(action, "/", "-") + "@example.com"
		admin := e.mustUser(email, "admin")
		e.mustUser("other-"+email, "admin") // not the last administrator
		b, csrf := e.loggedIn(email)
		upper := strings.ToUpper(admin.ID)
		resp, _ := b.post(e.URL+"/admin/users/"+upper+"/"+action, url.Values{"csrf_token": {csrf}, "role": {"admin"}})
		u, err := e.accts.User(ctx, admin.ID)
		switch {
		case errors.Is(err, accounts.ErrNotFound) || (err == nil && strings.HasPrefix(u.Email, "deleted")):
			t.Errorf("POST /admin/users/%s/%s (%d): the administrator deleted their own account", upper, action, resp.StatusCode)
		case err != nil:
			t.Fatal(err)
		case u.Disabled:
			t.Errorf("POST /admin/users/%s/%s (%d): the administrator disabled their own account", upper, action, resp.StatusCode)
		case !slices.Contains(u.Roles, "admin"):
			t.Errorf("POST /admin/users/%s/%s (%d): the administrator removed their own admin role", upper, action, resp.StatusCode)
		}
	}
}

// deviceApproved starts a device authorization for a TV client and has
// email approve it on /device; it returns the client and the device code.
func (e *secEnv) deviceApproved(email string) (id, secret, deviceCode, sessionID string) {
	e.tb.Helper()
	id, secret = e.mustClient(clients.Spec{Name: "Living-room TV",
		GrantTypes: []string{oauth.DeviceGrantType, "refresh_token"},
		Scopes:     []string{"openid", "profile", "offline_access"}})
	st, _, out := e.postForm("/oauth2/device/auth", id, secret, url.Values{"scope": {"openid profile offline_access"}})
	if st != http.StatusOK {
		e.tb.Fatalf("device authorization: %d %v", st, out)
	}
	deviceCode, _ = out["device_code"].(string)
	userCode, _ := out["user_code"].(string)
	b, csrf := e.loggedIn(email)
	resp, page := b.post(e.URL+"/device", url.Values{"csrf_token": {csrf}, "user_code": {userCode}, "decision": {"allow"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Your device is connected") {
		e.tb.Fatalf("approval: %d\n%s", resp.StatusCode, page)
	}
	sessions, err := e.accts.Sessions(context.Background(), e.userID(email))
	if err != nil || len(sessions) == 0 {
		e.tb.Fatalf("sessions: %v", err)
	}
	return id, secret, deviceCode, sessions[0].ID
}

func (e *secEnv) userID(email string) string {
	e.tb.Helper()
	var id string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT id::text FROM users WHERE email = $1`, email).Scan(&id); err != nil {
		e.tb.Fatal(err)
	}
	return id
}

// TestAttack2_DeviceApprovalSurvivesPasswordChange: a device authorization
// approved but not yet polled is a grant the user's revocations do not
// reach. RevokeSubject deactivates authorization codes but leaves approved
// oauth2_device rows alone, and the poll checks only that the user is not
// disabled. The classic device-code phishing victim who approves the
// attacker's code, notices, and changes their password (which "revokes the
// user's refresh tokens and browser sessions at once") still hands the
// attacker an access and refresh token on the attacker's next poll, issued
// after the revocation, for up to the device code's 10 minutes.
func TestAttack2_DeviceApprovalSurvivesPasswordChange(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	u := e.mustUser("victim@example.com", "user")
	id, secret, deviceCode, _ := e.deviceApproved(u.Email)
	if err := e.accts.ChangePassword(context.Background(), u.ID, accounts.Proof{Password: secUserPass}, "meadow-lantern-77"); err != nil {
		t.Fatal(err)
	}
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {oauth.DeviceGrantType}, "device_code": {deviceCode}})
	if out["access_token"] != nil || out["refresh_token"] != nil {
		t.Errorf("after the password change revoked everything, the approved device still got tokens: %d (refresh token %v)", st, out["refresh_token"] != nil)
	}
}

// TestAttack2_DeviceApprovalSurvivesEndedSession: the same through the
// session that approved it: the user ends that browser session (which
// revokes the tokens issued through it), and the device's next poll mints
// tokens bound to the ended session.
func TestAttack2_DeviceApprovalSurvivesEndedSession(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	u := e.mustUser("victim@example.com", "user")
	id, secret, deviceCode, sess := e.deviceApproved(u.Email)
	if err := e.accts.EndSession(context.Background(), u.ID, sess); err != nil {
		t.Fatal(err)
	}
	st, _, out := e.postForm("/oauth2/token", id, secret, url.Values{"grant_type": {oauth.DeviceGrantType}, "device_code": {deviceCode}})
	if out["access_token"] != nil {
		t.Errorf("the device got tokens through a browser session the user had ended: %d", st)
	}
}

// TestAttack2_ConsoleStaleSessionMintsAdmins: the console asks for the
// password (or a login under 5 minutes) before deleting a user, rotating
// signing keys or granting over 1000 credits, but not before the actions
// that create new administrators: giving another account the admin role,
// or creating a client_credentials client with scope admin (whose secret
// is a permanent admin credential, surviving the admin's logout and
// password change). An administrator's browser left logged in (sessions
// live 14 days) is enough to plant a backdoor admin that outlives them.
func TestAttack2_ConsoleStaleSessionMintsAdmins(t *testing.T) {
	t.Parallel()
	e := newSecEnv(t)
	admin := e.mustUser("admin@example.com", "admin")
	accomplice := e.mustUser("accomplice@example.com", "user")
	b, csrf := e.loggedIn("admin@example.com")
	e.ageLogin(admin.ID, 2*time.Hour)

	b.post(e.URL+"/admin/users/"+accomplice.ID+"/roles/add", url.Values{"csrf_token": {csrf}, "role": {"admin"}})
	if slices.Contains(e.roles(accomplice.ID), "admin") {
		t.Errorf("a 2-hour-old admin session gave another account the admin role without the password")
	}
	before := e.count(`SELECT count(*) FROM oauth2_clients`)
	resp, _ := b.post(e.URL+"/admin/clients", url.Values{"csrf_token": {csrf}, "name": {"backdoor"},
		"grant_types": {"client_credentials"}, "scopes": {"admin"}, "token_endpoint_auth_method": {"client_secret_basic"}})
	if after := e.count(`SELECT count(*) FROM oauth2_clients`); after != before {
		t.Errorf("a 2-hour-old admin session created a client_credentials client with scope admin without the password: %d", resp.StatusCode)
	}
}
