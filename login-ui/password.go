package loginui

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/authd/authd/accounts"
)

// ForgotData is the data of templates/forgot.html.
type ForgotData struct {
	Email string
	Sent  bool
}

// LinkData is the data of the form behind a mailed link: the link's token,
// whether it is live, and whether its change is done.
type LinkData struct {
	Token string
	Valid bool
	Done  bool
}

// ResetData is the data of templates/reset.html.
type ResetData = LinkData

// linkForm answers the GET of a mailed link's form (?token=…): the form
// when valid says the link is live, else the page saying it is not. It
// changes nothing; the form's POST spends the link.
func (p *AccountPages) linkForm(w http.ResponseWriter, r *http.Request, page, title string,
	valid func(ctx context.Context, token string) (bool, error)) {
	tok := r.URL.Query().Get("token")
	ok, err := valid(r.Context(), tok)
	if err != nil {
		p.internalError(w, r, page+": check link", err)
		return
	}
	if !ok {
		p.UI.Render(w, r, http.StatusBadRequest, page, Page{Title: title,
			Error: "This link is invalid, has expired or was already used.", Data: LinkData{}})
		return
	}
	p.UI.Render(w, r, http.StatusOK, page, Page{Title: title, Data: LinkData{Token: tok, Valid: true}})
}

func (p *AccountPages) forgotForm(w http.ResponseWriter, r *http.Request) {
	p.UI.Render(w, r, http.StatusOK, "forgot", Page{Title: "Reset your password", Data: ForgotData{}})
}

// forgot answers the same whether or not the account exists.
func (p *AccountPages) forgot(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "forgot", "Reset your password", ForgotData{}) {
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	data := ForgotData{Email: email}
	if !p.allow(w, r, p.Limits.Forgot, "forgot", "Reset your password", data) {
		return
	}
	if _, err := accounts.NormalizeEmail(email); err != nil {
		p.UI.Render(w, r, http.StatusBadRequest, "forgot", Page{Title: "Reset your password", Error: "Please enter a valid email address.", Data: data})
		return
	}
	if err := p.Accounts.ForgotPassword(r.Context(), email); err != nil {
		p.internalError(w, r, "forgot password", err)
		return
	}
	p.UI.Render(w, r, http.StatusOK, "forgot", Page{Title: "Check your email",
		Notice: "If an account exists for that address, we have sent it a link to reset the password.",
		Data:   ForgotData{Email: email, Sent: true}})
}

func (p *AccountPages) resetForm(w http.ResponseWriter, r *http.Request) {
	p.linkForm(w, r, "reset", "Choose a new password", p.Accounts.ResetTokenValid)
}

// reset sets the new password; every session and token of the user ends, so
// this browser is logged out too.
func (p *AccountPages) reset(w http.ResponseWriter, r *http.Request) {
	if !p.form(w, r, "reset", "Choose a new password", ResetData{}) {
		return
	}
	tok := r.PostFormValue("token")
	data := ResetData{Token: tok, Valid: true}
	if !p.allow(w, r, p.Limits.Forgot, "reset", "Choose a new password", data) {
		return
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm_password") {
		p.UI.Render(w, r, http.StatusBadRequest, "reset", Page{Title: "Choose a new password", Error: "The passwords do not match.", Data: data})
		return
	}
	_, err := p.Accounts.ResetPassword(r.Context(), tok, pw)
	if msg, status := formError(err); msg != "" {
		if status == http.StatusBadRequest && err != nil && !isPolicy(err) {
			data.Valid = false
		}
		p.UI.Render(w, r, status, "reset", Page{Title: "Choose a new password", Error: msg, Data: data})
		return
	} else if err != nil {
		p.internalError(w, r, "reset password", err)
		return
	}
	p.UI.ClearSessionCookie(w)
	p.UI.Render(w, r, http.StatusOK, "reset", Page{Title: "Password changed",
		Notice: "Your password was changed and every session was signed out.", Data: ResetData{Done: true}})
}

func isPolicy(err error) bool {
	var pe *accounts.PolicyError
	return errors.As(err, &pe)
}
