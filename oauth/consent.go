package oauth

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/authd/authd/accounts"
	loginui "github.com/authd/authd/login-ui"
)

// consent is POST /consent, the consent page's form. It re-parses the
// authorization request carried in return_to (so nothing the browser sends
// besides the decision is trusted beyond what fosite validates again), then
// either redirects with access_denied or remembers the grant and issues the
// code.
func (p *Provider) consent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil || !p.ui.CheckCSRF(r) {
		p.ui.Render(w, r, http.StatusForbidden, "message", loginui.Page{Title: "Request expired",
			Error: "This form has expired or was not sent by this site. Go back and try again."})
		return
	}
	target, ok := loginui.AuthorizeReturnTo(r.PostFormValue("return_to"))
	if !ok {
		p.ui.Render(w, r, http.StatusBadRequest, "message", loginui.Page{Title: "Invalid request",
			Error: "The authorization request is missing or invalid."})
		return
	}
	u, _ := url.Parse(target)
	ar, client, ok := p.parseAuthorize(w, authorizeRequestFrom(r, u))
	if !ok {
		return
	}
	bsess, user, err := p.accts.SessionByToken(ctx, p.ui.SessionToken(r))
	if errors.Is(err, accounts.ErrNoSession) {
		// Logged out in another tab: start the flow again.
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(afterLoginURL(ar.GetRequestForm())), http.StatusSeeOther)
		return
	}
	if err != nil {
		p.authorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	if !p.authenticationOK(w, r, ar, client, bsess, user) {
		return
	}
	if r.PostFormValue("decision") != "allow" {
		p.authorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	if err := p.saveConsent(ctx, user.ID, client.ID, ar.GetRequestedScopes(), p.consentAudiences(ar)); err != nil {
		p.authorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	p.issueCode(w, r, ar, client, bsess, user)
}

// authorizeRequestFrom is r turned into the GET of the authorization URL u,
// for fosite to parse.
func authorizeRequestFrom(r *http.Request, u *url.URL) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Method = http.MethodGet
	r2.URL = u
	r2.RequestURI = u.RequestURI()
	r2.Body = http.NoBody
	r2.ContentLength = 0
	r2.Header.Del("Content-Type")
	r2.Form, r2.PostForm, r2.MultipartForm = nil, nil, nil
	return r2
}
