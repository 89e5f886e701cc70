package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/authd/authd/internal/audit"

	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
)

var userCodeRE = regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`)

// deviceClient is a TV app: confidential, registered for the device grant.
func (e *env) deviceClient() (*fositestore.Client, string) {
	return e.mustClient(clients.Spec{Name: "Living-room TV",
		GrantTypes: []string{oauth.DeviceGrantType, "refresh_token"},
		Scopes:     []string{"openid", "profile", "offline_access"}})
}

type deviceStart struct {
	DeviceCode, UserCode, VerificationURI, VerificationURIComplete string
	ExpiresIn, Interval                                            float64
}

func (e *env) startDevice(id, secret, scope string) deviceStart {
	e.t.Helper()
	st, out := e.postJSON("/oauth2/device/auth", id, secret, url.Values{"scope": {scope}})
	if st != http.StatusOK {
		e.t.Fatalf("device authorization: %d %v", st, out)
	}
	s := func(k string) string { v, _ := out[k].(string); return v }
	f := func(k string) float64 { v, _ := out[k].(float64); return v }
	return deviceStart{s("device_code"), s("user_code"), s("verification_uri"), s("verification_uri_complete"), f("expires_in"), f("interval")}
}

func (e *env) pollDevice(id, secret, deviceCode string) (int, map[string]any) {
	e.t.Helper()
	return e.tokenRequest(id, secret, url.Values{"grant_type": {oauth.DeviceGrantType}, "device_code": {deviceCode}})
}

func (e *env) wantPoll(id, secret, deviceCode, wantErr string) {
	e.t.Helper()
	st, out := e.pollDevice(id, secret, deviceCode)
	if out["error"] != wantErr || out["access_token"] != nil {
		e.t.Fatalf("poll: %d %v, want %s", st, out, wantErr)
	}
}

// devicePost posts the /device form found on page with fields.
func (b *browser) devicePost(base, page string, fields url.Values) (*http.Response, string) {
	b.t.Helper()
	f := hidden(page)
	if f.Get("csrf_token") == "" {
		b.t.Fatalf("no form on page:\n%s", page)
	}
	for k, v := range fields {
		f[k] = v
	}
	return b.post(base+"/device", f)
}

// decide logs in through verification_uri_complete, confirms the code and
// posts decision on the consent step.
func (e *env) decide(b *browser, start deviceStart, decision string) string {
	e.t.Helper()
	resp, page := b.get(start.VerificationURIComplete)
	if strings.Contains(page, `action="/login"`) {
		resp, page = b.login(e.issuer, page, userEmail, userPassword)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `value="`+start.UserCode+`"`) {
		e.t.Fatalf("device page after login: %d\n%s", resp.StatusCode, page)
	}
	_, page = b.devicePost(e.issuer, page, url.Values{"user_code": {start.UserCode}}) // the prefilled field
	if !strings.Contains(page, "Living-room TV") || !strings.Contains(page, `value="allow"`) {
		e.t.Fatalf("no consent step:\n%s", page)
	}
	_, page = b.devicePost(e.issuer, page, url.Values{"decision": {decision}})
	return page
}

// A device login end to end: pending, slow_down with a growing interval,
// approval on the page, then twenty racing polls get exactly one token
// response, whose ID token verifies, and the code is spent.
func TestDevice_LoginWithConcurrentPolls(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	client, secret := e.deviceClient()
	start := e.startDevice(client.ID, secret, "openid profile offline_access")
	if !userCodeRE.MatchString(start.UserCode) || start.VerificationURI != e.issuer+"/device" ||
		start.VerificationURIComplete != e.issuer+"/device?user_code="+start.UserCode || start.ExpiresIn != 600 ||
		start.Interval != 5 || len(start.DeviceCode) < 43 {
		t.Fatalf("device authorization response %+v", start)
	}

	e.wantPoll(client.ID, secret, start.DeviceCode, "authorization_pending")
	e.wantPoll(client.ID, secret, start.DeviceCode, "slow_down") // at once: too fast
	e.clock.Advance(6 * time.Second)                             // the old 5s interval
	e.wantPoll(client.ID, secret, start.DeviceCode, "slow_down") // now 10s, then 15s
	e.clock.Advance(16 * time.Second)
	e.wantPoll(client.ID, secret, start.DeviceCode, "authorization_pending")

	if page := e.decide(e.browser(), start, "allow"); !strings.Contains(page, "Your device is connected") {
		t.Fatalf("after allow:\n%s", page)
	}
	e.clock.Advance(16 * time.Second)

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		tokens []map[string]any
		others = map[string]int{}
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, out := e.pollDevice(client.ID, secret, start.DeviceCode)
			mu.Lock()
			defer mu.Unlock()
			if st == http.StatusOK {
				tokens = append(tokens, out)
			} else {
				others[out["error"].(string)]++
			}
		}()
	}
	wg.Wait()
	if len(tokens) != 1 {
		t.Fatalf("%d token responses (others %v), want exactly 1", len(tokens), others)
	}
	tok := tokens[0]
	if others["invalid_grant"]+others["slow_down"] != 19 {
		t.Errorf("other answers %v", others)
	}
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: client.ID}).Verify(ctx, tok["id_token"].(string))
	if err != nil || idt.Subject != e.userID {
		t.Fatalf("ID token: %v %+v", err, idt)
	}
	if tok["refresh_token"] == nil {
		t.Error("no refresh token for offline_access")
	}
	if in := e.introspect(client.ID, secret, tok["access_token"].(string)); in["active"] != true || in["sub"] != e.userID {
		t.Errorf("introspection %v", in)
	}
	e.clock.Advance(time.Minute)
	e.wantPoll(client.ID, secret, start.DeviceCode, "invalid_grant")

	// The refresh token works like one from the code flow.
	st, out := e.tokenRequest(client.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if st != http.StatusOK || out["access_token"] == nil {
		t.Fatalf("refresh: %d %v", st, out)
	}
}

func TestDevice_Denied(t *testing.T) {
	e := newEnv(t)
	client, secret := e.deviceClient()
	start := e.startDevice(client.ID, secret, "openid")
	if page := e.decide(e.browser(), start, "deny"); !strings.Contains(page, "Access denied") {
		t.Fatalf("after deny:\n%s", page)
	}
	e.wantPoll(client.ID, secret, start.DeviceCode, "access_denied")
}

// A user disabled between approving and the device's poll gets the device
// nothing.
func TestDevice_UserDisabledAfterApproval(t *testing.T) {
	e := newEnv(t)
	client, secret := e.deviceClient()
	start := e.startDevice(client.ID, secret, "openid")
	e.decide(e.browser(), start, "allow")
	if _, err := e.accts.SetDisabled(context.Background(), audit.Event{}, e.userID, true, false); err != nil {
		t.Fatal(err)
	}
	e.wantPoll(client.ID, secret, start.DeviceCode, "access_denied")
}

func TestDevice_Expired(t *testing.T) {
	e := newEnv(t)
	client, secret := e.deviceClient()
	start := e.startDevice(client.ID, secret, "openid")
	e.clock.Advance(10*time.Minute + time.Second)
	e.wantPoll(client.ID, secret, start.DeviceCode, "expired_token")
	b := e.browser()
	_, page := b.get(start.VerificationURIComplete)
	_, page = b.login(e.issuer, page, userEmail, userPassword)
	resp, page := b.devicePost(e.issuer, page, url.Values{"user_code": {start.UserCode}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "not valid or has expired") {
		t.Fatalf("expired code on the page: %d\n%s", resp.StatusCode, page)
	}
}

// Every device route called as the wrong client.
func TestDevice_WrongClient(t *testing.T) {
	e := newEnv(t)
	client, secret := e.deviceClient()
	other, otherSecret := e.deviceClient()
	web, webSecret := e.webClient() // not registered for the device grant

	for name, tc := range map[string]struct {
		id, secret string
		status     int
		err        string
	}{
		"NoAuthentication":   {"", "", http.StatusUnauthorized, "invalid_client"},
		"WrongSecret":        {client.ID, otherSecret, http.StatusUnauthorized, "invalid_client"},
		"NotADeviceClient":   {web.ID, webSecret, http.StatusBadRequest, "unauthorized_client"},
		"ScopeNotRegistered": {client.ID, secret, http.StatusBadRequest, "invalid_scope"},
	} {
		t.Run("Authorize"+name, func(t *testing.T) {
			scope := "openid"
			if name == "ScopeNotRegistered" {
				scope = "openid admin"
			}
			st, out := e.postJSON("/oauth2/device/auth", tc.id, tc.secret, url.Values{"scope": {scope}})
			if st != tc.status || out["error"] != tc.err || out["device_code"] != nil {
				t.Fatalf("%d %v", st, out)
			}
		})
	}

	start := e.startDevice(client.ID, secret, "openid")
	e.decide(e.browser(), start, "allow")
	t.Run("PollAsAnotherDeviceClient", func(t *testing.T) {
		e.wantPoll(other.ID, otherSecret, start.DeviceCode, "invalid_grant")
	})
	t.Run("PollWithWrongSecret", func(t *testing.T) {
		if st, out := e.pollDevice(client.ID, otherSecret, start.DeviceCode); st != http.StatusUnauthorized || out["error"] != "invalid_client" {
			t.Fatalf("%d %v", st, out)
		}
	})
	t.Run("PollAsNonDeviceClient", func(t *testing.T) {
		e.wantPoll(web.ID, webSecret, start.DeviceCode, "unauthorized_client")
	})
	// None of that spent the code: its own client gets the tokens.
	if st, out := e.pollDevice(client.ID, secret, start.DeviceCode); st != http.StatusOK || out["access_token"] == nil {
		t.Fatalf("own client after the attempts: %d %v", st, out)
	}
}

// /device changes nothing on GET or without a valid CSRF token, and codes
// are stored hashed.
func TestDevice_PageChangesStateOnlyByCSRFPost(t *testing.T) {
	e := newEnv(t)
	client, secret := e.deviceClient()
	start := e.startDevice(client.ID, secret, "openid")
	b := e.browser()
	_, page := b.get(start.VerificationURIComplete)
	b.login(e.issuer, page, userEmail, userPassword)

	b.get(e.issuer + "/device?" + url.Values{"user_code": {start.UserCode}, "decision": {"allow"}}.Encode())
	resp, _ := b.post(e.issuer+"/device", url.Values{"user_code": {start.UserCode}, "decision": {"allow"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without CSRF: %d", resp.StatusCode)
	}
	resp, _ = b.post(e.issuer+"/device", url.Values{"user_code": {start.UserCode}, "decision": {"allow"}, "csrf_token": {"forged"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with a forged CSRF token: %d", resp.StatusCode)
	}
	e.clock.Advance(6 * time.Second)
	e.wantPoll(client.ID, secret, start.DeviceCode, "authorization_pending")

	var raw int
	code := strings.ReplaceAll(start.UserCode, "-", "")
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM oauth2_device
		WHERE device_code_hash IN ($1, $2) OR user_code_hash IN ($1, $2, $3)`,
		start.DeviceCode, code, start.UserCode).Scan(&raw); err != nil || raw != 0 {
		t.Fatalf("rows keyed by raw codes: %d %v", raw, err)
	}
}

// Guessing user codes is throttled per address: after ten wrong codes even
// the right one is refused for a while.
func TestDevice_UserCodeGuessingThrottled(t *testing.T) {
	e := newEnv(t)
	client, secret := e.deviceClient()
	start := e.startDevice(client.ID, secret, "openid")
	b := e.browser()
	_, page := b.get(e.issuer + "/device")
	_, page = b.login(e.issuer, page, userEmail, userPassword)
	if !strings.Contains(page, `name="user_code"`) {
		t.Fatalf("no code form after login:\n%s", page)
	}
	for i := range 10 {
		guess := "BBBB-BBB" + string("BCDFGHJKLM"[i])
		if resp, _ := b.devicePost(e.issuer, page, url.Values{"user_code": {guess}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := b.devicePost(e.issuer, page, url.Values{"user_code": {start.UserCode}})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || strings.Contains(body, `value="allow"`) {
		t.Fatalf("11th attempt: %d\n%s", resp.StatusCode, body)
	}
}
