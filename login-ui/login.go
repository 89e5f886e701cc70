package loginui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/reqctx"
)

// LoginData is the data of templates/login.html. With ConfirmLogout the page
// asks "Log out?" instead (RP-initiated logout without a usable
// id_token_hint), posting Hidden back to /oauth2/logout.
type LoginData struct {
	Email         string
	ReturnTo      string
	RegisterURL   string
	ForgotURL     string
	ConfirmLogout bool
	Hidden        []Field
	// Upstreams are the "continue with" buttons of the enabled upstream
	// identity providers.
	Upstreams []UpstreamButton
}

// UpstreamButton is an upstream identity provider as a button: its name in
// URLs and forms, and the name people know it by.
type UpstreamButton struct{ Slug, Name string }

// UpstreamLister lists the enabled upstream identity providers.
type UpstreamLister interface {
	LoginButtons(ctx context.Context) ([]UpstreamButton, error)
}

// Field is a hidden form field.
type Field struct{ Name, Value string }

// AuthorizeReturnTo reports whether s is a local authorization-request URL
// (/oauth2/auth?…), the return_to of the OAuth login and consent steps, and
// returns it normalised. Anything else (other hosts, schemes, //host,
// backslashes, other paths) is refused: no open redirect.
func AuthorizeReturnTo(s string) (string, bool) {
	if s == "" || len(s) > 8192 || strings.ContainsAny(s, "\\\r\n\t") || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Path != "/oauth2/auth" {
		return "", false
	}
	return "/oauth2/auth?" + u.RawQuery, true
}

// SafeReturnTo returns s when it is a valid AuthorizeReturnTo, a console
// page (ConsoleReturnTo), the device page or the account page, and
// /account otherwise.
func SafeReturnTo(s string) string {
	if t, ok := AuthorizeReturnTo(s); ok {
		return t
	}
	if t, ok := ConsoleReturnTo(s); ok {
		return t
	}
	if u, err := url.Parse(s); err == nil && strings.HasPrefix(s, "/device") && u.Path == "/device" && u.Host == "" && u.Scheme == "" {
		// The device page, carrying at most the code the user typed.
		if c := u.Query().Get("user_code"); c != "" && len(c) <= 20 {
			return "/device?" + url.Values{"user_code": {c}}.Encode()
		}
		return "/device"
	}
	return "/account"
}

// Login serves GET|POST /login and POST /logout of the hosted pages.
type Login struct {
	UI       *UI
	Accounts *accounts.Service
	// Limit bounds login attempts per client IP; nil does not limit. The
	// per-account backoff inside Accounts.Authenticate works across IPs.
	Limit *ratelimit.Limiter
	// Requirements, when set, says which authorization requests need a
	// second factor (mfa.go); nil: only the role policy decides.
	Requirements LoginRequirements
	// Upstreams, when set, adds a button per enabled upstream provider.
	Upstreams UpstreamLister
}

// Mount registers GET|POST /login and POST /logout on r.
func (l *Login) Mount(r *mux.Router) {
	r.Handle("/login", l).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/login/mfa", l.SecondStep).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/logout", l.Logout).Methods(http.MethodPost)
}

func (l *Login) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if l.Limit != nil {
			if ok, wait := l.Limit.Allow(ratelimit.ClientIP(r)); !ok {
				l.Accounts.Metrics().Login(accounts.LoginRateLimited)
				w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
				l.render(w, r, http.StatusTooManyRequests, SafeReturnTo(r.PostFormValue("return_to")), "", networkLimited(wait))
				return
			}
		}
		l.post(w, r)
		return
	}
	l.render(w, r, http.StatusOK, SafeReturnTo(r.URL.Query().Get("return_to")), "", "")
}

func (l *Login) render(w http.ResponseWriter, r *http.Request, status int, returnTo, email, errMsg string) {
	q := url.Values{"return_to": {returnTo}}.Encode()
	var ups []UpstreamButton
	if l.Upstreams != nil {
		var err error
		if ups, err = l.Upstreams.LoginButtons(r.Context()); err != nil {
			// The password form still works: show it without the buttons.
			reqctx.Logger(r.Context()).Warn("login: list upstream providers", zap.Error(err))
		}
	}
	l.UI.Render(w, r, status, "login", Page{Title: "Log in", Error: errMsg, Data: LoginData{
		Email: email, ReturnTo: returnTo,
		RegisterURL: "/register?" + q, ForgotURL: "/password/forgot", Upstreams: ups,
	}})
}

// post checks the credentials, starts a browser session and continues to
// return_to. Every credential failure gets the same message, so the page
// does not tell which emails exist.
func (l *Login) post(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		l.render(w, r, http.StatusBadRequest, "/account", "", "The form could not be read. Please try again.")
		return
	}
	returnTo := SafeReturnTo(r.PostFormValue("return_to"))
	email := strings.TrimSpace(r.PostFormValue("email"))
	if !l.UI.CheckCSRF(r) {
		l.render(w, r, http.StatusForbidden, returnTo, email, "This form has expired. Please try again.")
		return
	}
	if _, err := accounts.NormalizeEmail(email); err != nil {
		// No account can have it: refused before any database write (a
		// megabyte "email" must not become a backoff row or an audit line).
		l.render(w, r, http.StatusBadRequest, returnTo, "", "Please enter a valid email address.")
		return
	}
	u, err := l.Accounts.Authenticate(ctx, email, r.PostFormValue("password"))
	origin := audit.Event{}.FromRequest(r)
	var throttled *accounts.ThrottledError
	switch {
	case errors.As(err, &throttled):
		l.Accounts.RecordLogin(ctx, origin, nil, err)
		w.Header().Set("Retry-After", ratelimit.RetryAfter(throttled.RetryAfter))
		l.render(w, r, http.StatusTooManyRequests, returnTo, email, failuresLimited(throttled.RetryAfter))
		return
	case errors.Is(err, accounts.ErrInvalidCredentials), errors.Is(err, accounts.ErrUserDisabled), errors.Is(err, accounts.ErrInvalidEmail):
		l.Accounts.RecordLogin(ctx, origin, nil, err)
		l.render(w, r, http.StatusUnauthorized, returnTo, email, "Incorrect email or password.")
		return
	case err != nil:
		reqctx.Logger(ctx).Error("login: authenticate", zap.Error(err))
		status, msg := Failure(w, err)
		l.render(w, r, status, returnTo, email, msg)
		return
	}
	l.afterPassword(w, r, u, returnTo)
}

// Logout is POST /logout: it ends the browser session behind the cookie.
func (l *Login) Logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil || !l.UI.CheckCSRF(r) {
		l.UI.Render(w, r, http.StatusForbidden, "message", Page{Title: "Request expired",
			Error: "This form has expired. Go back and try again."})
		return
	}
	if tok := l.UI.SessionToken(r); tok != "" {
		if err := l.Accounts.RevokeSessionByToken(ctx, tok); err != nil {
			reqctx.Logger(ctx).Error("logout: revoke session", zap.Error(err))
		}
	}
	l.UI.ClearSessionCookie(w)
	l.UI.Render(w, r, http.StatusOK, "message", Page{Title: "Logged out", Notice: "You have been logged out.",
		Data: "You can close this window."})
}

func (l *Login) audit(r *http.Request, e audit.Event) {
	l.Accounts.Audit(r.Context(), e.FromRequest(r))
}
