package loginui

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/authd/authd/accounts"
)

// The second factors on the account pages: /account/mfa shows them, and
// sets up an authenticator app (start, then confirm with one code, then the
// recovery codes, shown once), regenerates the recovery codes and removes
// the app (both with the current password or a recent login). Every change
// is audited and mailed to the user by accounts.

// AccountMFAData is the data of templates/account_mfa.html.
type AccountMFAData struct {
	Methods       []string
	TOTP          bool
	RecoveryLeft  int
	PasswordLabel string
}

// mountMFA registers the second-factor pages.
func (p *AccountPages) mountMFA(r *mux.Router) {
	r.HandleFunc("/account/mfa", p.mfaPage).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/account/mfa/totp", p.mfaStart).Methods(http.MethodPost)
	r.HandleFunc("/account/mfa/totp/confirm", p.mfaConfirm).Methods(http.MethodPost)
	r.HandleFunc("/account/mfa/totp/remove", p.mfaRemove).Methods(http.MethodPost)
	r.HandleFunc("/account/mfa/recovery", p.mfaRegenerate).Methods(http.MethodPost)
}

func mfaNotice(done string) string {
	switch done {
	case "removed":
		return "The authenticator app was removed. You sign in with your password only."
	}
	return ""
}

func (p *AccountPages) mfaPage(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.loggedInFor(w, r, "/account/mfa")
	if !ok {
		return
	}
	p.renderMFA(w, r, http.StatusOK, u, mfaNotice(r.URL.Query().Get("done")), "")
}

// renderMFA shows the pending enrolment when there is one, else the
// factors and their actions.
func (p *AccountPages) renderMFA(w http.ResponseWriter, r *http.Request, status int, u *accounts.User, note, errMsg string) {
	ctx := r.Context()
	err := renderEnrol(p.UI, w, r, p.Accounts, status, u, "/account/mfa/totp/confirm", note, errMsg, true)
	if err == nil {
		return
	}
	if !errors.Is(err, accounts.ErrNotEnrolling) {
		p.internalError(w, r, "account mfa: pending", err)
		return
	}
	methods, err := p.Accounts.Factors(ctx, u.ID)
	if err != nil {
		p.internalError(w, r, "account mfa: factors", err)
		return
	}
	left, err := p.Accounts.RecoveryCodesLeft(ctx, u.ID)
	if err != nil {
		p.internalError(w, r, "account mfa: recovery codes", err)
		return
	}
	d := AccountMFAData{Methods: methods, RecoveryLeft: left}
	for _, m := range methods {
		d.TOTP = d.TOTP || m == accounts.MethodTOTP
	}
	p.UI.Render(w, r, status, "account_mfa", Page{Title: "Two-step sign-in", Notice: note, Error: errMsg, LoggedIn: true, Data: d})
}

// mfaStart begins (or restarts) setting up an authenticator app.
func (p *AccountPages) mfaStart(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	err := p.Accounts.BeginTOTP(r.Context(), u)
	if errors.Is(err, accounts.ErrAlreadyEnrolled) {
		p.renderMFA(w, r, http.StatusConflict, u, "", "An authenticator app is already set up. Remove it first to set up another.")
		return
	}
	if err != nil {
		p.internalError(w, r, "account mfa: begin", err)
		return
	}
	http.Redirect(w, r, "/account/mfa", http.StatusSeeOther)
}

// mfaConfirm completes the set-up with one code and shows the recovery
// codes, once (this response only; nothing shows them again).
func (p *AccountPages) mfaConfirm(w http.ResponseWriter, r *http.Request) {
	_, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	codes, err := p.Accounts.ConfirmTOTP(r.Context(), u, r.PostFormValue("code"))
	switch {
	case errors.Is(err, accounts.ErrFactorRejected):
		p.renderMFA(w, r, http.StatusBadRequest, u, "", "That code is not valid. Check the time on your device and try again.")
		return
	case errors.Is(err, accounts.ErrNotEnrolling):
		p.renderMFA(w, r, http.StatusConflict, u, "", "There is no set-up to confirm. Start again.")
		return
	case err != nil:
		p.internalError(w, r, "account mfa: confirm", err)
		return
	}
	p.UI.Render(w, r, http.StatusOK, "recovery_codes", Page{Title: "Save your recovery codes", LoggedIn: true,
		Notice: "Your authenticator app is set up: you will need it at every login.", Data: RecoveryCodesData{Codes: codes, Continue: "/account/mfa"}})
}

// mfaFailed answers a change on the MFA page that err refused: the page
// with the form's error (and Retry-After when throttled), or a failure. It
// returns false, answering nothing, when err is nil.
func (p *AccountPages) mfaFailed(w http.ResponseWriter, r *http.Request, u *accounts.User, what string, err error) bool {
	if err == nil {
		return false
	}
	if msg, status := mfaFormError(err); msg != "" {
		setRetryAfter(w, err)
		p.renderMFA(w, r, status, u, "", msg)
	} else {
		p.internalError(w, r, what, err)
	}
	return true
}

func (p *AccountPages) mfaRegenerate(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	codes, err := p.Accounts.RegenerateRecoveryCodes(r.Context(), u, accounts.Proof{Password: r.PostFormValue("current_password"), Session: sess})
	if p.mfaFailed(w, r, u, "account mfa: regenerate", err) {
		return
	}
	p.UI.Render(w, r, http.StatusOK, "recovery_codes", Page{Title: "Save your recovery codes", LoggedIn: true,
		Notice: "New recovery codes were made; the old ones no longer work.", Data: RecoveryCodesData{Codes: codes, Continue: "/account/mfa"}})
}

func (p *AccountPages) mfaRemove(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.accountForm(w, r)
	if !ok {
		return
	}
	err := p.Accounts.RemoveTOTP(r.Context(), u, accounts.Proof{Password: r.PostFormValue("current_password"), Session: sess})
	if p.mfaFailed(w, r, u, "account mfa: remove", err) {
		return
	}
	http.Redirect(w, r, "/account/mfa?done=removed", http.StatusSeeOther)
}

// mfaFormError adds the second-factor errors to formError's.
func mfaFormError(err error) (string, int) {
	if errors.Is(err, accounts.ErrNotEnrolled) {
		return "No authenticator app is set up.", http.StatusConflict
	}
	return formError(err)
}
