package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/federation"
	"github.com/authd/authd/internal/audit"
)

// TestFederation_PagesInTheBrowser drives the upstream login pages in
// headless Chromium (no JavaScript on any of them) and saves screenshots
// under testdata/screenshots.
func TestFederation_PagesInTheBrowser(t *testing.T) {
	f := newFedEnv(t)
	f.up.mustUser("alice@example.com")
	f.up.mustUser("bob@example.com")
	f.down.mustUser("bob@example.com")
	if _, err := f.up.accts.CreateUser(context.Background(), accounts.NewUser{Email: "victim@example.com", Password: secUserPass}, nil); err != nil {
		t.Fatal(err)
	}
	f.down.mustUser("victim@example.com")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := f.down.app.upstreams.Create(context.Background(), audit.Event{}, federation.Spec{Slug: "corp", DisplayName: "Corp SSO",
		Issuer: closed, ClientID: "x", ClientSecret: "y"}); err != nil {
		t.Fatal(err)
	}

	// upstreamLogin clicks the button of slug on down's login page and logs
	// in at up as email.
	upstreamLogin := func(b *consoleBrowser, email, shotName string) {
		t.Helper()
		b.open(f.down.URL + "/login")
		if shotName != "" {
			b.shot(shotName)
		}
		b.submit("/login/federated/start", "upstream")
		if !strings.HasPrefix(b.location(), f.up.URL+"/login") {
			t.Fatalf("not at the upstream's login: %s", b.location())
		}
		b.fill("email", email, "password", secUserPass)
		b.submit("/login")
	}

	t.Run("FirstLoginCreatesTheAccount", func(t *testing.T) {
		b := newConsoleBrowser(t)
		upstreamLogin(b, "alice@example.com", "federation-login")
		if loc := b.location(); loc != f.down.URL+"/account" {
			t.Fatalf("ended at %s", loc)
		}
		b.mustSee("alice@example.com", "Other ways to log in", "Upstream ID", "Unlink")
		b.shot("federation-account")
	})
	t.Run("ExistingAccountAsksForProof", func(t *testing.T) {
		b := newConsoleBrowser(t)
		upstreamLogin(b, "bob@example.com", "")
		b.mustSee("prove that the account is yours", "Password of bob@example.com", "Email me a link")
		b.shot("federation-prove")
		b.submit("/login/federated/link/mail")
		b.mustSee("We sent a link to bob@example.com")
		b.shot("federation-prove-mailed")
		b.open(f.mailedLink(t, "bob@example.com"))
		b.mustSee("Link Upstream ID to the account bob@example.com?")
		b.shot("federation-confirm")
		b.submit("/login/federated/link/confirm")
		if loc := b.location(); loc != f.down.URL+"/account" {
			t.Fatalf("after confirming: %s", loc)
		}
		b.mustSee("bob@example.com", "Upstream ID")
	})
	t.Run("UnverifiedEmailRefused", func(t *testing.T) {
		b := newConsoleBrowser(t)
		upstreamLogin(b, "victim@example.com", "")
		b.mustSee("Cannot log you in", "has not verified that the address is yours", "email_unverified")
		b.shot("federation-refused")
	})
	t.Run("UpstreamDownShowsRetry", func(t *testing.T) {
		b := newConsoleBrowser(t)
		b.open(f.down.URL + "/login")
		if st := b.submit("/login/federated/start", "corp"); st != 502 {
			t.Fatalf("status %d", st)
		}
		b.mustSee("Could not reach Corp SSO", "Try again", "upstream_unavailable")
		b.shot("federation-upstream-down")
	})
}
