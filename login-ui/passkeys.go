package loginui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/accounts/passkey"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/reqctx"
)

// ceremonyCookie holds the token of the browser's WebAuthn ceremony in
// progress (the challenge itself stays on the server).
const ceremonyCookie = "authd_webauthn"

// PasskeyPages serves the passkey pages: /account/passkeys (list, add,
// rename, delete) and the passwordless login (/login/passkey). Each
// ceremony is two POSTs with the CSRF token: …/options answers JSON for
// navigator.credentials and sets the ceremony cookie, and the form's own
// POST carries the browser's answer and answers with a page or a redirect.
type PasskeyPages struct {
	UI       *UI
	Accounts *accounts.Service
	Passkeys *passkey.Service
	// Limit bounds passwordless login attempts per client IP (shared with
	// the password login); nil does not limit.
	Limit *ratelimit.Limiter
	Log   *zap.Logger
	// Login finishes a passwordless login (Login.FinishFirstFactor: the
	// session, or the second step still owed).
	Login *Login
}

// Mount registers the passkey pages on r.
func (p *PasskeyPages) Mount(r *mux.Router) {
	r.HandleFunc("/account/passkeys", p.list).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/account/passkeys/options", p.registerOptions).Methods(http.MethodPost)
	r.HandleFunc("/account/passkeys/add", p.add).Methods(http.MethodPost)
	r.HandleFunc("/account/passkeys/rename", p.rename).Methods(http.MethodPost)
	r.HandleFunc("/account/passkeys/passwordless", p.passwordless).Methods(http.MethodPost)
	r.HandleFunc("/account/passkeys/delete", p.remove).Methods(http.MethodPost)
	r.HandleFunc("/login/passkey/options", p.loginOptions).Methods(http.MethodPost)
	r.HandleFunc("/login/passkey", p.login).Methods(http.MethodPost)
}

// CountPasskeys counts the user's passkeys (for the account page).
func (p *PasskeyPages) CountPasskeys(ctx context.Context, userID string) (int, error) {
	list, err := p.Accounts.Passkeys(ctx, userID, p.Passkeys.RPID())
	return len(list), err
}

// PasskeysData is the data of templates/passkeys.html.
type PasskeysData struct {
	Passkeys      []accounts.Passkey
	SuggestedName string
}

func passkeyNotice(done string) string {
	switch done {
	case "added":
		return "Your passkey was added. We emailed you about it."
	case "renamed":
		return "The passkey was renamed."
	case "removed":
		return "The passkey was removed. We emailed you about it."
	case "updated":
		return "The passkey was updated."
	}
	return ""
}

// session resolves the browser's session; without one it redirects to the
// login page (back to the passkeys page) and returns false.
func (p *PasskeyPages) session(w http.ResponseWriter, r *http.Request) (*accounts.Session, *accounts.User, bool) {
	sess, u, err := p.Accounts.SessionByToken(r.Context(), p.UI.SessionToken(r))
	if errors.Is(err, accounts.ErrNoSession) {
		http.Redirect(w, r, "/login?"+url.Values{"return_to": {"/account/passkeys"}}.Encode(), http.StatusSeeOther)
		return nil, nil, false
	}
	if err != nil {
		p.fail(w, r, "passkeys: session", err)
		return nil, nil, false
	}
	return sess, u, true
}

func (p *PasskeyPages) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	p.UI.RenderFailure(w, r, false, what, err)
}

func (p *PasskeyPages) list(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.session(w, r)
	if !ok {
		return
	}
	p.render(w, r, http.StatusOK, u, passkeyNotice(r.URL.Query().Get("done")), "")
}

func (p *PasskeyPages) render(w http.ResponseWriter, r *http.Request, status int, u *accounts.User, note, errMsg string) {
	list, err := p.Accounts.Passkeys(r.Context(), u.ID, p.Passkeys.RPID())
	if err != nil {
		p.fail(w, r, "passkeys: list", err)
		return
	}
	p.UI.Render(w, r, status, "passkeys", Page{Title: "Passkeys", Notice: note, Error: errMsg, LoggedIn: true,
		Data: PasskeysData{Passkeys: list, SuggestedName: browserName(r.UserAgent())}})
}

// checkedForm parses the POSTed form and checks its CSRF token; on failure
// it answers 403 and returns false.
// signedInForm reads a passkey page's form (checkedForm) and resolves its
// session (session); it returns false once it has answered.
func (p *PasskeyPages) signedInForm(w http.ResponseWriter, r *http.Request) (*accounts.Session, *accounts.User, bool) {
	if !p.checkedForm(w, r) {
		return nil, nil, false
	}
	return p.session(w, r)
}

func (p *PasskeyPages) checkedForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 128<<10)
	if err := r.ParseForm(); err != nil || !p.UI.CheckCSRF(r) {
		p.UI.Render(w, r, http.StatusForbidden, "message", Page{Title: "Request expired", Error: "This form has expired. Go back, reload the page and try again."})
		return false
	}
	return true
}

// jsonForm reads the form of an options request (a script's POST, bounded
// and CSRF-checked like a page's form); it returns false once it has answered.
func (p *PasskeyPages) jsonForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil || !p.UI.CheckCSRF(r) {
		jsonError(w, http.StatusForbidden, "This form has expired. Reload the page and try again.")
		return false
	}
	return true
}

// jsonFail logs an options request's failure and answers it as Failure
// says (a 503 for an outage, else a 500).
func jsonFail(w http.ResponseWriter, r *http.Request, what string, err error) {
	reqctx.Logger(r.Context()).Error(what, zap.Error(err))
	status, msg := Failure(w, err)
	jsonError(w, status, msg)
}

// jsonError answers an options request that cannot start a ceremony; the
// script shows msg.
func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// options answers a begun ceremony: the browser's options as JSON and the
// ceremony cookie.
func (p *PasskeyPages) options(w http.ResponseWriter, o *passkey.Options) {
	c := p.UI.cookie(p.UI.ceremonyCookieName(), o.Token, o.ExpiresAt)
	c.SameSite = http.SameSiteStrictMode
	http.SetCookie(w, c)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(o.JSON)
}

// ceremonyToken returns the ceremony cookie's value and clears the cookie:
// the ceremony is used up by this request whatever happens.
func (p *PasskeyPages) ceremonyToken(w http.ResponseWriter, r *http.Request) string {
	name := p.UI.ceremonyCookieName()
	c, err := r.Cookie(name)
	gone := p.UI.cookie(name, "", time.Time{})
	gone.MaxAge = -1
	http.SetCookie(w, gone)
	if err != nil {
		return ""
	}
	return c.Value
}

func (ui *UI) ceremonyCookieName() string {
	if ui.secure {
		return HostPrefix + ceremonyCookie
	}
	return ceremonyCookie
}

// registerOptions begins adding a passkey. Adding a way to sign in is a
// sensitive change: like an email change it needs the current password or
// a recent login, checked here before the authenticator is asked.
func (p *PasskeyPages) registerOptions(w http.ResponseWriter, r *http.Request) {
	if !p.jsonForm(w, r) {
		return
	}
	sess, u, err := p.Accounts.SessionByToken(r.Context(), p.UI.SessionToken(r))
	if errors.Is(err, accounts.ErrNoSession) {
		jsonError(w, http.StatusUnauthorized, "Your session has ended. Log in again.")
		return
	} else if err != nil {
		jsonFail(w, r, "passkeys: session", err)
		return
	}
	if _, err := accounts.CheckPasskeyName(r.PostFormValue("name")); err != nil {
		msg, status := formError(err)
		jsonError(w, status, msg)
		return
	}
	if err := p.Accounts.ConfirmPresence(r.Context(), u, sess, r.PostFormValue("current_password")); err != nil {
		if msg, status := formError(err); msg != "" {
			setRetryAfter(w, err)
			jsonError(w, status, msg)
			return
		}
		jsonFail(w, r, "passkeys: confirm presence", err)
		return
	}
	o, err := p.Passkeys.BeginRegistration(r.Context(), u, sess.ID)
	if errors.Is(err, accounts.ErrTooManyPasskeys) {
		jsonError(w, http.StatusConflict, "You have reached the limit of passkeys. Remove one first.")
		return
	} else if err != nil {
		jsonFail(w, r, "passkeys: begin registration", err)
		return
	}
	p.options(w, o)
}

func (p *PasskeyPages) add(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.signedInForm(w, r)
	if !ok {
		return
	}
	token := p.ceremonyToken(w, r)
	cred := r.PostFormValue("credential")
	if cred == "" {
		p.render(w, r, http.StatusBadRequest, u, "", "Adding a passkey needs JavaScript in this browser.")
		return
	}
	_, err := p.Passkeys.FinishRegistration(r.Context(), u, sess.ID, token, []byte(cred), passkey.Registration{
		Name: r.PostFormValue("name"), Passwordless: r.PostFormValue("passwordless") != ""})
	var pe *accounts.PolicyError
	switch {
	case err == nil:
		http.Redirect(w, r, "/account/passkeys?done=added", http.StatusSeeOther)
	case errors.As(err, &pe):
		msg, status := formError(err)
		p.render(w, r, status, u, "", msg)
	case errors.Is(err, accounts.ErrNoCeremony), errors.Is(err, passkey.ErrRejected):
		reqctx.Logger(r.Context()).Info("passkeys: registration refused", zap.Error(err))
		p.render(w, r, http.StatusBadRequest, u, "", "The passkey could not be added. Please try again.")
	case errors.Is(err, accounts.ErrPasskeyExists):
		p.render(w, r, http.StatusConflict, u, "", "This passkey is already registered.")
	case errors.Is(err, accounts.ErrTooManyPasskeys):
		p.render(w, r, http.StatusConflict, u, "", "You have reached the limit of passkeys. Remove one first.")
	default:
		p.fail(w, r, "passkeys: finish registration", err)
	}
}

func (p *PasskeyPages) rename(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.signedInForm(w, r)
	if !ok {
		return
	}
	p.changed(w, r, u, "renamed", p.Accounts.RenamePasskey(r.Context(), u.ID, r.PostFormValue("id"), r.PostFormValue("name")))
}

func (p *PasskeyPages) passwordless(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.signedInForm(w, r)
	if !ok {
		return
	}
	p.changed(w, r, u, "updated", p.Accounts.SetPasskeyPasswordless(r.Context(), u.ID, r.PostFormValue("id"), r.PostFormValue("on") == "1"))
}

func (p *PasskeyPages) remove(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.signedInForm(w, r)
	if !ok {
		return
	}
	p.changed(w, r, u, "removed", p.Accounts.DeletePasskey(r.Context(), u.ID, r.PostFormValue("id")))
}

// changed answers a rename, toggle or removal.
func (p *PasskeyPages) changed(w http.ResponseWriter, r *http.Request, u *accounts.User, done string, err error) {
	var pe *accounts.PolicyError
	switch {
	case err == nil:
		http.Redirect(w, r, "/account/passkeys?done="+done, http.StatusSeeOther)
	case errors.As(err, &pe):
		msg, status := formError(err)
		p.render(w, r, status, u, "", msg)
	case errors.Is(err, accounts.ErrPasskeyNotFound):
		p.render(w, r, http.StatusNotFound, u, "", "That passkey does not exist (any more).")
	default:
		p.fail(w, r, "passkeys: change", err)
	}
}

// allow applies the per-IP login limit.
func (p *PasskeyPages) allow(w http.ResponseWriter, r *http.Request) bool {
	if p.Limit == nil {
		return true
	}
	ok, wait := p.Limit.Allow(ratelimit.ClientIP(r))
	if !ok {
		p.Accounts.Metrics().Login(accounts.LoginRateLimited)
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
	}
	return ok
}

// loginOptions begins a passwordless login.
func (p *PasskeyPages) loginOptions(w http.ResponseWriter, r *http.Request) {
	if !p.jsonForm(w, r) {
		return
	}
	if !p.allow(w, r) {
		jsonError(w, http.StatusTooManyRequests, "Too many attempts from your network. Please wait a moment and try again.")
		return
	}
	o, err := p.Passkeys.BeginLogin(r.Context())
	if err != nil {
		jsonFail(w, r, "passkeys: begin login", err)
		return
	}
	p.options(w, o)
}

// login finishes a passwordless login: the verified passkey starts a
// browser session, as a password would, and continues to return_to.
func (p *PasskeyPages) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 128<<10)
	if err := r.ParseForm(); err != nil {
		p.loginPage(w, r, http.StatusBadRequest, "/account", "The form could not be read. Please try again.")
		return
	}
	returnTo := SafeReturnTo(r.PostFormValue("return_to"))
	if !p.UI.CheckCSRF(r) {
		p.loginPage(w, r, http.StatusForbidden, returnTo, "This form has expired. Please try again.")
		return
	}
	token := p.ceremonyToken(w, r)
	if !p.allow(w, r) {
		p.loginPage(w, r, http.StatusTooManyRequests, returnTo, "Too many attempts from your network. Please wait a moment and try again.")
		return
	}
	cred := r.PostFormValue("credential")
	if cred == "" {
		p.loginPage(w, r, http.StatusBadRequest, returnTo, "Logging in with a passkey needs JavaScript in this browser.")
		return
	}
	res, err := p.Passkeys.FinishLogin(ctx, token, []byte(cred))
	switch {
	case errors.Is(err, accounts.ErrNoCeremony), errors.Is(err, passkey.ErrRejected), errors.Is(err, passkey.ErrCloned):
		reqctx.Logger(ctx).Info("passkeys: login refused", zap.Error(err))
		p.audit(r, audit.Event{Type: "user.login", ActorType: audit.ActorAnonymous, Failed: true, Details: map[string]any{"method": "passkey"}})
		p.Accounts.Metrics().Login(accounts.LoginInvalidCredentials)
		p.loginPage(w, r, http.StatusUnauthorized, returnTo, "That passkey could not log you in.")
		return
	case errors.Is(err, passkey.ErrNotPasswordless):
		p.loginPage(w, r, http.StatusUnauthorized, returnTo, "This passkey is not set up to sign in without a password. Log in with your password.")
		return
	case err != nil:
		reqctx.Logger(ctx).Error("passkeys: finish login", zap.Error(err))
		status, msg := Failure(w, err)
		p.loginPage(w, r, status, returnTo, msg)
		return
	}
	// The passkey is the first factor; the login's one home for what is
	// still owed (Login.FinishFirstFactor) decides the rest. A verified
	// passkey is multi-factor (amr hwk mfa) and meets any requirement; an
	// unverified one (hwk alone) still owes the second factor and its
	// policy, like a password.
	amr := res.AMR(false)
	p.Accounts.Metrics().Login(accounts.LoginSuccess)
	p.audit(r, audit.Event{Type: "user.login_passkey", ActorType: audit.ActorUser, ActorID: res.User.ID, TargetType: "user", TargetID: res.User.ID,
		Details: map[string]any{"method": "passkey", "passkey_id": res.Passkey.ID, "amr": amr}})
	p.Login.FinishFirstFactor(w, r, res.User, amr, returnTo)
}

func (p *PasskeyPages) loginPage(w http.ResponseWriter, r *http.Request, status int, returnTo, msg string) {
	q := url.Values{"return_to": {returnTo}}.Encode()
	p.UI.Render(w, r, status, "login", Page{Title: "Log in", Error: msg, Data: LoginData{
		ReturnTo: returnTo, RegisterURL: "/register?" + q, ForgotURL: "/password/forgot"}})
}

func (p *PasskeyPages) audit(r *http.Request, e audit.Event) {
	p.Accounts.Audit(r.Context(), e.FromRequest(r))
}
