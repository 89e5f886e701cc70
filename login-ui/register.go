package loginui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/authd/authd/accounts"
)

// RegisterData is the data of templates/register.html.
type RegisterData struct {
	Email, Name string
	ReturnTo    string // a validated /oauth2/auth?… URL, or ""
	LoginURL    string
}

func registerData(returnTo, email, name string) RegisterData {
	login := "/login"
	if returnTo != "" {
		login += "?" + url.Values{"return_to": {returnTo}}.Encode()
	}
	return RegisterData{Email: email, Name: name, ReturnTo: returnTo, LoginURL: login}
}

// authorizeReturnTo keeps return_to only when it continues an OAuth
// authorization request; anything else is dropped (no open redirect).
func authorizeReturnTo(s string) string {
	if t, ok := AuthorizeReturnTo(s); ok {
		return t
	}
	return ""
}

func (p *AccountPages) registerForm(w http.ResponseWriter, r *http.Request) {
	p.UI.Render(w, r, http.StatusOK, "register", Page{Title: "Create your account",
		Data: registerData(authorizeReturnTo(r.URL.Query().Get("return_to")), "", "")})
}

// register creates the account, logs this browser in and continues: to the
// authorization request it came from (so the app gets its tokens), or to
// the account page.
func (p *AccountPages) register(w http.ResponseWriter, r *http.Request) {
	empty := registerData("", "", "")
	if !p.form(w, r, "register", "Create your account", empty) {
		return
	}
	returnTo := authorizeReturnTo(r.PostFormValue("return_to"))
	email, name := strings.TrimSpace(r.PostFormValue("email")), strings.TrimSpace(r.PostFormValue("name"))
	data := registerData(returnTo, email, name)
	if !p.allow(w, r, p.Limits.Register, "register", "Create your account", data) {
		return
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm_password") {
		p.UI.Render(w, r, http.StatusBadRequest, "register", Page{Title: "Create your account", Error: "The passwords do not match.", Data: data})
		return
	}
	u, err := p.Accounts.Register(r.Context(), accounts.Registration{Email: email, Password: pw, Name: name})
	if msg, status := formError(err); msg != "" {
		p.UI.Render(w, r, status, "register", Page{Title: "Create your account", Error: msg, Data: data})
		return
	} else if err != nil {
		p.internalError(w, r, "register", err)
		return
	}
	if err := p.startSession(w, r, u); err != nil {
		p.internalError(w, r, "register: session", err)
		return
	}
	if returnTo == "" {
		returnTo = "/account?done=welcome"
	}
	http.Redirect(w, r, returnTo, http.StatusSeeOther)
}
