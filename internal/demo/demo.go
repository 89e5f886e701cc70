// Package demo is the tiny relying party `authd dev` serves at /demo: it
// runs the real authorization-code flow with PKCE against the server
// (x/oauth2 + go-oidc), then shows the decoded ID token, the access token's
// claims and the introspection response. State, nonce and the PKCE verifier
// live in a short-lived HttpOnly cookie; a login then opens a local session
// (in memory, behind its own cookie) that holds the refresh token and the
// ID token's sub and sid. authd ends those sessions through back-channel
// logout: POST /demo/backchannel-logout verifies the logout token with the
// resource kit and ends the local sessions it names.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/authd/authd/resource"
)

const (
	flowCookie    = "authd_demo_flow"
	sessionCookie = "authd_demo_session"
	// maxSessions bounds the in-memory sessions; the oldest go first.
	maxSessions = 1000
)

// Handler serves /demo, /demo/login, /demo/callback, /demo/refresh and
// /demo/backchannel-logout.
type Handler struct {
	issuer, clientID, secret, redirect string
	hc                                 *http.Client
	mu                                 sync.Mutex
	provider                           *oidc.Provider // discovered on first use: the issuer may start after New
	mux                                *http.ServeMux
	logouts                            *resource.LogoutVerifier
	sessions                           map[string]*session // by the session cookie's value
}

// session is the demo's own login, as any app keeps one.
type session struct {
	Subject, SID, RefreshToken string
	Created                    time.Time
	// EndedByIssuer is set by a back-channel logout; the next page view
	// says so and forgets the session.
	EndedByIssuer bool
}

// New returns the demo relying party. redirectURL must be registered for
// clientID and end in /demo/callback; httpClient talks to the issuer (nil:
// http.DefaultClient).
func New(issuerURL, clientID, clientSecret, redirectURL string, httpClient *http.Client) http.Handler {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	h := &Handler{issuer: strings.TrimRight(issuerURL, "/"), clientID: clientID, secret: clientSecret,
		redirect: redirectURL, hc: httpClient, mux: http.NewServeMux(), sessions: map[string]*session{}}
	h.mux.HandleFunc("GET /demo", h.home)
	h.mux.HandleFunc("POST /demo/login", h.login)
	h.mux.HandleFunc("GET /demo/callback", h.callback)
	h.mux.HandleFunc("POST /demo/refresh", h.refresh)
	v, err := resource.NewLogoutVerifier(resource.Config{Issuer: h.issuer, Audience: clientID, HTTPClient: httpClient})
	if err != nil {
		h.mux.HandleFunc("POST /demo/backchannel-logout", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "back-channel logout is not configured: "+err.Error(), http.StatusInternalServerError)
		})
	} else {
		h.logouts = v
		h.mux.Handle("POST /demo/backchannel-logout", v.LogoutHandler(h.endSessions))
	}
	return h
}

// endSessions ends the local sessions a verified logout token names: the
// one with its sid, or with only a sub, every session of that user.
func (h *Handler) endSessions(_ context.Context, c *resource.LogoutClaims) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.sessions {
		if (c.SessionID != "" && s.SID == c.SessionID) || (c.SessionID == "" && s.Subject == c.Subject) {
			s.EndedByIssuer, s.RefreshToken = true, ""
		}
	}
	return nil
}

// current returns the browser's local session, or nil.
func (h *Handler) current(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.Value, h.sessions[c.Value]
}

// startSession opens a local session for a verified login.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, s *session) {
	key := random()
	h.mu.Lock()
	if len(h.sessions) >= maxSessions {
		var oldest string
		for k, v := range h.sessions {
			if oldest == "" || v.Created.Before(h.sessions[oldest].Created) {
				oldest = k
			}
		}
		delete(h.sessions, oldest)
	}
	h.sessions[key] = s
	h.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: key, Path: "/demo",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) ctx(r *http.Request) context.Context {
	return oidc.ClientContext(r.Context(), h.hc)
}

func (h *Handler) config(ctx context.Context) (*oauth2.Config, *oidc.Provider, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider == nil {
		p, err := oidc.NewProvider(ctx, h.issuer)
		if err != nil {
			return nil, nil, err
		}
		h.provider = p
	}
	return &oauth2.Config{ClientID: h.clientID, ClientSecret: h.secret, Endpoint: h.provider.Endpoint(),
		RedirectURL: h.redirect, Scopes: []string{oidc.ScopeOpenID, "profile", "email", "roles", "offline_access", "credits:read"}}, h.provider, nil
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	key, s := h.current(r)
	switch {
	case s == nil:
		render(w, http.StatusOK, view{Title: "authd demo app"})
	case s.EndedByIssuer:
		h.mu.Lock()
		delete(h.sessions, key)
		h.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/demo", MaxAge: -1, HttpOnly: true})
		render(w, http.StatusOK, view{Title: "authd demo app",
			Notice: "authd logged you out of this app (back-channel logout): your session here has ended."})
	default:
		render(w, http.StatusOK, view{Title: "authd demo app", Session: s})
	}
}

type flow struct {
	State, Nonce, Verifier string
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	cfg, _, err := h.config(h.ctx(r))
	if err != nil {
		render(w, http.StatusBadGateway, view{Title: "Demo error", Error: "Discovery failed: " + err.Error()})
		return
	}
	f := flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier()}
	b, _ := json.Marshal(f)
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/demo",
		MaxAge: 600, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	http.Redirect(w, r, cfg.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)), http.StatusSeeOther)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := h.ctx(r)
	var f flow
	c, err := r.Cookie(flowCookie)
	if err == nil {
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			err = json.Unmarshal(b, &f)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Path: "/demo", MaxAge: -1, HttpOnly: true})
	q := r.URL.Query()
	switch {
	case err != nil || f.State == "" || q.Get("state") != f.State:
		render(w, http.StatusBadRequest, view{Title: "Demo error", Error: "State mismatch: start again."})
		return
	case q.Get("error") != "":
		render(w, http.StatusOK, view{Title: "Login not completed", Error: q.Get("error") + ": " + q.Get("error_description")})
		return
	case q.Get("iss") != h.issuer:
		render(w, http.StatusBadRequest, view{Title: "Demo error", Error: "Wrong iss in the authorization response (RFC 9207)."})
		return
	}
	cfg, provider, err := h.config(ctx)
	if err != nil {
		render(w, http.StatusBadGateway, view{Title: "Demo error", Error: err.Error()})
		return
	}
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		render(w, http.StatusBadGateway, view{Title: "Demo error", Error: "Code exchange failed: " + err.Error()})
		return
	}
	h.show(w, r, provider, tok, f.Nonce)
}

func (h *Handler) refresh(w http.ResponseWriter, r *http.Request) {
	ctx := h.ctx(r)
	key, s := h.current(r)
	h.mu.Lock()
	rt := ""
	if s != nil {
		rt = s.RefreshToken
		delete(h.sessions, key) // show opens its successor
	}
	h.mu.Unlock()
	if rt == "" {
		render(w, http.StatusBadRequest, view{Title: "Demo error", Error: "No session with a refresh token: log in first."})
		return
	}
	cfg, provider, err := h.config(ctx)
	if err != nil {
		render(w, http.StatusBadGateway, view{Title: "Demo error", Error: err.Error()})
		return
	}
	tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		render(w, http.StatusBadGateway, view{Title: "Demo error", Error: "Refresh failed: " + err.Error()})
		return
	}
	h.show(w, r, provider, tok, "")
}

// show verifies the ID token, introspects the access token with the demo's
// own credentials and renders everything.
func (h *Handler) show(w http.ResponseWriter, r *http.Request, provider *oidc.Provider, tok *oauth2.Token, nonce string) {
	ctx := h.ctx(r)
	v := view{Title: "You are logged in", LoggedIn: true}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: h.clientID}).Verify(ctx, rawID)
	if err != nil {
		render(w, http.StatusBadGateway, view{Title: "Demo error", Error: "ID token verification failed: " + err.Error()})
		return
	}
	if nonce != "" && idt.Nonce != nonce {
		render(w, http.StatusBadGateway, view{Title: "Demo error", Error: "ID token nonce mismatch."})
		return
	}
	var idClaims map[string]any
	_ = idt.Claims(&idClaims)
	v.IDToken = pretty(idClaims)
	v.AccessToken = pretty(jwtPayload(tok.AccessToken))
	v.Introspection = h.introspect(ctx, tok.AccessToken)
	sid, _ := idClaims["sid"].(string)
	h.startSession(w, r, &session{Subject: idt.Subject, SID: sid, RefreshToken: tok.RefreshToken, Created: time.Now()})
	v.LogoutURL = h.issuer + "/oauth2/logout?" + url.Values{"id_token_hint": {rawID}, "client_id": {h.clientID},
		"post_logout_redirect_uri": {strings.TrimSuffix(h.redirect, "/callback")}, "state": {random()}}.Encode()
	render(w, http.StatusOK, v)
}

func (h *Handler) introspect(ctx context.Context, token string) string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.issuer+"/oauth2/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(h.clientID), url.QueryEscape(h.secret))
	resp, err := h.hc.Do(req)
	if err != nil {
		return "introspection failed: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return string(b)
	}
	return pretty(m)
}

// jwtPayload decodes a JWT's claims for display; the server verified it.
func jwtPayload(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return map[string]any{"opaque": true}
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	m := map[string]any{}
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func pretty(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type view struct {
	Title, Error, Notice                string
	LoggedIn                            bool
	Session                             *session
	IDToken, AccessToken, Introspection string
	LogoutURL                           string
}

var page = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · authd demo</title><link rel="stylesheet" href="/static/style.css"></head>
<body><header class="top"><span class="brand">authd demo app</span></header>
<main class="card wide" id="main"><h1>{{.Title}}</h1>
{{if .Error}}<p class="alert error" role="alert">{{.Error}}</p>{{end}}
{{if .Notice}}<p class="alert" role="status">{{.Notice}}</p>{{end}}
{{if .Session}}
<p>You have a session in this app for <code>{{.Session.Subject}}</code> (authd session <code>{{.Session.SID}}</code>). It ends when you log out of authd anywhere: authd tells this app through back-channel logout.</p>
<form method="post" action="/demo/refresh"><button type="submit" class="secondary">Refresh tokens</button></form>
{{else if .LoggedIn}}
<h2>ID token (verified with go-oidc)</h2><pre>{{.IDToken}}</pre>
<h2>Access token claims</h2><pre>{{.AccessToken}}</pre>
<h2>Introspection response</h2><pre>{{.Introspection}}</pre>
<div class="row">
<form method="post" action="/demo/refresh"><button type="submit" class="secondary">Refresh tokens</button></form>
<a class="button secondary" href="{{.LogoutURL}}">Log out</a>
</div>
{{else}}
<p>This relying party logs you in with authd using the authorization code flow with PKCE, then shows what it received.</p>
<form method="post" action="/demo/login"><button type="submit">Log in</button></form>
{{end}}
</main></body></html>`))

func render(w http.ResponseWriter, status int, v view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = page.Execute(w, v)
}
