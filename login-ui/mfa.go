package loginui

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/ratelimit"
)

// The login's second step, /login/mfa. After the password, Login.post asks
// what the login owes (afterPassword): a user holding a second factor gets
// a pending challenge (accounts.Challenge) and this page instead of a
// session; a user who must have one (role policy, the client's flag or the
// request's acr_values) and has none enrols an authenticator app here
// before any session exists. The challenge lives behind its own cookie and
// is accepted nowhere else. The page shows one form per method the user
// holds (templates/login_mfa.html, a block per accounts.SecondFactor
// Method); every form posts "method" and its answer to /login/mfa.

// challengeCookie names the pending-login cookie (with the __Host- prefix
// outside development).
const challengeCookie = "authd_mfa"

// LoginRequirements tells the login what an authorization request demands
// of it beyond the password (*oauth.Provider).
type LoginRequirements interface {
	// NeedsMFA reports whether the local return_to (an authorization
	// request, or any other page) requires a second factor.
	NeedsMFA(ctx context.Context, returnTo string) (bool, error)
}

// MFAData is the data of templates/login_mfa.html.
type MFAData struct {
	// Methods are the methods the user holds; Prepared what each
	// method's form needs (accounts.SecondFactor.Prepare).
	Methods  []string
	Prepared map[string]any
	// Method is the method whose form is shown first (the one just tried).
	Method string
}

// Has reports whether the user holds method m (for the template).
func (d MFAData) Has(m string) bool {
	for _, x := range d.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// EnrolData is the data of templates/mfa_enrol.html (login and /account).
type EnrolData struct {
	Enrolment *accounts.TOTPEnrolment
	// QR is Enrolment.QR, a data: URI authd built itself (so trusted in
	// an <img src>).
	QR template.URL
	// Action is where the confirmation form posts.
	Action string
}

// RecoveryCodesData is the data of templates/recovery_codes.html.
type RecoveryCodesData struct {
	Codes    []string
	Continue string
}

func (ui *UI) challengeName() string {
	if ui.secure {
		return HostPrefix + challengeCookie
	}
	return challengeCookie
}

// setChallengeCookie binds a pending login to this browser.
func (ui *UI) setChallengeCookie(w http.ResponseWriter, token string, expires time.Time) {
	http.SetCookie(w, ui.cookie(ui.challengeName(), token, expires))
}

func (ui *UI) clearChallengeCookie(w http.ResponseWriter) {
	c := ui.cookie(ui.challengeName(), "", time.Time{})
	c.MaxAge = -1
	http.SetCookie(w, c)
}

func (ui *UI) challengeToken(r *http.Request) string {
	if c, err := r.Cookie(ui.challengeName()); err == nil {
		return c.Value
	}
	return ""
}

// afterPassword ends a login whose password was right.
func (l *Login) afterPassword(w http.ResponseWriter, r *http.Request, u *accounts.User, returnTo string) {
	l.FinishFirstFactor(w, r, u, []string{accounts.AMRPassword}, returnTo)
}

// FinishFirstFactor ends a login whose first factor passed (amr names it:
// a password, "fed" for an upstream provider, or a passwordless passkey's
// "hwk", with "mfa" when it verified the user): a session when nothing
// more is owed, else a pending challenge and the second step. Every way in
// goes through here, so none skips the second factor or its policy.
func (l *Login) FinishFirstFactor(w http.ResponseWriter, r *http.Request, u *accounts.User, amr []string, returnTo string) {
	ctx := r.Context()
	methods, err := l.Accounts.Factors(ctx, u.ID)
	if err != nil {
		l.fail(w, r, "login: factors", err)
		return
	}
	purpose := ""
	switch {
	case slices.Contains(amr, accounts.AMRMulti):
		// The first step was already multi-factor (a passkey that verified
		// its user): it meets every second-factor requirement.
	case accounts.HasSecondFactor(methods):
		purpose = accounts.ChallengeVerify
	case l.Accounts.MFARequired(u, false):
		purpose = accounts.ChallengeEnrol
	case l.Requirements != nil:
		need, err := l.Requirements.NeedsMFA(ctx, returnTo)
		if err != nil {
			l.fail(w, r, "login: requirements", err)
			return
		}
		if need {
			purpose = accounts.ChallengeEnrol
		}
	}
	if purpose == "" {
		l.startSession(w, r, u, amr, returnTo)
		return
	}
	if purpose == accounts.ChallengeEnrol {
		if err := l.Accounts.BeginTOTP(ctx, u); err != nil {
			l.fail(w, r, "login: begin TOTP", err)
			return
		}
	}
	token, ch, err := l.Accounts.StartChallenge(ctx, u.ID, purpose, amr, returnTo)
	if err != nil {
		l.fail(w, r, "login: start challenge", err)
		return
	}
	l.UI.setChallengeCookie(w, token, ch.ExpiresAt)
	l.audit(r, audit.Event{Type: "user.login_first_factor_ok", ActorType: audit.ActorUser, ActorID: u.ID, TargetType: "user", TargetID: u.ID,
		Details: map[string]any{"next": purpose, "amr": amr}})
	http.Redirect(w, r, "/login/mfa", http.StatusSeeOther)
}

// startSession starts the browser session of a finished login (a fresh
// cookie value: a planted cookie is useless) and continues to returnTo.
func (l *Login) startSession(w http.ResponseWriter, r *http.Request, u *accounts.User, amr []string, returnTo string) {
	if !l.createSession(w, r, u, amr) {
		return
	}
	l.audit(r, audit.Event{Type: "user.login", ActorType: audit.ActorUser, ActorID: u.ID, TargetType: "user", TargetID: u.ID,
		Details: map[string]any{"amr": amr}})
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}

func (l *Login) createSession(w http.ResponseWriter, r *http.Request, u *accounts.User, amr []string) bool {
	ctx := r.Context()
	ip := audit.Event{}.FromRequest(r).IP
	token, sess, err := l.Accounts.CreateSessionWith(ctx, u.ID, r.UserAgent(), ip, amr)
	if err != nil {
		l.fail(w, r, "login: create session", err)
		return false
	}
	if old := l.UI.SessionToken(r); old != "" {
		_ = l.Accounts.RevokeSessionByToken(ctx, old)
	}
	l.UI.SetSessionCookie(w, token, sess.ExpiresAt)
	return true
}

func (l *Login) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	l.UI.RenderFailure(w, r, false, what, err)
}

// SecondStep serves GET|POST /login/mfa.
func (l *Login) SecondStep(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil || !l.UI.CheckCSRF(r) {
			l.UI.Render(w, r, http.StatusForbidden, "message", Page{Title: "Request expired",
				Error: "This form has expired. Go back and try again."})
			return
		}
		if l.Limit != nil {
			if ok, wait := l.Limit.Allow(ratelimit.ClientIP(r)); !ok {
				w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
				l.UI.Render(w, r, http.StatusTooManyRequests, "message", Page{Title: "Too many attempts",
					Error: networkLimited(wait)})
				return
			}
		}
	}
	ch, err := l.Accounts.ChallengeByToken(ctx, l.UI.challengeToken(r))
	if errors.Is(err, accounts.ErrNoChallenge) {
		l.challengeExpired(w, r)
		return
	}
	if err != nil {
		l.fail(w, r, "login mfa: challenge", err)
		return
	}
	if ch.Purpose == accounts.ChallengeEnrol {
		l.enrolStep(w, r, ch)
		return
	}
	if r.Method != http.MethodPost {
		l.renderStep(w, r, http.StatusOK, ch, "", "")
		return
	}
	method := r.PostFormValue("method")
	ch, amr, err := l.Accounts.PassChallenge(ctx, l.UI.challengeToken(r), method, r.PostForm)
	var throttled *accounts.ThrottledError
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(throttled.RetryAfter))
		l.renderStepFor(w, r, http.StatusTooManyRequests, l.UI.challengeToken(r), method,
			failuresLimited(throttled.RetryAfter))
		return
	case errors.Is(err, accounts.ErrFactorRejected), errors.Is(err, accounts.ErrUnknownMethod):
		l.audit(r, audit.Event{Type: "user.login", ActorType: audit.ActorAnonymous, Failed: true, Details: map[string]any{"reason": "second_factor", "method": safeMethod(method)}})
		msg := "That code is not valid. Please try again."
		if method == "webauthn" {
			msg = "That passkey could not confirm your sign-in. Please try again."
		}
		l.renderStepFor(w, r, http.StatusUnauthorized, l.UI.challengeToken(r), method, msg)
		return
	case errors.Is(err, accounts.ErrNoChallenge):
		l.challengeExpired(w, r)
		return
	case err != nil:
		l.fail(w, r, "login mfa: pass", err)
		return
	}
	u, err := l.Accounts.User(ctx, ch.UserID)
	if err != nil {
		l.fail(w, r, "login mfa: user", err)
		return
	}
	l.UI.clearChallengeCookie(w)
	l.startSession(w, r, u, amr, SafeReturnTo(ch.ReturnTo))
}

// safeMethod keeps a posted method name out of the audit log unless known.
func safeMethod(m string) string {
	switch m {
	case accounts.MethodTOTP, accounts.MethodRecovery, "webauthn":
		return m
	}
	return "other"
}

// challengeExpired answers a second step whose pending login is gone
// (expired, used, or never there): its cookie goes, and the browser is told
// to log in again.
func (l *Login) challengeExpired(w http.ResponseWriter, r *http.Request) {
	l.UI.clearChallengeCookie(w)
	l.UI.Render(w, r, http.StatusBadRequest, "message", Page{Title: "Sign-in expired",
		Error: "This sign-in has expired or was already completed. Please log in again.", Data: ""})
}

func (l *Login) renderStepFor(w http.ResponseWriter, r *http.Request, status int, token, method, errMsg string) {
	ch, err := l.Accounts.ChallengeByToken(r.Context(), token)
	if err != nil {
		l.challengeExpired(w, r)
		return
	}
	l.renderStep(w, r, status, ch, safeMethod(method), errMsg)
}

func (l *Login) renderStep(w http.ResponseWriter, r *http.Request, status int, ch *accounts.Challenge, method, errMsg string) {
	ctx := r.Context()
	methods, err := l.Accounts.Factors(ctx, ch.UserID)
	if err != nil {
		l.fail(w, r, "login mfa: factors", err)
		return
	}
	// This runs on GET too and may write: the passkey method begins its
	// WebAuthn ceremony here so the page can carry the options. That is
	// the page's own challenge, not a change that matters: one row per
	// pending login, replaced by the next render, deleted with the pending
	// login, useless without its cookie (accounts/passkey.Factor.Prepare).
	prepared, err := l.Accounts.PrepareChallenge(ctx, ch)
	if err != nil {
		l.fail(w, r, "login mfa: prepare", err)
		return
	}
	if method == "" || method == "other" {
		method = methods[0]
	}
	l.UI.Render(w, r, status, "login_mfa", Page{Title: "Two-step sign-in", Error: errMsg,
		Data: MFAData{Methods: methods, Prepared: prepared, Method: method}})
}

// enrolStep is the second step of a user who must have a second factor and
// has none: the authenticator app's secret and QR code, then one code,
// then the recovery codes and a session.
func (l *Login) enrolStep(w http.ResponseWriter, r *http.Request, ch *accounts.Challenge) {
	ctx := r.Context()
	u, err := l.Accounts.User(ctx, ch.UserID)
	if err != nil {
		l.fail(w, r, "login enrol: user", err)
		return
	}
	if r.Method != http.MethodPost {
		l.renderEnrol(w, r, http.StatusOK, u, "/login/mfa", "This sign-in requires two-step verification. Set it up to continue.", "")
		return
	}
	_, amr, codes, err := l.Accounts.PassEnrolChallenge(ctx, l.UI.challengeToken(r), r.PostFormValue("code"))
	var throttled *accounts.ThrottledError
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(throttled.RetryAfter))
		l.renderEnrol(w, r, http.StatusTooManyRequests, u, "/login/mfa", "", failuresLimited(throttled.RetryAfter))
		return
	case errors.Is(err, accounts.ErrFactorRejected):
		l.renderEnrol(w, r, http.StatusUnauthorized, u, "/login/mfa", "", "That code is not valid. Check the time on your device and try again.")
		return
	case errors.Is(err, accounts.ErrNoChallenge), errors.Is(err, accounts.ErrNotEnrolling):
		l.challengeExpired(w, r)
		return
	case err != nil:
		l.fail(w, r, "login enrol: confirm", err)
		return
	}
	l.UI.clearChallengeCookie(w)
	if !l.createSession(w, r, u, amr) {
		return
	}
	l.audit(r, audit.Event{Type: "user.login", ActorType: audit.ActorUser, ActorID: u.ID, TargetType: "user", TargetID: u.ID,
		Details: map[string]any{"amr": amr, "enrolled": accounts.MethodTOTP}})
	l.UI.Render(w, r, http.StatusOK, "recovery_codes", Page{Title: "Save your recovery codes", LoggedIn: true,
		Notice: "Your authenticator app is set up.", Data: RecoveryCodesData{Codes: codes, Continue: SafeReturnTo(ch.ReturnTo)}})
}

// renderEnrol shows the pending TOTP enrolment of u with its confirmation
// form posting to action.
func renderEnrol(ui *UI, w http.ResponseWriter, r *http.Request, accts *accounts.Service, status int, u *accounts.User, action, note, errMsg string, loggedIn bool) error {
	e, err := accts.PendingTOTP(r.Context(), u)
	if err != nil {
		return err
	}
	ui.Render(w, r, status, "mfa_enrol", Page{Title: "Set up an authenticator app", Notice: note, Error: errMsg, LoggedIn: loggedIn,
		Data: EnrolData{Enrolment: e, QR: template.URL(e.QR), Action: action}}) // #nosec G203 -- our own PNG data URI
	return nil
}

func (l *Login) renderEnrol(w http.ResponseWriter, r *http.Request, status int, u *accounts.User, action, note, errMsg string) {
	if err := renderEnrol(l.UI, w, r, l.Accounts, status, u, action, note, errMsg, false); err != nil {
		l.fail(w, r, "login enrol: pending", err)
	}
}
