package loginui

import (
	"net/http"

	"github.com/authd/authd/accounts"
)

// VerifyData is the data of templates/verify_email.html.
type VerifyData struct {
	Verified bool
	Email    string
	LoggedIn bool
	// Confirm shows the form that uses Token (a GET only shows it: mail
	// scanners and link previewers fetch links).
	Confirm bool
	Token   string
	// Change is an email change: NeedPassword asks for the password when
	// the browser is not logged in to the account.
	Change       bool
	NeedPassword bool
}

// verifyForm is GET|HEAD /verify-email?token=…: it shows what the link will
// do and a button that POSTs it. Nothing changes until the POST.
func (p *AccountPages) verifyForm(w http.ResponseWriter, r *http.Request) {
	sess, _, err := p.current(r)
	if err != nil {
		p.internalError(w, r, "verify email: session", err)
		return
	}
	tok := r.URL.Query().Get("token")
	link, err := p.Accounts.PeekEmailLink(r.Context(), tok)
	if msg, status := formError(err); msg != "" {
		p.UI.Render(w, r, status, "verify_email", Page{Title: "Verify your email", Error: msg, Data: VerifyData{LoggedIn: sess != nil}})
		return
	} else if err != nil {
		p.internalError(w, r, "verify email: check link", err)
		return
	}
	p.renderVerify(w, r, http.StatusOK, sess, link, tok, "")
}

func (p *AccountPages) renderVerify(w http.ResponseWriter, r *http.Request, status int, sess *accounts.Session, link *accounts.EmailLink, tok, errMsg string) {
	title := "Confirm your email address"
	if link.Change {
		title = "Confirm your new email address"
	}
	p.UI.Render(w, r, status, "verify_email", Page{Title: title, Error: errMsg, Data: VerifyData{
		Confirm: true, Token: tok, Email: link.Address, LoggedIn: sess != nil, Change: link.Change,
		NeedPassword: link.Change && (sess == nil || sess.UserID != link.UserID),
	}})
}

// verify is POST /verify-email: it uses the link. Confirming an email
// change needs this browser's session of the account, or its password.
func (p *AccountPages) verify(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "verify_email", "Verify your email", VerifyData{}) {
		return
	}
	sess, _, err := p.current(r)
	if err != nil {
		p.internalError(w, r, "verify email: session", err)
		return
	}
	tok := r.PostFormValue("token")
	u, err := p.Accounts.VerifyEmail(r.Context(), tok, accounts.Proof{Password: r.PostFormValue("password"), Session: sess})
	if msg, status := formError(err); msg != "" {
		if link, perr := p.Accounts.PeekEmailLink(r.Context(), tok); perr == nil {
			setRetryAfter(w, err)
			p.renderVerify(w, r, status, sess, link, tok, msg)
			return
		}
		p.UI.Render(w, r, status, "verify_email", Page{Title: "Verify your email", Error: msg, Data: VerifyData{LoggedIn: sess != nil}})
		return
	} else if err != nil {
		p.internalError(w, r, "verify email", err)
		return
	}
	p.UI.Render(w, r, http.StatusOK, "verify_email", Page{Title: "Email verified",
		Notice: "Thank you: your email address is verified.", Data: VerifyData{Verified: true, Email: u.Email, LoggedIn: sess != nil}})
}

// CancelData is the data of templates/email_cancel.html.
type CancelData = LinkData

// cancelForm is GET|HEAD /email/cancel?token=…, the link mailed to the old
// address of an email change: it asks to confirm, changing nothing.
func (p *AccountPages) cancelForm(w http.ResponseWriter, r *http.Request) {
	p.linkForm(w, r, "email_cancel", "Cancel the email change", p.Accounts.CancelLinkValid)
}

// cancel is POST /email/cancel: the pending address is dropped.
func (p *AccountPages) cancel(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "email_cancel", "Cancel the email change", CancelData{}) {
		return
	}
	err := p.Accounts.CancelEmailChange(r.Context(), r.PostFormValue("token"))
	if msg, status := formError(err); msg != "" {
		p.UI.Render(w, r, status, "email_cancel", Page{Title: "Cancel the email change", Error: msg, Data: CancelData{}})
		return
	} else if err != nil {
		p.internalError(w, r, "cancel email change", err)
		return
	}
	p.UI.Render(w, r, http.StatusOK, "email_cancel", Page{Title: "Email change cancelled",
		Notice: "The change was cancelled: your email address stays as it was.", Data: CancelData{Done: true}})
}

// resend mails a fresh verification link to the logged-in user.
func (p *AccountPages) resend(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := p.accountForm(w, r)
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
