package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd/authd/internal/demo"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/resource"
)

// Back-channel logout end to end: the real application on loopback HTTP,
// relying parties as HTTP servers on 127.0.0.1 that verify every logout
// token with the resource kit (JWKS signature, typ, iss, aud, events, no
// nonce, single-use jti), as an app would.

// bcRP is a relying party's back-channel logout endpoint.
type bcRP struct {
	t        *testing.T
	clientID string
	secret   string
	addr     string
	verifier *resource.LogoutVerifier

	mu       sync.Mutex
	srv      *http.Server
	received chan bcLogout
	down     bool // answers 503 when set: "the endpoint is down"
	hits     int
}

// bcLogout is one logout token the RP accepted: its verified claims and
// its raw header and payload, for the assertions the kit does not make.
type bcLogout struct {
	claims  *resource.LogoutClaims
	header  map[string]any
	payload map[string]any
}

// newRP starts a relying party on 127.0.0.1 and registers a confidential
// code-flow client for it; sessionRequired sets
// backchannel_logout_session_required.
func (e *secEnv) newRP(t *testing.T, sessionRequired bool) *bcRP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rp := &bcRP{t: t, addr: ln.Addr().String(), received: make(chan bcLogout, 16)}
	rp.clientID, rp.secret = e.mustClient(clients.Spec{Name: "RP " + rp.addr, RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"},
		BackchannelLogoutURI: "http://" + rp.addr + "/backchannel-logout", BackchannelLogoutSessionRequired: sessionRequired})
	rp.verifier, err = resource.NewLogoutVerifier(resource.Config{Issuer: e.URL, Audience: rp.clientID})
	if err != nil {
		t.Fatal(err)
	}
	rp.serve(ln)
	t.Cleanup(rp.stop)
	return rp
}

func (rp *bcRP) serve(ln net.Listener) {
	var raw bcLogout
	end := func(_ context.Context, c *resource.LogoutClaims) error {
		got := raw
		got.claims = c
		rp.received <- got
		return nil
	}
	h := rp.verifier.LogoutHandler(end)
	mux := http.NewServeMux()
	mux.HandleFunc("/backchannel-logout", func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		rp.hits++
		down := rp.down
		rp.mu.Unlock()
		if down {
			http.Error(w, "down for maintenance: internal-secret-page", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "not a form", http.StatusBadRequest)
			return
		}
		_ = r.ParseForm()
		raw = bcLogout{}
		if parts := strings.Split(r.PostForm.Get("logout_token"), "."); len(parts) == 3 {
			raw.header, raw.payload = bcSegment(parts[0]), bcSegment(parts[1])
		}
		h.ServeHTTP(w, r) // one request at a time: the worker delivers serially
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	rp.mu.Lock()
	rp.srv = srv
	rp.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (rp *bcRP) stop() {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.srv != nil {
		_ = rp.srv.Close()
		rp.srv = nil
	}
}

func (rp *bcRP) setDown(down bool) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.down = down
}

func bcSegment(s string) map[string]any {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	return m
}

// expect waits for the next verified logout token and checks what the kit
// leaves to the app: the header and the claims' shape.
func (rp *bcRP) expect(sub, sid string) bcLogout {
	rp.t.Helper()
	select {
	case got := <-rp.received:
		c := got.claims
		if c.Subject != sub || c.SessionID != sid {
			rp.t.Fatalf("%s: logout token for sub=%q sid=%q, want sub=%q sid=%q", rp.clientID, c.Subject, c.SessionID, sub, sid)
		}
		if got.header["typ"] != "logout+jwt" || got.header["kid"] == nil {
			rp.t.Errorf("header %v", got.header)
		}
		if _, ok := got.payload["nonce"]; ok {
			rp.t.Errorf("logout token carries a nonce: %v", got.payload)
		}
		if got.payload["aud"] != rp.clientID {
			rp.t.Errorf("aud %v, want %s", got.payload["aud"], rp.clientID)
		}
		if exp, iat := got.payload["exp"].(float64), got.payload["iat"].(float64); exp-iat <= 0 || exp-iat > 300 {
			rp.t.Errorf("lifetime %vs, want short", exp-iat)
		}
		return got
	case <-time.After(30 * time.Second):
		rp.t.Fatalf("%s: no logout token arrived", rp.clientID)
	}
	return bcLogout{}
}

// bcEnv is the application in development mode (http back-channel URIs on
// loopback are allowed there only) with a user.
func newBCEnv(t *testing.T) *secEnv {
	t.Helper()
	return newSecEnv(t, "AUTHD_ENV=development")
}

// bcLogin runs the code flow for rp's client in browser b and returns the
// ID token and its sid.
func (e *secEnv) bcLogin(b *secBrowser, rp *bcRP, email string) (sid, idToken string) {
	e.tb.Helper()
	return e.bcLoginClient(b, rp.clientID, rp.secret, email)
}

func (e *secEnv) bcLoginClient(b *secBrowser, clientID, secret, email string) (sid, idToken string) {
	e.tb.Helper()
	code, verifier := e.codeFor(b, clientID, email, nil)
	st, out := e.exchange(clientID, secret, code, verifier)
	if st != http.StatusOK {
		e.tb.Fatalf("exchange: %d %v", st, out)
	}
	idToken, _ = out["id_token"].(string)
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		e.tb.Fatalf("no ID token: %v", out)
	}
	sid, _ = bcSegment(parts[1])["sid"].(string)
	if sid == "" {
		e.tb.Fatalf("ID token without sid: %v", bcSegment(parts[1]))
	}
	return sid, idToken
}

// waitFor polls the database (bounded) until query returns true: the
// worker runs in the background, and its database writes are what it does.
func (e *secEnv) waitFor(what, query string, args ...any) {
	e.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var ok bool
		if err := e.db.Pool.QueryRow(context.Background(), query, args...).Scan(&ok); err != nil {
			e.tb.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// bcOutbox counts the queued logout notices for clientID.
func (e *secEnv) bcOutbox(clientID string) int {
	return e.count(`SELECT count(*) FROM outbox WHERE kind = 'backchannel_logout' AND payload->>'client_id' = $1`, clientID)
}

func TestBackchannelLogout_RPInitiatedLogout(t *testing.T) {
	e := newBCEnv(t)
	u := e.mustUser("bc-rp@example.com")
	rp := e.newRP(t, false)
	other := e.newRP(t, false) // registered, but never part of this session
	b := e.browser()
	sid, idToken := e.bcLogin(b, rp, u.Email)

	// The ID token's sid is the session's public id: neither the cookie,
	// its hash, nor the id the account pages manage sessions by.
	var id, hash string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT id::text, encode(token_hash, 'hex') FROM browser_sessions WHERE sid = $1`, sid).Scan(&id, &hash); err != nil {
		t.Fatalf("sid names no session: %v", err)
	}
	base, _ := url.Parse(e.URL)
	for _, c := range b.c.Jar.Cookies(base) {
		if strings.Contains(c.Value, sid) || strings.Contains(sid, c.Value) {
			t.Fatalf("sid %q exposes the cookie %s", sid, c.Name)
		}
	}
	if sid == id || strings.Contains(hash, sid) {
		t.Fatalf("sid %q exposes the session id or the cookie's hash", sid)
	}

	resp, _ := b.get(e.URL + "/oauth2/logout?id_token_hint=" + url.QueryEscape(idToken))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	got := rp.expect(u.ID, sid)
	if got.payload["iss"] != e.URL || got.payload["jti"] == "" {
		t.Errorf("claims %v", got.payload)
	}
	if ev, ok := got.payload["events"].(map[string]any)[resource.BackchannelLogoutEvent]; !ok || len(ev.(map[string]any)) != 0 {
		t.Errorf("events %v", got.payload["events"])
	}
	if n := e.bcOutbox(other.clientID); n != 0 {
		t.Errorf("a relying party that was not part of the session got %d notices", n)
	}
	if n := e.bcOutbox(rp.clientID); n != 1 {
		t.Errorf("notices for the relying party = %d, want exactly 1", n)
	}
}

func TestBackchannelLogout_AccountPageEndsSession(t *testing.T) {
	e := newBCEnv(t)
	u := e.mustUser("bc-account@example.com")
	rp := e.newRP(t, false)
	phone := e.browser()
	sid, _ := e.bcLogin(phone, rp, u.Email)
	var phoneSession string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT id::text FROM browser_sessions WHERE sid = $1`, sid).Scan(&phoneSession); err != nil {
		t.Fatal(err)
	}
	// On another computer the user ends the phone's session from /account.
	laptop := e.browser()
	resp, page := laptop.get(e.URL + "/account")
	if resp.StatusCode == http.StatusOK && strings.Contains(page, `action="/login"`) {
		resp, page = laptop.login(e.URL, page, u.Email)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, phoneSession) {
		t.Fatalf("account page: %d", resp.StatusCode)
	}
	f := url.Values{"csrf_token": {secHidden(page).Get("csrf_token")}, "session_id": {phoneSession}}
	if resp, _ := laptop.post(e.URL+"/account/sessions/end", f); resp.StatusCode >= 400 {
		t.Fatalf("end session: %d", resp.StatusCode)
	}
	rp.expect(u.ID, sid)
}

func TestBackchannelLogout_PasswordReset(t *testing.T) {
	e := newBCEnv(t)
	u := e.mustUser("bc-reset@example.com")
	rp := e.newRP(t, false)
	strict := e.newRP(t, true) // requires sid
	b := e.browser()
	e.bcLogin(b, rp, u.Email)
	sid, _ := e.bcLogin(b, strict, u.Email)
	if err := e.accts.ForgotPassword(context.Background(), u.Email); err != nil {
		t.Fatal(err)
	}
	tok := e.outboxToken("password_reset", u.Email)
	if st, out := e.apiCall(http.MethodPost, "/api/v1/password/reset", "", map[string]string{"token": tok, "password": "a brand new password 42"}); st >= 300 {
		t.Fatalf("reset: %d %v", st, out)
	}
	rp.expect(u.ID, "")      // the whole account: sub alone
	strict.expect(u.ID, sid) // a client requiring sid: per session
}

func TestBackchannelLogout_AdminDisableAndDelete(t *testing.T) {
	e := newBCEnv(t)
	e.mustUser("bc-admin@example.com", "admin")
	fp, fps := e.firstParty()
	admin := e.passwordToken(fp, fps, "bc-admin@example.com", "admin")["access_token"].(string)
	rp := e.newRP(t, false)

	t.Run("Disable", func(t *testing.T) {
		u := e.mustUser("bc-disable@example.com")
		e.bcLogin(e.browser(), rp, u.Email)
		if st, out := e.apiCall(http.MethodPost, "/admin/v1/users/"+u.ID+"/disable", admin, nil); st != http.StatusOK {
			t.Fatalf("disable: %d %v", st, out)
		}
		rp.expect(u.ID, "")
	})
	t.Run("Delete", func(t *testing.T) {
		u := e.mustUser("bc-delete@example.com")
		e.bcLogin(e.browser(), rp, u.Email)
		if st, out := e.apiCall(http.MethodDelete, "/admin/v1/users/"+u.ID, admin, nil); st != http.StatusOK {
			t.Fatalf("delete: %d %v", st, out)
		}
		rp.expect(u.ID, "")
	})
}

// A relying party whose endpoint is down gets its token once it is back:
// the failures are retried with backoff, counted in the metrics and listed
// by the admin API meanwhile.
func TestBackchannelLogout_RetriedUntilTheRPIsBack(t *testing.T) {
	e := newBCEnv(t)
	e.mustUser("bc-ops@example.com", "admin")
	fp, fps := e.firstParty()
	admin := e.passwordToken(fp, fps, "bc-ops@example.com", "admin")["access_token"].(string)
	u := e.mustUser("bc-retry@example.com")
	rp := e.newRP(t, false)
	b := e.browser()
	sid, idToken := e.bcLogin(b, rp, u.Email)

	rp.setDown(true)
	b.get(e.URL + "/oauth2/logout?id_token_hint=" + url.QueryEscape(idToken))
	e.waitFor("two failed attempts", `SELECT coalesce(max(attempts), 0) >= 2 FROM outbox
		WHERE kind = 'backchannel_logout' AND last_error <> '' AND delivered_at IS NULL`)
	st, out := e.apiCall(http.MethodGet, "/admin/v1/backchannel-logouts?status=pending&client_id="+url.QueryEscape(rp.clientID), admin, nil)
	items, _ := out["items"].([]any)
	if st != http.StatusOK || len(items) != 1 {
		t.Fatalf("pending deliveries: %d %v", st, out)
	}
	item := items[0].(map[string]any)
	if !strings.Contains(item["last_error"].(string), "503") || item["sid"] != sid || item["status"] != "pending" {
		t.Errorf("pending item %v", item)
	}
	// The answer's body is never kept: an admin could otherwise point a
	// client's URI at an internal server and read its pages back here.
	if strings.Contains(item["last_error"].(string), "internal-secret-page") {
		t.Errorf("the relying party's answer body reached the admin API: %v", item["last_error"])
	}
	if _, leaked := item["logout_token"]; leaked {
		t.Error("the admin API shows a token")
	}
	m := scrape(t, e.URL)
	if n, _ := sum(m, "authd_outbox_delivery_failures_total", `kind="backchannel_logout"`); n < 2 {
		t.Errorf("failed attempts counted: %v, want >= 2", n)
	}
	if n, _ := sum(m, "authd_outbox_pending", `kind="backchannel_logout"`); n != 1 {
		t.Errorf("pending notices: %v, want 1", n)
	}

	rp.setDown(false)
	rp.expect(u.ID, sid)
	e.waitFor("the delivery recorded", `SELECT count(*) = 1 FROM outbox WHERE kind = 'backchannel_logout' AND delivered_at IS NOT NULL`)
	if st, out := e.apiCall(http.MethodGet, "/admin/v1/backchannel-logouts?status=delivered", admin, nil); st != http.StatusOK || len(out["items"].([]any)) != 1 {
		t.Errorf("delivered: %d %v", st, out)
	}
	if st, _ := e.apiCall(http.MethodGet, "/admin/v1/backchannel-logouts?status=bogus", admin, nil); st != http.StatusBadRequest {
		t.Errorf("bad status filter: %d", st)
	}
}

// A client without a back-channel URI is told nothing, and a relying party
// hears only of sessions it took part in, even when the same user logs out
// of another session.
func TestBackchannelLogout_OnlyTheSessionsRelyingParties(t *testing.T) {
	e := newBCEnv(t)
	u := e.mustUser("bc-scope@example.com")
	silent, silentSecret := e.mustClient(clients.Spec{Name: "No back-channel", RedirectURIs: []string{secRedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "profile", "offline_access"}})
	a := e.newRP(t, false)
	c := e.newRP(t, false)

	b1 := e.browser()
	sid1, idToken := e.bcLogin(b1, a, u.Email)
	e.bcLoginClient(b1, silent, silentSecret, u.Email)
	b2 := e.browser()
	e.bcLogin(b2, c, u.Email) // another session of the same user

	b1.get(e.URL + "/oauth2/logout?id_token_hint=" + url.QueryEscape(idToken))
	a.expect(u.ID, sid1)
	if n := e.bcOutbox(silent); n != 0 {
		t.Errorf("a client without backchannel_logout_uri got %d notices", n)
	}
	if n := e.bcOutbox(c.clientID); n != 0 {
		t.Errorf("a relying party of another session got %d notices", n)
	}
	c.mu.Lock()
	hits := c.hits
	c.mu.Unlock()
	if hits != 0 {
		t.Errorf("the other relying party was called %d times", hits)
	}
}

// The notices commit with the change or not at all: a deletion that fails
// after the notices were queued leaves no notice behind.
func TestBackchannelLogout_EnqueuedInTheChangesTransaction(t *testing.T) {
	e := newBCEnv(t)
	e.mustUser("bc-tx-admin@example.com", "admin")
	fp, fps := e.firstParty()
	admin := e.passwordToken(fp, fps, "bc-tx-admin@example.com", "admin")["access_token"].(string)
	u := e.mustUser("bc-tx@example.com")
	rp := e.newRP(t, false)
	e.bcLogin(e.browser(), rp, u.Email)

	// The audit event is the deletion's last write: make it fail.
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `CREATE FUNCTION bc_fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'injected failure'; END $$;
		CREATE TRIGGER bc_fail BEFORE INSERT ON audit_events FOR EACH ROW
		WHEN (NEW.type = 'user.deleted') EXECUTE FUNCTION bc_fail()`); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.apiCall(http.MethodDelete, "/admin/v1/users/"+u.ID, admin, nil); st < 500 {
		t.Fatalf("delete with a failing audit write: %d, want a 5xx", st)
	}
	if n := e.bcOutbox(rp.clientID); n != 0 {
		t.Fatalf("a failed deletion queued %d logout notices", n)
	}
	if n := e.count(`SELECT count(*) FROM users WHERE id = $1`, u.ID); n != 1 {
		t.Fatalf("user rows = %d after the failed deletion", n)
	}
	if _, err := e.db.Pool.Exec(ctx, `DROP TRIGGER bc_fail ON audit_events`); err != nil {
		t.Fatal(err)
	}
	if st, out := e.apiCall(http.MethodDelete, "/admin/v1/users/"+u.ID, admin, nil); st != http.StatusOK {
		t.Fatalf("delete: %d %v", st, out)
	}
	rp.expect(u.ID, "")
}

// A token replayed to the relying party, or one for another client, is
// refused by the kit the demo app and examples use.
func TestBackchannelLogout_TokensBoundToTheirClientAndUsedOnce(t *testing.T) {
	e := newBCEnv(t)
	u := e.mustUser("bc-replay@example.com")
	rp := e.newRP(t, false)
	other := e.newRP(t, false)
	c, err := e.clients.GetClient(context.Background(), rp.clientID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := e.app.provider.LogoutToken(context.Background(), c, u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	post := func(addr string) int {
		resp, err := http.PostForm("http://"+addr+"/backchannel-logout", url.Values{"logout_token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post(other.addr); st != http.StatusBadRequest {
		t.Errorf("another client's token: %d, want 400", st)
	}
	if st := post(rp.addr); st != http.StatusOK {
		t.Fatalf("first delivery: %d", st)
	}
	rp.expect(u.ID, "")
	if st := post(rp.addr); st != http.StatusBadRequest {
		t.Errorf("replayed token: %d, want 400", st)
	}
	if _, err := rp.verifier.Verify(context.Background(), tok); !errors.Is(err, resource.ErrReplayedLogoutToken) {
		t.Errorf("replay: %v", err)
	}
}

// Registration rules of the back-channel URI.
func TestBackchannelLogout_URIValidated(t *testing.T) {
	e := newSecEnv(t, "AUTHD_ENV=production")
	for _, tc := range []struct{ name, uri string }{
		{"HTTPInProduction", "http://127.0.0.1:9/logout"},
		{"HTTPRemote", "http://rp.example/logout"},
		{"Fragment", "https://rp.example/logout#x"},
		{"Relative", "/logout"},
		{"Credentials", "https://user:pw@rp.example/logout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "x", RedirectURIs: []string{secRedirect},
				BackchannelLogoutURI: tc.uri})
			var pe *problem.Error
			if !errors.As(err, &pe) || pe.Field != "backchannel_logout_uri" {
				t.Errorf("%q accepted: %v", tc.uri, err)
			}
		})
	}
	if _, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "x", RedirectURIs: []string{secRedirect},
		BackchannelLogoutSessionRequired: true}); err == nil {
		t.Error("session_required without a URI accepted")
	}
	if _, _, err := e.clients.CreateClient(context.Background(), clients.Spec{Name: "x", RedirectURIs: []string{secRedirect},
		BackchannelLogoutURI: "https://rp.example/logout"}); err != nil {
		t.Errorf("https: %v", err)
	}
}

// The demo app (`authd dev`'s relying party) keeps a local session and ends
// it when authd's logout token arrives.
func TestBackchannelLogout_DemoAppEndsItsSession(t *testing.T) {
	e := newBCEnv(t)
	u := e.mustUser("bc-demo@example.com")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rpURL := "http://" + ln.Addr().String()
	id, secret := e.mustClient(clients.Spec{Name: "demo", RedirectURIs: []string{rpURL + "/demo/callback"},
		PostLogoutRedirectURIs: []string{rpURL + "/demo"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes:               []string{"openid", "profile", "email", "roles", "offline_access", "credits:read"},
		BackchannelLogoutURI: rpURL + "/demo/backchannel-logout"})
	srv := &http.Server{Handler: demo.New(e.URL, id, secret, rpURL+"/demo/callback", nil), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	jar, _ := cookiejar.New(nil)
	b := &secBrowser{tb: t, c: &http.Client{Jar: jar}} // follows every redirect, as a browser
	_, page := b.post(rpURL+"/demo/login", nil)
	_, page = b.login(e.URL, page, u.Email)
	if strings.Contains(page, `action="/consent"`) {
		f := secHidden(page)
		f.Set("decision", "allow")
		_, page = b.post(e.URL+"/consent", f)
	}
	m := regexp.MustCompile(`href="([^"]*/oauth2/logout\?[^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no logout link on the demo page:\n%s", page)
	}
	if _, home := b.get(rpURL + "/demo"); !strings.Contains(home, "You have a session in this app") {
		t.Fatalf("no local session:\n%s", home)
	}
	b.get(html.UnescapeString(m[1])) // RP-initiated logout; back to /demo
	e.waitFor("the demo's logout token delivered", `SELECT count(*) = 1 FROM outbox
		WHERE kind = 'backchannel_logout' AND payload->>'client_id' = $1 AND delivered_at IS NOT NULL`, id)
	if _, home := b.get(rpURL + "/demo"); !strings.Contains(home, "back-channel logout") || strings.Contains(home, "You have a session") {
		t.Fatalf("the demo's session survived the logout:\n%s", home)
	}
}
