package loginui

import (
	"net/http"
)

// VerifyData is the data of templates/verify_email.html.
type VerifyData struct {
	Verified bool
	Email    string
	LoggedIn bool
}

// verify uses the link from the verification mail. Following the link is
// the proof of the mailbox, so a GET does it; the token is single use.
func (p *AccountPages) verify(w http.ResponseWriter, r *http.Request) {
	_, cur, _ := p.current(r)
	u, err := p.Accounts.VerifyEmail(r.Context(), r.URL.Query().Get("token"))
	if msg, status := formError(err); msg != "" {
		p.UI.Render(w, r, status, "verify_email", Page{Title: "Verify your email", Error: msg, Data: VerifyData{LoggedIn: cur != nil}})
		return
	} else if err != nil {
		p.internalError(w, r, "verify email", err)
		return
	}
	p.UI.Render(w, r, http.StatusOK, "verify_email", Page{Title: "Email verified",
		Notice: "Thank you: your email address is verified.", Data: VerifyData{Verified: true, Email: u.Email, LoggedIn: cur != nil}})
}

// resend mails a fresh verification link to the logged-in user.
func (p *AccountPages) resend(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "message", "Request expired", nil) {
		return
	}
	sess, u, ok := p.loggedIn(w, r)
	if !ok {
		return
	}
	if !p.allow(w, r, p.Limits.Verify, "message", "Please wait", nil) {
		return
	}
	err := p.Accounts.ResendVerification(r.Context(), u.ID)
	if msg, status := formError(err); msg != "" {
		p.renderAccount(w, r, status, sess, u, "", msg)
		return
	} else if err != nil {
		p.internalError(w, r, "resend verification", err)
		return
	}
	http.Redirect(w, r, "/account?done=resend", http.StatusSeeOther)
}
