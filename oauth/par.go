package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
)

// parURIPrefix starts every request_uri /oauth2/par issues (RFC 9126 §2.2).
const parURIPrefix = "urn:ietf:params:oauth:request_uri:"

// par is POST /oauth2/par (RFC 9126): a client, authenticated as at the
// token endpoint, pushes its authorization parameters and gets back a
// short-lived request_uri to send the browser to /oauth2/auth with. The
// parameters get the same checks as at /oauth2/auth (fosite's, then exact
// redirect matching and PKCE) so a bad request fails here, not in front of
// the user.
func (p *Provider) par(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// Request objects are refused here as at /oauth2/auth (discovery:
	// request_parameter_supported false): fosite would otherwise verify one
	// with the client's registered keys, or take an unsigned one. Only a
	// failed client authentication is reported before it.
	reqObjErr := requestObjectError(r)
	ar, err := p.op.NewPushedAuthorizeRequest(ctx, r)
	if reqObjErr != nil && (err == nil || !errors.Is(err, fosite.ErrInvalidClient)) {
		err = reqObjErr
	}
	if err != nil {
		p.parError(ctx, w, ar, err)
		return
	}
	client, ok := ar.GetClient().(*fositestore.Client)
	if !ok {
		p.parError(ctx, w, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
		return
	}
	if !exactRedirect(client, ar.GetRedirectURI()) {
		p.parError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint(
			"The redirect_uri does not match a registered one exactly (any loopback port is for native apps, which are public clients)."))
		return
	}
	if err := checkPKCE(ar.GetRequestForm()); err != nil {
		p.parError(ctx, w, ar, err)
		return
	}
	resp, err := p.op.NewPushedAuthorizeResponse(ctx, ar, NewSession(""))
	if err != nil {
		p.parError(ctx, w, ar, err)
		return
	}
	p.metrics.authorize.WithLabelValues("par").Inc()
	p.op.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

func (p *Provider) parError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	if e, down := asUnavailable(err); down {
		err = e
		w.Header().Set("Retry-After", "1")
	}
	p.metrics.authorize.WithLabelValues("par_" + errorCode(err)).Inc()
	p.logOAuthError(ctx, "par", err)
	p.op.WritePushedAuthorizeError(ctx, w, ar, err)
}

// parProvider is fosite's provider with authd's PAR rules in the two calls
// of the authorization endpoint that they concern, so /oauth2/auth and
// /consent follow them without knowing PAR:
//   - a request carrying a request_uri is built from the pushed parameters
//     alone: anything else in the URL is dropped (RFC 9126 §4), not merged
//     over them as fosite would;
//   - a request that was not pushed is refused when PAR is required, for
//     every client (Config.RequirePAR) or for this one (its flag);
//   - the pushed request is spent when its code is issued: the request_uri
//     may carry the browser through login and consent, but yields one code.
type parProvider struct {
	fosite.OAuth2Provider
	p *Provider
}

func (w *parProvider) NewAuthorizeRequest(ctx context.Context, r *http.Request) (fosite.AuthorizeRequester, error) {
	if err := r.ParseForm(); err != nil {
		return fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint("Malformed request.").WithWrap(err)
	}
	uri := r.Form.Get("request_uri")
	pushed := strings.HasPrefix(uri, parURIPrefix)
	if pushed {
		u := &url.URL{Path: "/oauth2/auth", RawQuery: url.Values{
			"client_id": {r.Form.Get("client_id")}, "request_uri": {uri}}.Encode()}
		r = authorizeRequestFrom(r, u)
	}
	ar, err := w.OAuth2Provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		if pushed {
			// Unknown, spent, expired or another client's: never echo the
			// caller's redirect_uri or state, as they are not the pushed ones.
			return fosite.NewAuthorizeRequest(), err
		}
		return ar, err
	}
	if !pushed {
		c, _ := ar.GetClient().(*fositestore.Client)
		if w.p.cfg.RequirePAR || (c != nil && c.RequirePushedAuthorizationRequests) {
			return ar, fosite.ErrInvalidRequest.WithHint(
				"Authorization requests must be pushed to the pushed_authorization_request_endpoint first (RFC 9126).")
		}
		return ar, nil
	}
	w.loginSincePush(ctx, r, ar)
	return ar, nil
}

// loginSincePush treats a browser login that happened after the request was
// pushed as satisfying its prompt=login and max_age=0: the browser comes back
// from /login with the same request_uri, whose parameters would otherwise
// send it to log in again for ever (afterLoginURL drops them from a plain
// request for the same reason).
func (w *parProvider) loginSincePush(ctx context.Context, r *http.Request, ar fosite.AuthorizeRequester) {
	form := ar.GetRequestForm()
	prompt := strings.Fields(form.Get("prompt"))
	if !slices.Contains(prompt, "login") && form.Get("max_age") != "0" {
		return
	}
	bsess, _, err := w.p.accts.SessionByToken(ctx, w.p.ui.SessionToken(r))
	if err != nil || bsess.AuthTime.Before(ar.GetRequestedAt()) {
		return
	}
	dropLoginDemand(form)
}

func (w *parProvider) NewAuthorizeResponse(ctx context.Context, ar fosite.AuthorizeRequester, sess fosite.Session) (fosite.AuthorizeResponder, error) {
	if uri := ar.GetRequestForm().Get("request_uri"); strings.HasPrefix(uri, parURIPrefix) {
		if err := w.p.store.ConsumePARSession(ctx, uri); err != nil {
			if errors.Is(err, fositestore.ErrPARUsed) {
				return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri has already been used or has expired.")
			}
			return nil, fosite.ErrServerError.WithWrap(err)
		}
	}
	return w.OAuth2Provider.NewAuthorizeResponse(ctx, ar, sess)
}
