package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Identity is what an upstream asserted about the person, once verified.
type Identity struct {
	ProviderID    string
	Subject       string
	Email         string // normalised, "" when the upstream gave none
	EmailVerified bool
	Name          string
	Roles         []string // upstream roles the provider may grant
}

// UpstreamError is an upstream that could not complete the login: down,
// too slow, or answering something that does not verify. Reason is safe to
// log (never a token, code or secret); the person sees a retry page.
type UpstreamError struct {
	Provider string
	Reason   string
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("federation: upstream %s: %s", e.Provider, e.Reason)
}

func upstreamErr(p *Provider, format string, args ...any) error {
	return &UpstreamError{Provider: p.Slug, Reason: fmt.Sprintf(format, args...)}
}

// client talks to upstreams with a bounded wait. One per Service.
type client struct {
	http *http.Client
	mu   sync.Mutex
	// discovered caches each OIDC provider's discovery (and with it
	// go-oidc's key set, which refetches the JWKS on an unknown kid), keyed
	// by the provider's row version so an admin's change takes effect.
	discovered map[string]*discovery
}

type discovery struct {
	issuer  string
	updated time.Time
	oidc    *oidc.Provider
}

func newClient(timeout time.Duration) *client {
	return &client{http: &http.Client{Timeout: timeout}, discovered: map[string]*discovery{}}
}

// ctx gives go-oidc and x/oauth2 the bounded HTTP client.
func (c *client) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, c.http), c.http)
}

func (c *client) discover(ctx context.Context, p *Provider) (*oidc.Provider, error) {
	c.mu.Lock()
	d := c.discovered[p.ID]
	c.mu.Unlock()
	if d != nil && d.issuer == p.Issuer && d.updated.Equal(p.UpdatedAt) {
		return d.oidc, nil
	}
	op, err := oidc.NewProvider(c.ctx(ctx), p.Issuer)
	if err != nil {
		return nil, upstreamErr(p, "discovery: %s", safeErr(err))
	}
	c.mu.Lock()
	c.discovered[p.ID] = &discovery{issuer: p.Issuer, updated: p.UpdatedAt, oidc: op}
	c.mu.Unlock()
	return op, nil
}

// config is the OAuth 2.0 client of p with redirect to callback.
func (c *client) config(ctx context.Context, p *Provider, callback string) (*oauth2.Config, *oidc.Provider, error) {
	cfg := &oauth2.Config{ClientID: p.ClientID, ClientSecret: p.clientSecret, RedirectURL: callback, Scopes: p.Scopes}
	if p.Kind == KindGitHub {
		cfg.Endpoint = oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: oauth2.AuthStyleInParams}
		return cfg, nil, nil
	}
	op, err := c.discover(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	cfg.Endpoint = op.Endpoint()
	return cfg, op, nil
}

// authCodeURL is where the browser goes to log in upstream.
func (c *client) authCodeURL(ctx context.Context, p *Provider, callback string, st *flowState) (string, error) {
	cfg, _, err := c.config(ctx, p, callback)
	if err != nil {
		return "", err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(st.Verifier)}
	if p.Kind == KindOIDC {
		opts = append(opts, oidc.Nonce(st.Nonce))
	}
	return cfg.AuthCodeURL(st.State, opts...), nil
}

// exchange redeems code and returns the verified identity.
func (c *client) exchange(ctx context.Context, p *Provider, callback, code string, st *flowState) (*Identity, error) {
	cfg, op, err := c.config(ctx, p, callback)
	if err != nil {
		return nil, err
	}
	tok, err := cfg.Exchange(c.ctx(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return nil, upstreamErr(p, "token exchange: %s", safeErr(err))
	}
	if p.Kind == KindGitHub {
		return c.github(ctx, p, tok)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, upstreamErr(p, "token response has no id_token")
	}
	// go-oidc checks the signature (fetching rotated keys), issuer,
	// audience (our client id) and expiry; the nonce is ours to compare.
	idt, err := op.Verifier(&oidc.Config{ClientID: p.ClientID}).Verify(c.ctx(ctx), raw)
	if err != nil {
		return nil, upstreamErr(p, "id_token: %s", safeErr(err))
	}
	if idt.Nonce == "" || idt.Nonce != st.Nonce {
		return nil, upstreamErr(p, "id_token nonce does not match this login")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, upstreamErr(p, "id_token claims: %s", safeErr(err))
	}
	// Some providers put the email only in userinfo; its sub must be the
	// ID token's (OIDC Core §5.3.2).
	if _, ok := claims[p.EmailClaim]; !ok && op.UserInfoEndpoint() != "" {
		ui, err := op.UserInfo(c.ctx(ctx), oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, upstreamErr(p, "userinfo: %s", safeErr(err))
		}
		if ui.Subject != idt.Subject {
			return nil, upstreamErr(p, "userinfo sub differs from the id_token's")
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err == nil {
			for k, v := range extra {
				if _, ok := claims[k]; !ok {
					claims[k] = v
				}
			}
		}
	}
	id := &Identity{ProviderID: p.ID, Subject: idt.Subject}
	id.Email, _ = claims[p.EmailClaim].(string)
	id.EmailVerified = truthy(claims["email_verified"])
	id.Name, _ = claims[p.NameClaim].(string)
	if p.RolesClaim != "" {
		id.Roles = allowedRoles(claims[p.RolesClaim], p.AllowedRoles)
	}
	return id, nil
}

// truthy reads email_verified, which some providers send as a string.
func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}

// allowedRoles keeps the upstream roles the provider may grant.
func allowedRoles(v any, allowed []string) []string {
	var got []string
	switch x := v.(type) {
	case string:
		got = strings.Fields(x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				got = append(got, s)
			}
		}
	}
	var out []string
	for _, r := range got {
		for _, a := range allowed {
			if r == a {
				out = append(out, r)
			}
		}
	}
	return out
}

// github reads the user and their primary email from GitHub's API: GitHub
// issues no ID token, so the API answer over TLS with our access token is
// the assertion.
func (c *client) github(ctx context.Context, p *Provider, tok *oauth2.Token) (*Identity, error) {
	var user struct {
		ID    int64  `json:"id"`
		Login string `json:"login"`
		Name  string `json:"name"`
	}
	if err := c.githubGet(ctx, p, tok, "/user", &user); err != nil {
		return nil, err
	}
	if user.ID <= 0 {
		return nil, upstreamErr(p, "user API answered no id")
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := c.githubGet(ctx, p, tok, "/user/emails", &emails); err != nil {
		return nil, err
	}
	id := &Identity{ProviderID: p.ID, Subject: strconv.FormatInt(user.ID, 10), Name: user.Name}
	if id.Name == "" {
		id.Name = user.Login
	}
	for _, e := range emails {
		if e.Primary {
			id.Email, id.EmailVerified = e.Email, e.Verified
		}
	}
	return id, nil
}

func (c *client) githubGet(ctx context.Context, p *Provider, tok *oauth2.Token, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(p.APIURL, "/")+path, nil)
	if err != nil {
		return upstreamErr(p, "user API request: %s", safeErr(err))
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := c.http.Do(req)
	if err != nil {
		return upstreamErr(p, "user API %s: %s", path, safeErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return upstreamErr(p, "user API %s: status %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return upstreamErr(p, "user API %s: undecodable answer", path)
	}
	return nil
}

// safeErr describes an upstream failure for the log without what it may
// carry: x/oauth2's RetrieveError holds the token endpoint's whole body,
// so only its status and error code are kept.
func safeErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if len(code) > 64 {
			code = code[:64]
		}
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Sprintf("status %d, error %q", status, code)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
