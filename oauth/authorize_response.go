package oauth

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	loginui "github.com/authd/authd/login-ui"
)

// Authorization responses. authd writes them itself rather than through
// fosite's writers so that every one, success or error, in either mode,
// carries iss (RFC 9207), and so that a request that cannot be redirected
// gets a hosted page instead of JSON in the browser.
//
// Modes: query (the default for code, or explicit) and form_post. fosite
// lets a client ask only for those (fositestore.Client.GetResponseModes);
// any other mode fails as unsupported_response_mode, and that error, like
// every error, is delivered in query mode, never in the mode the request
// named.

// writeAuthorizeResponse redirects to the client with params and iss.
func (p *Provider) writeAuthorizeResponse(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, params url.Values) {
	p.deliver(ctx, w, ar, params)
}

// writeAuthorizeError answers an authorization request that failed: to the
// client's redirect URI once fosite has validated it, else on a hosted page.
// Debug text is never sent (it may name internal packages); the request id
// on the page and in the log ties the two together.
func (p *Provider) writeAuthorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	rfc := fosite.ErrorToRFC6749Error(err).WithExposeDebug(false)
	if ar == nil || !ar.IsRedirectURIValid() {
		p.authorizeErrorPage(ctx, w, rfc)
		return
	}
	params := rfc.ToValues()
	if s := ar.GetState(); s != "" {
		params.Set("state", s)
	}
	p.deliver(ctx, w, ar, params)
}

// deliver sends params and iss to the validated redirect URI: a form the
// browser posts for form_post, else a 303 with the parameters in the query
// (added to any the registered URI already has).
func (p *Provider) deliver(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, params url.Values) {
	params.Set("iss", p.cfg.Issuer)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	u := *ar.GetRedirectURI()
	u.Fragment = ""
	if ar.GetResponseMode() == fosite.ResponseModeFormPost {
		p.ui.RenderFormPost(ctx, w, u.String(), params)
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}

// authorizeErrorPage is the hosted page for an authorization request that
// cannot be sent back to the client (unknown client, unregistered redirect
// URI, a response mode that cannot be honoured before the redirect URI is
// known): redirecting it would make authd an open redirector.
func (p *Provider) authorizeErrorPage(ctx context.Context, w http.ResponseWriter, rfc *fosite.RFC6749Error) {
	status := http.StatusBadRequest
	switch rfc.CodeField {
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		status = rfc.CodeField
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	p.ui.RenderError(ctx, w, status, "This sign-in request cannot be completed", loginui.ErrorData{
		Code:    rfc.ErrorField,
		Message: rfc.GetDescription(),
	})
}

// requestObjectError is the error for an authorization request that carries
// a request object (OIDC Core §6), which authd does not support. It takes
// the parameters out of the form before fosite parses it: fosite would
// otherwise try to verify the object with the client's registered keys.
func requestObjectError(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return nil // fosite reports the malformed body
	}
	var err error
	uri := r.Form.Get("request_uri")
	pushed := strings.HasPrefix(uri, parURIPrefix) // RFC 9126: ours, from /oauth2/par
	switch {
	case r.Form.Get("request") != "":
		err = fosite.ErrRequestNotSupported.WithHint("Request objects ('request') are not supported; send the parameters in the query.")
	case uri != "" && !pushed:
		err = fosite.ErrRequestURINotSupported.WithHint("Request objects by reference ('request_uri') are not supported; send the parameters in the query, or push them to the pushed_authorization_request_endpoint.")
	}
	r.Form.Del("request")
	if !pushed {
		r.Form.Del("request_uri")
	}
	return err
}
