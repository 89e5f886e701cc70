package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/reqctx"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/fositestore"
)

// authorize is GET|POST /oauth2/auth: parse, then log in, then consent, then
// issue the code.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, client, ok := p.parseAuthorize(w, r)
	if !ok {
		return
	}
	form := ar.GetRequestForm()
	if err := checkPKCE(form); err != nil {
		p.authorizeError(ctx, w, ar, err) // before the user is asked to log in for nothing
		return
	}
	prompt := strings.Fields(form.Get("prompt"))

	bsess, user, err := p.accts.SessionByToken(ctx, p.ui.SessionToken(r))
	if err != nil && !errors.Is(err, accounts.ErrNoSession) {
		p.authorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	if p.needsLogin(bsess, prompt, form.Get("max_age")) {
		if slices.Contains(prompt, "none") {
			p.authorizeError(ctx, w, ar, fosite.ErrLoginRequired.WithHint("The user is not logged in (prompt=none)."))
			return
		}
		p.metrics.authorize.WithLabelValues("login").Inc()
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(afterLoginURL(form)), http.StatusSeeOther)
		return
	}
	if !p.authenticationOK(w, r, ar, client, bsess, user) {
		return
	}

	scopes, audiences := ar.GetRequestedScopes(), p.consentAudiences(ar)
	// A public client's identity cannot be assured (any app on the device
	// can claim its loopback or custom-scheme redirect), so it never gets a
	// code without the user's interaction (RFC 8252 §8.6), first party or
	// not: remembered consent does not approve it, and prompt=none fails.
	if !client.FirstParty || client.Public {
		covered := false
		if !client.Public {
			covered, err = p.hasConsent(ctx, user.ID, client.ID, scopes, audiences)
		}
		if err != nil {
			p.authorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
			return
		}
		if !covered || slices.Contains(prompt, "consent") {
			if slices.Contains(prompt, "none") {
				p.authorizeError(ctx, w, ar, fosite.ErrConsentRequired.WithHint("The user has not granted these scopes (prompt=none)."))
				return
			}
			p.metrics.authorize.WithLabelValues("consent").Inc()
			p.ui.Render(w, r, http.StatusOK, "consent", loginui.Page{
				Title:    "Allow access?",
				LoggedIn: true,
				Data:     loginui.NewConsentData(client.Name, client.ID, user.Email, scopes, audiences, authorizeURL(form)),
			})
			return
		}
	}
	p.issueCode(w, r, ar, client, bsess, user)
}

// checkPKCE front-runs fosite's PKCE handler (which runs only when the code
// is issued): every client must send an S256 challenge (EnforcePKCE).
func checkPKCE(form url.Values) error {
	if form.Get("code_challenge") == "" {
		return fosite.ErrInvalidRequest.WithHint("Clients must include a code_challenge (PKCE, S256).")
	}
	if form.Get("code_challenge_method") != "S256" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256.")
	}
	// An S256 challenge is BASE64URL(SHA-256(verifier)): 43 characters
	// (RFC 7636 §4.2). Anything else could never be redeemed.
	if c := form.Get("code_challenge"); len(c) != 43 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		return fosite.ErrInvalidRequest.WithHint("code_challenge must be the 43-character base64url SHA-256 of the code_verifier.")
	}
	return nil
}

// needsLogin reports whether the browser must (re-)authenticate: no session,
// prompt=login, or a session older than max_age (max_age=0 means always).
func (p *Provider) needsLogin(bsess *accounts.Session, prompt []string, maxAge string) bool {
	if bsess == nil || slices.Contains(prompt, "login") {
		return true
	}
	if maxAge == "" {
		return false
	}
	n, err := strconv.ParseInt(maxAge, 10, 64)
	if err != nil || n < 0 {
		return false // fosite ignores malformed max_age too
	}
	return bsess.AuthTime.Add(time.Duration(n) * time.Second).Before(p.cfg.Now())
}

// authorizeURL rebuilds the authorization request as a local GET URL, the
// only kind of return_to that login and consent accept.
func authorizeURL(form url.Values) string {
	return "/oauth2/auth?" + form.Encode()
}

// afterLoginURL is the authorization request to resume after a login. The
// login just happened, so prompt=login and max_age=0 are dropped: kept, they
// would send the browser back to the login page for ever.
func afterLoginURL(form url.Values) string {
	f := url.Values{}
	for k, v := range form {
		f[k] = slices.Clone(v)
	}
	dropLoginDemand(f)
	return authorizeURL(f)
}

// dropLoginDemand removes from an authorization request what demands a new
// login (prompt=login, max_age=0), once that login has happened.
func dropLoginDemand(form url.Values) {
	if ps := strings.Fields(form.Get("prompt")); len(ps) > 0 {
		ps = slices.DeleteFunc(ps, func(s string) bool { return s == "login" })
		if len(ps) == 0 {
			form.Del("prompt")
		} else {
			form.Set("prompt", strings.Join(ps, " "))
		}
	}
	if form.Get("max_age") == "0" {
		form.Del("max_age")
	}
}

// issueCode builds the session (subject, auth_time, live roles, ID-token
// claims by scope), grants the requested scopes and audience, and redirects
// with the code and iss (RFC 9207).
func (p *Provider) issueCode(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester,
	client *fositestore.Client, bsess *accounts.Session, user *accounts.User) {
	ctx := r.Context()
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s) // fosite already checked them against the client
	}
	grantAudience(ar, p.cfg.APIAudience)

	sess := NewSession(user.ID)
	sess.ClientID = client.ID
	sess.BrowserSessionID = bsess.ID
	sess.Claims.AuthTime = bsess.AuthTime.UTC()
	sess.Claims.RequestedAt = p.cfg.Now().UTC()
	sess.setAuthentication(sessionAMR(bsess))
	if client.IDTokenSignedResponseAlg != "" {
		sess.Headers.Extra[headerAlg] = client.IDTokenSignedResponseAlg
	}
	addIDTokenClaims(sess, ar.GetGrantedScopes(), user)
	setSID(sess, bsess.SID)
	sess.setRoles(user.Roles, idTokenHasRoles(ar.GetGrantedScopes()))

	// Before the code exists: ending the session must reach this client.
	if err := p.linkSession(ctx, bsess.ID, client.ID); err != nil {
		p.authorizeError(ctx, w, ar, fosite.ErrServerError.WithWrap(err))
		return
	}
	resp, err := p.op.NewAuthorizeResponse(ctx, ar, sess)
	if err != nil {
		p.authorizeError(ctx, w, ar, err)
		return
	}
	p.metrics.authorize.WithLabelValues("code").Inc()
	reqctx.Logger(ctx).Info("authorization code issued", zap.String("client_id", client.ID), zap.String("user_id", user.ID))
	p.writeAuthorizeResponse(ctx, w, ar, resp.GetParameters())
}

// grantAudience grants the requested audiences (fosite checked them), or the
// issuer when none was asked for: RFC 9068 access tokens need an aud.
func grantAudience(r fosite.Requester, issuer string) {
	if len(r.GetRequestedAudience()) == 0 {
		r.GrantAudience(issuer)
		return
	}
	for _, a := range r.GetRequestedAudience() {
		r.GrantAudience(a)
	}
}

func idTokenHasRoles(scopes fosite.Arguments) bool {
	return scopes.Has("roles") || scopes.Has("profile")
}

// addIDTokenClaims adds the standard claims the granted scopes allow.
func addIDTokenClaims(sess *Session, scopes fosite.Arguments, u *accounts.User) {
	if scopes.Has("email") {
		sess.Claims.Extra["email"] = u.Email
		sess.Claims.Extra["email_verified"] = u.EmailVerified
	}
	if scopes.Has("profile") {
		sess.Claims.Extra["name"] = u.Name
	}
}

// authorizeError writes an authorization error (authorize_response.go);
// redirects carry iss (RFC 9207) like successful responses.
func (p *Provider) authorizeError(ctx context.Context, w http.ResponseWriter, ar fosite.AuthorizeRequester, err error) {
	// A database outage is temporarily_unavailable (RFC 6749 §4.1.2.1), not a
	// server_error: the client should retry, nothing is broken.
	if storage.IsUnavailable(err) {
		err = errUnavailable.WithWrap(err)
	}
	p.metrics.authorize.WithLabelValues(errorCode(err)).Inc()
	p.logOAuthError(ctx, "authorize", err)
	p.writeAuthorizeError(ctx, w, ar, err)
}

// errorCode is the OAuth error code of err, for metrics and logs.
func errorCode(err error) string {
	var rfc *fosite.RFC6749Error
	if errors.As(err, &rfc) {
		return rfc.ErrorField
	}
	return "server_error"
}

// logOAuthError logs server errors in full and client errors briefly. fosite
// errors never hold secrets in their hint or debug text.
func (p *Provider) logOAuthError(ctx context.Context, where string, err error) {
	log := reqctx.Logger(ctx)
	code := errorCode(err)
	var rfc *fosite.RFC6749Error
	debug := ""
	if errors.As(err, &rfc) {
		debug = rfc.DebugField
	}
	if code == "server_error" {
		log.Error("oauth "+where+" failed", zap.String("error", code), zap.String("debug", debug), zap.Error(err))
		return
	}
	log.Info("oauth "+where+" rejected", zap.String("error", code), zap.String("debug", debug))
}

// parseAuthorize has fosite parse and validate the authorization request in
// r, then narrows fosite's redirect-URI match to exactRedirect. Every path
// that ends in a code (the authorization endpoint and the consent form)
// starts here. When it returns false the error is written; a redirect URI
// that is not the client's is never redirected to.
func (p *Provider) parseAuthorize(w http.ResponseWriter, r *http.Request) (fosite.AuthorizeRequester, *fositestore.Client, bool) {
	ctx := r.Context()
	reqObjErr := requestObjectError(r) // strips request objects before fosite sees them
	ar, err := p.op.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.authorizeError(ctx, w, ar, err)
		return nil, nil, false
	}
	client, ok := ar.GetClient().(*fositestore.Client)
	if !ok {
		p.authorizeError(ctx, w, ar, fosite.ErrServerError.WithDebug("unexpected client type"))
		return nil, nil, false
	}
	if !exactRedirect(client, ar.GetRedirectURI()) {
		// An empty request makes fosite answer here instead of redirecting.
		p.authorizeError(ctx, w, fosite.NewAuthorizeRequest(), fosite.ErrInvalidRequest.WithHint(
			"The redirect_uri does not match a registered one exactly (any loopback port is for native apps, which are public clients)."))
		return nil, nil, false
	}
	if reqObjErr != nil { // reported now that the redirect URI is known good
		p.authorizeError(ctx, w, ar, reqObjErr)
		return nil, nil, false
	}
	return ar, client, true
}

// consentAudiences are the audiences the token will be valid at, as the
// consent page shows them and remembered consent records them: the
// requested ones, or authd's own API audience when none was asked for
// (what grantAudience grants).
func (p *Provider) consentAudiences(ar fosite.Requester) []string {
	if a := ar.GetRequestedAudience(); len(a) > 0 {
		return a
	}
	return []string{p.cfg.APIAudience}
}

// exactRedirect reports whether the redirect URI fosite accepted is one the
// client registered, character for character. fosite also accepts any port
// on a loopback IP (RFC 8252 §7.3); that exception is for native apps, so
// only public clients keep it.
func exactRedirect(c *fositestore.Client, got *url.URL) bool {
	if c.Public || got == nil {
		return true
	}
	s := got.String()
	return slices.ContainsFunc(c.RedirectURIs, func(reg string) bool {
		if reg == s {
			return true
		}
		u, err := url.Parse(reg) // as fosite compares: parsed
		return err == nil && u.String() == s
	})
}
