package loginui_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/authd/authd/accounts"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/fositestore"
)

// oidcSite is the hosted pages plus the OAuth provider, wired as in
// production (the store revokes a user's tokens on password reset), and a
// relying party whose callback lives on the same server.
type oidcSite struct {
	*site
	store  *fositestore.Store
	prov   *oauth.Provider
	rp     oauth2.Config
	tokens chan *oauth2.Token
	verif  string
}

func newOIDCSite(t *testing.T) *oidcSite {
	t.Helper()
	o := &oidcSite{tokens: make(chan *oauth2.Token, 1)}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	o.site = newSite(t, siteOpts{
		revoker: func(pool *pgxpool.Pool) accounts.TokenRevoker {
			o.store = fositestore.New(pool, fositestore.Options{})
			return o.store
		},
		mount: func(r *mux.Router, s *site) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			km, err := keys.NewManager(s.pool, secret, keys.Config{}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if err := km.Start(ctx); err != nil {
				t.Fatal(err)
			}
			o.prov, err = oauth.New(oauth.Config{Issuer: s.url, SecretsKey: secret, RefreshReuseWindow: 10 * time.Second},
				s.pool, o.store, km, s.accts, s.ui, zap.NewNop(), nil)
			if err != nil {
				t.Fatal(err)
			}
			o.prov.Mount(r)
			(&loginui.Login{UI: s.ui, Accounts: s.accts}).Mount(r)
			r.HandleFunc("/cb", o.callback)
		},
	})
	c, sec, err := o.prov.Clients().CreateClient(context.Background(), clients.Spec{Name: "Notes app",
		RedirectURIs: []string{o.url + "/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		Scopes: []string{"openid", "profile", "email", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	o.rp = oauth2.Config{ClientID: c.ID, ClientSecret: sec, RedirectURL: o.url + "/cb",
		Endpoint: oauth2.Endpoint{AuthURL: o.url + "/oauth2/auth", TokenURL: o.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
		Scopes:   []string{"openid", "profile", "email", "offline_access"}}
	return o
}

// callback is the relying party's redirect URI: it exchanges the code.
func (o *oidcSite) callback(w http.ResponseWriter, r *http.Request) {
	tok, err := o.rp.Exchange(r.Context(), r.URL.Query().Get("code"), oauth2.VerifierOption(o.verif))
	if err != nil {
		http.Error(w, "exchange failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	o.tokens <- tok
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("signed in to Notes app"))
}

// authURL starts an authorization request with PKCE.
func (o *oidcSite) authURL() string {
	o.verif = oauth2.GenerateVerifier()
	h := sha256.Sum256([]byte(o.verif))
	return o.rp.AuthCodeURL("state-1234567890", oauth2.SetAuthURLParam("code_challenge", base64.RawURLEncoding.EncodeToString(h[:])),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"), oauth2.SetAuthURLParam("nonce", "nonce-1234567890"))
}

// consentIfAsked clicks Allow when the consent page is shown.
func consentIfAsked(t *testing.T, ctx context.Context, shot string) {
	t.Helper()
	asked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('button[value=allow]') !== null`))
	if err != nil {
		t.Fatal(err)
	}
	if asked {
		screenshot(t, ctx, shot)
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[value=allow]`))); err != nil {
			t.Fatal(err)
		}
	}
}

func (o *oidcSite) token(t *testing.T) *oauth2.Token {
	t.Helper()
	select {
	case tok := <-o.tokens:
		return tok
	case <-time.After(10 * time.Second):
		t.Fatal("the app received no tokens")
		return nil
	}
}

func TestBrowser_RegisterFromAuthorizationRequest(t *testing.T) {
	o := newOIDCSite(t)
	ctx := newBrowser(t)
	bg := context.Background()

	open(t, ctx, o.authURL())
	mustContain(t, ctx, "Log in")
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`a[href^="/register?"]`))); err != nil {
		t.Fatalf("no register link on the login page: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.Contains(loc, "return_to=%2Foauth2%2Fauth") {
		t.Fatalf("register page lost the authorization request: %s", loc)
	}
	mustContain(t, ctx, "Create an account to continue")
	screenshot(t, ctx, "register-from-app")
	fill(t, ctx, "name", "Dee", "email", "dee@example.com", "password", pw1, "confirm_password", pw1)
	submit(t, ctx, "/register")
	consentIfAsked(t, ctx, "consent-after-register")
	mustContain(t, ctx, "signed in to Notes app")
	tok := o.token(t)

	u, err := o.accts.UserByEmail(bg, "dee@example.com")
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(bg, o.url)
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: o.rp.ClientID}).Verify(bg, rawID)
	if err != nil {
		t.Fatalf("id token: %v", err)
	}
	if idt.Subject != u.ID {
		t.Fatalf("id token sub = %s, want the new user %s", idt.Subject, u.ID)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
}

func TestBrowser_ResetKillsRefreshToken(t *testing.T) {
	o := newOIDCSite(t)
	ctx := newBrowser(t)
	bg := context.Background()
	if _, err := o.accts.CreateUser(bg, accounts.NewUser{Email: "eve@example.com", Password: pw1, Verified: true}, nil); err != nil {
		t.Fatal(err)
	}
	open(t, ctx, o.authURL())
	fill(t, ctx, "email", "eve@example.com", "password", pw1)
	submit(t, ctx, "/login")
	consentIfAsked(t, ctx, "consent")
	tok := o.token(t)
	// The refresh token works before the reset.
	fresh, err := o.rp.TokenSource(bg, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh before reset: %v", err)
	}

	open(t, ctx, o.url+"/password/forgot")
	fill(t, ctx, "email", "eve@example.com")
	submit(t, ctx, "/password/forgot")
	open(t, ctx, o.mailTo("eve@example.com", "Reset your password"))
	fill(t, ctx, "password", pw2, "confirm_password", pw2)
	submit(t, ctx, "/password/reset")
	mustContain(t, ctx, "Password changed")

	_, err = o.rp.TokenSource(bg, &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if err == nil || !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after reset: err = %v, want invalid_grant", err)
	}
	if _, err := o.accts.Authenticate(bg, "eve@example.com", pw2); err != nil {
		t.Fatal(err)
	}
}
