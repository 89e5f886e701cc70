// Package loginui serves authd's hosted pages (login, consent, registration,
// email verification, password reset, account): server-rendered html/template
// pages and a small stylesheet, embedded in the binary. They need no
// JavaScript, except the passkey ceremonies (navigator.credentials has no
// form equivalent): the pages offering them load one same-origin script,
// static/webauthn.js, under a CSP that allows only it. This file holds what every page shares: rendering, CSRF tokens,
// cookies and the page security headers.
package loginui

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Cookie names. Outside development they carry the __Host- prefix
// (HostPrefix): the browser then accepts them only with Secure, Path=/ and
// no Domain, so no sibling subdomain can set or overwrite them.
const (
	SessionCookie = "authd_session"
	csrfCookie    = "authd_csrf"
	HostPrefix    = "__Host-"
	// CSRFField is the hidden form field every POST form carries.
	CSRFField = "csrf_token"
)

// UI renders pages and checks CSRF tokens. Create it with New.
type UI struct {
	pages  map[string]*template.Template
	secure bool   // Secure, __Host- cookies (outside dev)
	key    []byte // HMAC key binding CSRF tokens to the CSRF and session cookies
	log    *zap.Logger

	sessionName, csrfName string
	// passkeys: the WebAuthn script and its forms are offered.
	passkeys bool
}

// EnablePasskeys turns on the passkey forms and their script (the pages
// of webauthnPage). Call it once, before serving.
func (ui *UI) EnablePasskeys() { ui.passkeys = true }

// Passkeys reports whether passkeys are enabled.
func (ui *UI) Passkeys() bool { return ui.passkeys }

// webauthnPage reports whether page name carries static/webauthn.js: the
// one list of pages that may run a script.
func webauthnPage(name string) bool {
	switch name {
	case "login", "passkeys", "login_mfa":
		return true
	}
	return false
}

// New parses the embedded templates. secure (outside dev) makes cookies
// Secure with the __Host- prefix; key (≥32 bytes) signs CSRF tokens.
func New(key []byte, secure bool, log *zap.Logger) (*UI, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("loginui: CSRF key must be at least 32 bytes, got %d", len(key))
	}
	ui := &UI{pages: map[string]*template.Template{}, secure: secure, key: key, log: log,
		sessionName: SessionCookie, csrfName: csrfCookie}
	if secure {
		ui.sessionName, ui.csrfName = HostPrefix+SessionCookie, HostPrefix+csrfCookie
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	// Files named _*.html hold pieces shared by several pages (the console
	// navigation, the client form); they are parsed into every page.
	partials, err := fs.Glob(templateFS, "templates/_*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := n[len("templates/") : len(n)-len(".html")]
		if base == "layout" || strings.HasPrefix(base, "_") {
			continue
		}
		files := append([]string{"templates/layout.html", n}, partials...)
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("loginui: parse %s: %w", n, err)
		}
		ui.pages[base] = t
	}
	return ui, nil
}

var funcs = template.FuncMap{
	"fmtTime": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
}

// Page is the data every template receives; Data holds the page's own.
type Page struct {
	Title     string
	CSRF      string
	Error     string
	Notice    string
	LoggedIn  bool
	RequestID string
	// WebAuthn is set by Render on the pages that load the passkey script
	// (webauthnPage, when passkeys are enabled).
	WebAuthn bool
	Data     any
}

// Render writes page name with status. It sets the CSRF cookie when missing
// so the page's forms carry a valid token.
func (ui *UI) Render(w http.ResponseWriter, r *http.Request, status int, name string, p Page) {
	t, ok := ui.pages[name]
	if !ok {
		ui.log.Error("unknown page template", zap.String("page", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	p.CSRF = ui.csrfToken(w, r)
	p.RequestID = reqctx.RequestID(r.Context())
	p.WebAuthn = ui.passkeys && webauthnPage(name)
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		reqctx.Logger(r.Context()).Error("render page", zap.String("page", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	pageHeaders(w, p.WebAuthn)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Failure is the status and message of a page that could not do its work:
// 503 (with Retry-After) while the database is unreachable, which is an
// outage to wait out, and 500 otherwise.
func Failure(w http.ResponseWriter, err error) (int, string) {
	if storage.IsUnavailable(err) {
		w.Header().Set("Retry-After", "5")
		return http.StatusServiceUnavailable, "The service is temporarily unavailable. Please try again in a moment."
	}
	return http.StatusInternalServerError, "Something went wrong on our side. Please try again in a moment."
}

// RenderFailure logs err under what and renders the page of a request that
// could not do its work (Failure: 503 while the database is unreachable,
// else 500); loggedIn keeps the signed-in navigation.
func (ui *UI) RenderFailure(w http.ResponseWriter, r *http.Request, loggedIn bool, what string, err error) {
	reqctx.Logger(r.Context()).Error(what, zap.Error(err))
	status, msg := Failure(w, err)
	ui.Render(w, r, status, "message", Page{Title: "Something went wrong", Error: msg, LoggedIn: loggedIn})
}

// PageHeaders sets the security headers of a hosted page: a strict CSP with no
// scripts at all, no framing (clickjacking), no referrer leaking query
// strings, and no caching of pages that may show personal data.
func PageHeaders(w http.ResponseWriter) { pageHeaders(w, false) }

// Content security policies of the hosted pages: none runs a script but
// the passkey pages, which may load same-origin script files (no inline
// code, no eval) and fetch their ceremony options from authd; Trusted Types
// keep that script away from HTML-parsing DOM sinks.
const (
	cspNoScript = "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
	cspWebAuthn = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'"
)

func pageHeaders(w http.ResponseWriter, webauthn bool) {
	h := w.Header()
	if webauthn {
		h.Set("Content-Security-Policy", cspWebAuthn)
	} else {
		h.Set("Content-Security-Policy", cspNoScript)
	}
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// Static serves the embedded stylesheet and images under /static/.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// csrfToken returns the token for this browser: an HMAC of the random value
// in the CSRF cookie (created when missing) and of the session cookie. A
// cross-site attacker can neither read the cookies nor compute the HMAC; one
// who plants a CSRF cookie of their own (and knows its token) still lacks the
// victim's session cookie, so the token does not fit the victim's session.
func (ui *UI) csrfToken(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(ui.csrfName)
	val := ""
	if err == nil && len(c.Value) >= 32 {
		val = c.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		val = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, ui.cookie(ui.csrfName, val, time.Time{}))
		// Make the new cookie visible to a later csrfToken call in this request.
		r.AddCookie(&http.Cookie{Name: ui.csrfName, Value: val})
	}
	return ui.sign(val, ui.SessionToken(r))
}

func (ui *UI) sign(v, session string) string {
	m := hmac.New(sha256.New, ui.key)
	sh := sha256.Sum256([]byte(session))
	m.Write([]byte("csrf:" + v + ":"))
	m.Write(sh[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether the POSTed form carries the token matching the
// browser's CSRF and session cookies. Call after r.ParseForm.
func (ui *UI) CheckCSRF(r *http.Request) bool {
	c, err := r.Cookie(ui.csrfName)
	if err != nil || len(c.Value) < 32 {
		return false
	}
	got := r.PostFormValue(CSRFField)
	return hmac.Equal([]byte(got), []byte(ui.sign(c.Value, ui.SessionToken(r))))
}

// cookie is every cookie of the pages: HttpOnly, SameSite=Lax, Path=/, no
// Domain, and Secure outside development (which the __Host- names require).
func (ui *UI) cookie(name, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, Secure: ui.secure, SameSite: http.SameSiteLaxMode}
}

// SetSessionCookie stores the browser session token.
func (ui *UI) SetSessionCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, ui.cookie(ui.sessionName, token, expires))
}

// ClearSessionCookie removes the browser session cookie.
func (ui *UI) ClearSessionCookie(w http.ResponseWriter) {
	c := ui.cookie(ui.sessionName, "", time.Time{})
	c.MaxAge = -1
	http.SetCookie(w, c)
}

// SetFlowCookie stores value in a short-lived cookie of a multi-step flow
// (an upstream login in progress), with every rule of the pages' cookies
// and the __Host- prefix outside development.
func (ui *UI) SetFlowCookie(w http.ResponseWriter, name, value string, ttl time.Duration) {
	c := ui.cookie(ui.flowName(name), value, time.Now().Add(ttl))
	c.MaxAge = int(ttl / time.Second)
	http.SetCookie(w, c)
}

// FlowCookie returns the value of a cookie SetFlowCookie stored, or "".
func (ui *UI) FlowCookie(r *http.Request, name string) string {
	if c, err := r.Cookie(ui.flowName(name)); err == nil {
		return c.Value
	}
	return ""
}

// ClearFlowCookie removes a cookie SetFlowCookie stored.
func (ui *UI) ClearFlowCookie(w http.ResponseWriter, name string) {
	c := ui.cookie(ui.flowName(name), "", time.Time{})
	c.MaxAge = -1
	http.SetCookie(w, c)
}

func (ui *UI) flowName(name string) string {
	if ui.secure {
		return HostPrefix + name
	}
	return name
}

// SessionCookieName is the session cookie's name (with the __Host- prefix
// outside development).
func (ui *UI) SessionCookieName() string { return ui.sessionName }

// SessionToken returns the browser session cookie's value, or "". Outside
// development only the __Host- cookie counts.
func (ui *UI) SessionToken(r *http.Request) string {
	if c, err := r.Cookie(ui.sessionName); err == nil {
		return c.Value
	}
	return ""
}

// networkLimited and failuresLimited tell a person refused by a limiter how
// long to wait (the Retry-After header tells programs).
func networkLimited(wait time.Duration) string {
	return "Too many attempts from your network. Please wait " + ratelimit.WaitText(wait) + " and try again."
}

func failuresLimited(wait time.Duration) string {
	return "Too many failed attempts. Please wait " + ratelimit.WaitText(wait) + " and try again."
}
