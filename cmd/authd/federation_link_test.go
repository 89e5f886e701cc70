package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd/authd/accounts"
)

// mailedLink returns the newest link_identity mail's link to address, read
// from down's outbox (the link is sealed there, as every mailed token).
func (f *fedEnv) mailedLink(t *testing.T, address string) string {
	t.Helper()
	var sealed string
	err := f.down.db.Pool.QueryRow(context.Background(), `SELECT payload->>'sealed_link' FROM outbox
		WHERE kind = 'mail' AND type = 'link_identity' AND payload->>'to' = $1 ORDER BY created_at DESC LIMIT 1`, address).Scan(&sealed)
	if err != nil {
		t.Fatalf("no link mail to %s: %v", address, err)
	}
	root, _ := base64.StdEncoding.DecodeString(secTestKey)
	s, err := accounts.NewLinkSealer(deriveKey(root, "outbox links"))
	if err != nil {
		t.Fatal(err)
	}
	link, err := s.Open(sealed, address)
	if err != nil {
		t.Fatal(err)
	}
	return link
}

func TestFederation_MailedLinkProvesTheAccount(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("carol@example.com")
	carol := f.down.mustUser("carol@example.com")
	b := f.browser()
	_, page := f.login(t, b, "upstream", "carol@example.com")
	resp, page := b.post(f.down.URL+"/login/federated/link/mail", secHidden(page))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "We sent a link") {
		t.Fatalf("mail proof: %d\n%s", resp.StatusCode, page)
	}
	link := f.mailedLink(t, "carol@example.com")

	t.Run("ErrOtherBrowser", func(t *testing.T) {
		// The link alone (say, read by someone else) links nothing: the
		// browser must hold the pending identity too.
		other := f.browser()
		resp, _ := other.get(link)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("GET in another browser: %d", resp.StatusCode)
		}
	})
	t.Run("GETChangesNothing", func(t *testing.T) {
		resp, page := b.get(link)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/login/federated/link/confirm"`) {
			t.Fatalf("GET: %d\n%s", resp.StatusCode, page)
		}
		if n := f.down.count(`SELECT count(*) FROM user_identities`); n != 0 {
			t.Fatal("a GET linked the identity")
		}
	})
	t.Run("OK", func(t *testing.T) {
		_, page := b.get(link)
		resp, page := b.post(f.down.URL+"/login/federated/link/confirm", secHidden(page))
		if resp.Request.URL.String() != f.down.URL+"/account" {
			t.Fatalf("confirm ended at %s:\n%s", resp.Request.URL, page)
		}
		if n := f.down.count(`SELECT count(*) FROM user_identities WHERE user_id = $1`, carol.ID); n != 1 {
			t.Fatalf("%d identities", n)
		}
		if n := f.down.count(`SELECT count(*) FROM audit_events WHERE type = 'user.identity_linked' AND details->>'proof' = 'email'`); n != 1 {
			t.Fatalf("%d audit events", n)
		}
	})
	t.Run("ErrReplayed", func(t *testing.T) {
		resp, _ := b.get(link)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replayed link: %d", resp.StatusCode)
		}
	})
}

func TestFederation_LinkFromAccountAndUnlink(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("dave@example.com")
	dave := f.down.mustUser("dave@example.com")
	b := f.browser()
	resp, page := b.get(f.down.URL + "/login")
	b.login(f.down.URL, page, "dave@example.com")
	_, page = b.get(f.down.URL + "/account")
	if !strings.Contains(page, "Link Upstream ID") {
		t.Fatalf("account page offers no link:\n%s", page)
	}
	form := buttonFormIntent(t, page, "upstream")
	resp, page = b.post(f.down.URL+"/login/federated/start", form)
	if strings.Contains(page, `action="/login"`) {
		resp, page = b.login(f.up.URL, page, "dave@example.com")
	}
	// Logged in already, still asked to prove the account.
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/login/federated/link"`) {
		t.Fatalf("expected the proof page: %d\n%s", resp.StatusCode, page)
	}
	pf := secHidden(page)
	pf.Set("password", secUserPass)
	resp, page = b.post(f.down.URL+"/login/federated/link", pf)
	if resp.Request.URL.String() != f.down.URL+"/account?done=linked" || !strings.Contains(page, "/account/identities/unlink") {
		t.Fatalf("after linking: %s\n%s", resp.Request.URL, page)
	}

	t.Run("ErrCSRFMissing", func(t *testing.T) {
		f2 := secHidden(unlinkForm(t, page))
		f2.Del("csrf_token")
		resp, _ := b.post(f.down.URL+"/account/identities/unlink", f2)
		if resp.StatusCode != http.StatusForbidden || f.down.count(`SELECT count(*) FROM user_identities`) != 1 {
			t.Fatalf("unlink without CSRF: %d", resp.StatusCode)
		}
	})
	t.Run("ErrAnotherUsersIdentity", func(t *testing.T) {
		// Eve, logged in, posts dave's identity: nothing of dave's changes.
		f.down.mustUser("eve@example.com")
		eve := f.browser()
		_, p := eve.get(f.down.URL + "/login")
		eve.login(f.down.URL, p, "eve@example.com")
		_, p = eve.get(f.down.URL + "/account")
		ef := secHidden(unlinkForm(t, page))
		ef.Set("csrf_token", secHidden(p).Get("csrf_token"))
		resp, _ := eve.post(f.down.URL+"/account/identities/unlink", ef)
		if resp.StatusCode != http.StatusNotFound || f.down.count(`SELECT count(*) FROM user_identities WHERE user_id = $1`, dave.ID) != 1 {
			t.Fatalf("eve unlinking dave's identity: %d", resp.StatusCode)
		}
	})
	t.Run("OK", func(t *testing.T) {
		resp, _ := b.post(f.down.URL+"/account/identities/unlink", secHidden(unlinkForm(t, page)))
		if resp.Request.URL.String() != f.down.URL+"/account?done=unlinked" || f.down.count(`SELECT count(*) FROM user_identities`) != 0 {
			t.Fatalf("unlink: %s", resp.Request.URL)
		}
		if n := f.down.count(`SELECT count(*) FROM audit_events WHERE type = 'user.identity_unlinked'`); n != 1 {
			t.Fatalf("%d unlink audit events", n)
		}
	})
}

// TestFederation_LastLoginCannotBeUnlinked: an account created through an
// upstream has no password; its only identity stays.
func TestFederation_LastLoginCannotBeUnlinked(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")
	b := f.browser()
	f.login(t, b, "upstream", "alice@example.com")
	_, page := b.get(f.down.URL + "/account")
	resp, out := b.post(f.down.URL+"/account/identities/unlink", secHidden(unlinkForm(t, page)))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(out, "last_login") || f.down.count(`SELECT count(*) FROM user_identities`) != 1 {
		t.Fatalf("unlinking the last login: %d\n%s", resp.StatusCode, out)
	}
	// No password, the empty one included, opens the password-less account.
	for _, pw := range []string{"", secUserPass} {
		other := f.browser()
		_, p := other.get(f.down.URL + "/login")
		resp, _ := other.post(f.down.URL+"/login", url.Values{"csrf_token": {secHidden(p).Get("csrf_token")},
			"email": {"alice@example.com"}, "password": {pw}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("password %q on a password-less account: %d", pw, resp.StatusCode)
		}
	}
}

// TestFederation_CallbackAttacks: the callback acts only for the browser
// that started the login, once, with its state.
func TestFederation_CallbackAttacks(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")
	// Stop at the redirect back to down, to hold the callback URL.
	b := f.browser()
	b.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.Contains(req.URL.Path, "/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	_, page := b.get(f.down.URL + "/login")
	resp, page := b.post(f.down.URL+"/login/federated/start", buttonForm(t, page, "upstream"))
	resp, _ = b.login(f.up.URL, page, "alice@example.com")
	callback := resp.Header.Get("Location")
	if !strings.Contains(callback, "/login/federated/upstream/callback?") {
		t.Fatalf("no callback redirect: %d %q", resp.StatusCode, callback)
	}
	t.Run("ErrOtherBrowser", func(t *testing.T) {
		// Login CSRF: an attacker's code delivered to a victim's browser.
		resp, _ := f.browser().get(callback)
		if resp.StatusCode != http.StatusBadRequest || f.down.count(`SELECT count(*) FROM users`) != 0 {
			t.Fatalf("callback in another browser: %d", resp.StatusCode)
		}
	})
	t.Run("ErrStateTampered", func(t *testing.T) {
		u, _ := url.Parse(callback)
		q := u.Query()
		q.Set("state", "x"+q.Get("state"))
		u.RawQuery = q.Encode()
		resp, _ := b.get(u.String())
		if resp.StatusCode != http.StatusBadRequest || f.down.count(`SELECT count(*) FROM users`) != 0 {
			t.Fatalf("tampered state: %d", resp.StatusCode)
		}
	})
	t.Run("OKThenReplayRefused", func(t *testing.T) {
		resp, _ := b.get(callback)
		if resp.Request.URL.Path != "/account" || f.down.count(`SELECT count(*) FROM users`) != 1 {
			t.Fatalf("callback: %d", resp.StatusCode)
		}
		resp, _ = b.get(callback)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("replayed callback: %d", resp.StatusCode)
		}
	})
	t.Run("CodeAndStateNotLogged", func(t *testing.T) {
		u, _ := url.Parse(callback)
		for _, v := range []string{u.Query().Get("code"), u.Query().Get("state")} {
			if strings.Contains(f.down.logs.String(), v) {
				t.Errorf("down's log holds %q", v)
			}
		}
	})
	t.Run("ErrStartWithoutCSRF", func(t *testing.T) {
		resp, _ := f.browser().post(f.down.URL+"/login/federated/start", url.Values{"provider": {"upstream"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("start without CSRF: %d", resp.StatusCode)
		}
	})
}

// TestFederation_IdentityOfAnotherAccountNotRelinked: an identity linked to
// one account cannot be linked to a second one from its account page.
func TestFederation_IdentityOfAnotherAccountNotRelinked(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")
	f.login(t, f.browser(), "upstream", "alice@example.com") // alice's account holds the identity
	f.down.mustUser("mallory@example.com")
	b := f.browser()
	_, page := b.get(f.down.URL + "/login")
	b.login(f.down.URL, page, "mallory@example.com")
	_, page = b.get(f.down.URL + "/account")
	resp, page := b.post(f.down.URL+"/login/federated/start", buttonFormIntent(t, page, "upstream"))
	if strings.Contains(page, `action="/login"`) {
		resp, page = b.login(f.up.URL, page, "alice@example.com")
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "identity_taken") {
		t.Fatalf("relink: %d\n%s", resp.StatusCode, page)
	}
	if n := f.down.count(`SELECT count(*) FROM user_identities`); n != 1 {
		t.Fatalf("%d identities", n)
	}
}

func unlinkForm(t *testing.T, page string) string {
	t.Helper()
	for _, chunk := range strings.Split(page, "<form") {
		if strings.Contains(chunk, `action="/account/identities/unlink"`) {
			return chunk
		}
	}
	t.Fatalf("no unlink form:\n%s", page)
	return ""
}

func buttonFormIntent(t *testing.T, page, slug string) url.Values {
	t.Helper()
	for _, chunk := range strings.Split(page, "<form") {
		if strings.Contains(chunk, `value="link"`) && strings.Contains(chunk, `value="`+slug+`"`) {
			return secHidden(chunk)
		}
	}
	t.Fatalf("no link button for %s:\n%s", slug, page)
	return nil
}
