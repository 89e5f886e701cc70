package loginui

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/ledger"
)

// AccountPages serves the self-service pages: /register, /verify-email,
// /password/forgot, /password/reset and /account. Every form posts back with
// a CSRF token and answers with a redirect (POST/redirect/GET) or the same
// page showing what went wrong.
type AccountPages struct {
	UI       *UI
	Accounts *accounts.Service
	// Credits and Apps, when set, add the balance and the allowed apps
	// (with "revoke access") to /account.
	Credits AccountCredits
	Apps    AccountApps
	// Identities, when set, lists the upstream identities linked to the
	// account (with "unlink") and the providers that can be linked.
	Identities AccountIdentities
	// Passkeys, when set, adds the passkey summary and link to /account.
	Passkeys PasskeyCounter
	// Limits are per-IP limits on form submissions; nil fields do not limit.
	Limits accounts.Limits
	Log    *zap.Logger
}

// MountPages registers the self-service pages on r.
func (p *AccountPages) MountPages(r *mux.Router) {
	r.HandleFunc("/register", p.registerForm).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/register", p.register).Methods(http.MethodPost)
	// Mailed links only show a confirmation on GET and HEAD: mail scanners
	// and link previewers fetch them. The POST does the work.
	r.HandleFunc("/verify-email", p.verifyForm).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/verify-email", p.verify).Methods(http.MethodPost)
	r.HandleFunc("/verify-email/resend", p.resend).Methods(http.MethodPost)
	r.HandleFunc("/email/cancel", p.cancelForm).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/email/cancel", p.cancel).Methods(http.MethodPost)
	r.HandleFunc("/password/forgot", p.forgotForm).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/password/forgot", p.forgot).Methods(http.MethodPost)
	r.HandleFunc("/password/reset", p.resetForm).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/password/reset", p.reset).Methods(http.MethodPost)
	r.HandleFunc("/account", p.account).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/account/profile", p.profile).Methods(http.MethodPost)
	r.HandleFunc("/account/password", p.password).Methods(http.MethodPost)
	r.HandleFunc("/account/sessions/end", p.endSession).Methods(http.MethodPost)
	r.HandleFunc("/account/apps/revoke", p.revokeApp).Methods(http.MethodPost)
	p.mountMFA(r)
}

// form parses a POSTed form and checks its CSRF token; on failure it renders
// page with an error and returns false.
func (p *AccountPages) form(w http.ResponseWriter, r *http.Request, page, title string, data any) bool {
	if err := r.ParseForm(); err != nil || !p.UI.CheckCSRF(r) {
		p.UI.Render(w, r, http.StatusForbidden, page, Page{Title: title, Error: "This form has expired. Please try again.", Data: data})
		return false
	}
	return true
}

// allow applies a per-IP limit; when exceeded it renders page with a 429.
func (p *AccountPages) allow(w http.ResponseWriter, r *http.Request, l *ratelimit.Limiter, page, title string, data any) bool {
	if l == nil {
		return true
	}
	ok, wait := l.Allow(ratelimit.ClientIP(r))
	if !ok {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		p.UI.Render(w, r, http.StatusTooManyRequests, page, Page{Title: title, Data: data,
			Error: networkLimited(wait)})
	}
	return ok
}

// internalError renders a generic failure and logs the cause.
func (p *AccountPages) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.UI.RenderFailure(w, r, false, what, err)
}

// startSession logs the user in on this browser (a fresh cookie value, so a
// planted cookie is useless).
func (p *AccountPages) startSession(w http.ResponseWriter, r *http.Request, u *accounts.User) error {
	ip := audit.Event{}.FromRequest(r).IP
	token, sess, err := p.Accounts.CreateSession(r.Context(), u.ID, r.UserAgent(), ip)
	if err != nil {
		return err
	}
	if old := p.UI.SessionToken(r); old != "" {
		_ = p.Accounts.RevokeSessionByToken(r.Context(), old)
	}
	p.UI.SetSessionCookie(w, token, sess.ExpiresAt)
	return nil
}

// current returns the browser's session and user, if logged in.
func (p *AccountPages) current(r *http.Request) (*accounts.Session, *accounts.User, error) {
	sess, u, err := p.Accounts.SessionByToken(r.Context(), p.UI.SessionToken(r))
	if errors.Is(err, accounts.ErrNoSession) {
		return nil, nil, nil
	}
	return sess, u, err
}

// AccountData is the data of templates/account.html.
type AccountData struct {
	User     *accounts.User
	Sessions []SessionView
	// Credits and Apps are shown when the pages were given their sources.
	Credits  *CreditsView
	Apps     []ConsentedApp
	Passkeys *PasskeySummary
	// SecondFactors are the second-factor methods the user holds.
	SecondFactors []string
	// Federation is set when upstream providers exist: Identities are the
	// linked ones, LinkProviders the enabled providers to link.
	Federation    bool
	Identities    []LinkedIdentity
	LinkProviders []UpstreamButton
}

// LinkedIdentity is one upstream identity linked to the account.
type LinkedIdentity struct {
	ProviderID, Slug, Provider, Subject, Email string
	CreatedAt                                  time.Time
}

// AccountIdentities is what the account page reads of the upstream
// identities (*federation.Service).
type AccountIdentities interface {
	LinkedIdentities(ctx context.Context, userID string) ([]LinkedIdentity, error)
	LoginButtons(ctx context.Context) ([]UpstreamButton, error)
}

// PasskeySummary is what /account shows of the passkeys (the rest is on
// /account/passkeys).
type PasskeySummary struct{ Count int }

// PasskeyCounter counts a user's passkeys (*PasskeyPages).
type PasskeyCounter interface {
	CountPasskeys(ctx context.Context, userID string) (int, error)
}

// CreditsView is the balance and the latest transactions.
type CreditsView struct {
	Balance int64
	Recent  []ledger.Transaction
}

// ConsentedApp is a third-party app the user allowed, as the account page
// lists it.
type ConsentedApp struct {
	ClientID, Name    string
	Scopes, Audiences []string
	GrantedAt         time.Time
}

// AccountCredits is what the account page reads of the ledger (*ledger.Ledger).
type AccountCredits interface {
	Balance(ctx context.Context, userID string) (int64, error)
	List(ctx context.Context, userID string, p ledger.Page) (ledger.History, error)
}

// AccountApps lists and revokes the apps a user allowed (*oauth.Provider).
type AccountApps interface {
	ConsentedApps(ctx context.Context, userID string) ([]ConsentedApp, error)
	RevokeApp(ctx context.Context, userID, clientID string) error
}

// recentTransactions is how many the account page shows.
const recentTransactions = 5

// SessionView is one row of the session table.
type SessionView struct {
	accounts.Session
	Current bool
	Browser string
}

// notices are the fixed messages shown after a redirect (?done=…); the query
// only selects one, so nothing from the URL is reflected.
func notice(done string) string {
	switch done {
	case "welcome":
		return "Welcome! We sent you an email to verify your address."
	case "profile":
		return "Your profile was saved."
	case "email":
		return "Check the inbox of your new address: it becomes your login email once you confirm it."
	case "password":
		return "Your password was changed. Your other sessions were signed out."
	case "session":
		return "The session was ended."
	case "resend":
		return "A new verification email is on its way."
	case "app":
		return "The app's access was revoked. It will have to ask you again."
	case "linked":
		return "The login was linked: you can now log in with it."
	case "unlinked":
		return "The login was unlinked from your account."
	}
	return ""
}

func (p *AccountPages) account(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.loggedIn(w, r)
	if !ok {
		return
	}
	p.renderAccount(w, r, http.StatusOK, sess, u, notice(r.URL.Query().Get("done")), "")
}

func (p *AccountPages) renderAccount(w http.ResponseWriter, r *http.Request, status int, sess *accounts.Session, u *accounts.User, note, errMsg string) {
	list, err := p.Accounts.Sessions(r.Context(), u.ID)
	if err != nil {
		p.internalError(w, r, "account: sessions", err)
		return
	}
	views := make([]SessionView, len(list))
	for i, s := range list {
		views[i] = SessionView{Session: s, Current: s.ID == sess.ID, Browser: browserName(s.UserAgent)}
	}
	data := AccountData{User: u, Sessions: views}
	ctx := r.Context()
	if data.SecondFactors, err = p.Accounts.Factors(ctx, u.ID); err != nil {
		p.internalError(w, r, "account: factors", err)
		return
	}
	if p.Credits != nil {
		bal, err := p.Credits.Balance(ctx, u.ID)
		if err != nil {
			p.internalError(w, r, "account: balance", err)
			return
		}
		h, err := p.Credits.List(ctx, u.ID, ledger.Page{Limit: recentTransactions})
		if err != nil {
			p.internalError(w, r, "account: transactions", err)
			return
		}
		data.Credits = &CreditsView{Balance: bal, Recent: h.Items}
	}
	if p.Apps != nil {
		if data.Apps, err = p.Apps.ConsentedApps(ctx, u.ID); err != nil {
			p.internalError(w, r, "account: apps", err)
			return
		}
	}
	if p.Identities != nil {
		if data.Identities, err = p.Identities.LinkedIdentities(ctx, u.ID); err != nil {
			p.internalError(w, r, "account: identities", err)
			return
		}
		buttons, err := p.Identities.LoginButtons(ctx)
		if err != nil {
			p.internalError(w, r, "account: providers", err)
			return
		}
		for _, b := range buttons { // offer only providers not linked yet
			if !slices.ContainsFunc(data.Identities, func(i LinkedIdentity) bool { return i.Slug == b.Slug }) {
				data.LinkProviders = append(data.LinkProviders, b)
			}
		}
		data.Federation = len(data.Identities) > 0 || len(data.LinkProviders) > 0
	}
	if p.Passkeys != nil {
		n, err := p.Passkeys.CountPasskeys(ctx, u.ID)
		if err != nil {
			p.internalError(w, r, "account: passkeys", err)
			return
		}
		data.Passkeys = &PasskeySummary{Count: n}
	}
	p.UI.Render(w, r, status, "account", Page{Title: "Your account", Notice: note, Error: errMsg, LoggedIn: true, Data: data})
}

// browserName shortens a user agent to something a person recognises.
func browserName(ua string) string {
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"HeadlessChrome/", "Headless Chrome"},
		{"Chromium/", "Chromium"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"}, {"curl/", "curl"},
	} {
		if strings.Contains(ua, b.token) {
			os := ""
			switch {
			case strings.Contains(ua, "Windows"):
				os = " on Windows"
			case strings.Contains(ua, "Android"):
				os = " on Android"
			case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"):
				os = " on iOS"
			case strings.Contains(ua, "Mac OS"):
				os = " on macOS"
			case strings.Contains(ua, "Linux"):
				os = " on Linux"
			}
			return b.name + os
		}
	}
	if ua == "" {
		return "Unknown device"
	}
	return ua
}

// accountForm reads the form of a POST to /account/… (p.form: CSRF) and
// resolves its session (loggedIn); it returns false once it has answered.
func (p *AccountPages) accountForm(w http.ResponseWriter, r *http.Request) (*accounts.Session, *accounts.User, bool) {
	if !p.form(w, r, "message", "Request expired", nil) {
		return nil, nil, false
	}
	return p.loggedIn(w, r)
}

// loggedIn resolves the session for a POST to /account/…; it redirects to
// the login page, and back to /account, when there is none.
func (p *AccountPages) loggedIn(w http.ResponseWriter, r *http.Request) (*accounts.Session, *accounts.User, bool) {
	return p.loggedInFor(w, r, "/account")
}

// loggedInFor resolves the session; without one it redirects to the login
// page, which returns to back. It returns false once it has answered.
func (p *AccountPages) loggedInFor(w http.ResponseWriter, r *http.Request, back string) (*accounts.Session, *accounts.User, bool) {
	sess, u, err := p.current(r)
	if err != nil {
		p.internalError(w, r, "account: session", err)
		return nil, nil, false
	}
	if u == nil {
		http.Redirect(w, r, "/login?"+url.Values{"return_to": {back}}.Encode(), http.StatusSeeOther)
		return nil, nil, false
	}
	return sess, u, true
}

func (p *AccountPages) profile(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	name, email := r.PostFormValue("name"), r.PostFormValue("email")
	if norm, err := accounts.NormalizeEmail(email); err == nil && norm != u.Email && norm != u.PendingEmail && p.Limits.EmailChange != nil {
		if ok, wait := p.Limits.EmailChange.Allow(ratelimit.ClientIP(r)); !ok {
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			p.renderAccount(w, r, http.StatusTooManyRequests, sess, u, "", "Too many email changes from your network. Please wait "+ratelimit.WaitText(wait)+" and try again.")
			return
		}
	}
	updated, err := p.Accounts.UpdateProfile(r.Context(), u.ID, accounts.ProfileUpdate{Name: &name, Email: &email,
		Proof: accounts.Proof{Password: r.PostFormValue("current_password"), Session: sess}})
	if msg, status := formError(err); msg != "" {
		setRetryAfter(w, err)
		p.renderAccount(w, r, status, sess, u, "", msg)
		return
	} else if err != nil {
		p.internalError(w, r, "account: update profile", err)
		return
	}
	done := "profile"
	if updated.PendingEmail != "" && updated.PendingEmail != u.PendingEmail {
		done = "email"
	}
	http.Redirect(w, r, "/account?done="+done, http.StatusSeeOther)
}

func (p *AccountPages) password(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	next := r.PostFormValue("new_password")
	if next != r.PostFormValue("confirm_password") {
		p.renderAccount(w, r, http.StatusBadRequest, sess, u, "", "The new passwords do not match.")
		return
	}
	err := p.Accounts.ChangePassword(r.Context(), u.ID, accounts.Proof{Password: r.PostFormValue("current_password"), Session: sess}, next)
	if msg, status := formError(err); msg != "" {
		setRetryAfter(w, err)
		p.renderAccount(w, r, status, sess, u, "", msg)
		return
	} else if err != nil {
		p.internalError(w, r, "account: change password", err)
		return
	}
	http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
}

func (p *AccountPages) endSession(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	id := r.PostFormValue("session_id")
	err := p.Accounts.EndSession(r.Context(), u.ID, id)
	switch {
	case errors.Is(err, accounts.ErrNoSession):
		p.renderAccount(w, r, http.StatusNotFound, sess, u, "", "That session has already ended.")
		return
	case err != nil:
		p.internalError(w, r, "account: end session", err)
		return
	}
	if id == sess.ID {
		p.UI.ClearSessionCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/account?done=session", http.StatusSeeOther)
}

// revokeApp withdraws the consent and every token of one app the user
// allowed; only the logged-in user's own grants are touched.
func (p *AccountPages) revokeApp(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	if p.Apps == nil {
		http.NotFound(w, r)
		return
	}
	if err := p.Apps.RevokeApp(r.Context(), u.ID, r.PostFormValue("client_id")); err != nil {
		p.internalError(w, r, "account: revoke app", err)
		return
	}
	http.Redirect(w, r, "/account?done=app", http.StatusSeeOther)
}

// formError turns the accounts errors a form can cause into a message and
// status; ("", 0) means the error is not the user's (or there is none).
func formError(err error) (string, int) {
	var pe *accounts.PolicyError
	var te *accounts.ThrottledError
	var soon *accounts.TooSoonError
	switch {
	case err == nil:
		return "", 0
	case errors.As(err, &pe):
		return fieldLabel(pe.Field) + " " + pe.Reason + ".", http.StatusBadRequest
	case errors.Is(err, accounts.ErrEmailTaken):
		return "An account with this email address already exists.", http.StatusConflict
	case errors.Is(err, accounts.ErrWrongPassword):
		return "Your current password is not correct.", http.StatusBadRequest
	case errors.Is(err, accounts.ErrReauthRequired):
		return "Please enter your current password to confirm this change.", http.StatusForbidden
	case errors.As(err, &te):
		return "Too many wrong passwords. Please wait " + ratelimit.WaitText(te.RetryAfter) + " and try again.", http.StatusTooManyRequests
	case errors.As(err, &soon):
		return "Too many requests like this one. Please wait " + ratelimit.WaitText(soon.RetryAfter) + " before trying again.", http.StatusTooManyRequests
	case errors.Is(err, accounts.ErrInvalidToken):
		return "This link is invalid, has expired or was already used.", http.StatusBadRequest
	case errors.Is(err, accounts.ErrAlreadyVerified):
		return "Your email address is already verified.", http.StatusConflict
	}
	return "", 0
}

// setRetryAfter adds Retry-After to the answer of a throttled or
// rate-limited form.
func setRetryAfter(w http.ResponseWriter, err error) {
	var te *accounts.ThrottledError
	var soon *accounts.TooSoonError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(te.RetryAfter))
	case errors.As(err, &soon):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(soon.RetryAfter))
	}
}

func fieldLabel(field string) string {
	switch field {
	case "email":
		return "The email address"
	case "name":
		return "The name"
	case "new_password":
		return "The new password"
	}
	return "The password"
}
