package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ory/fosite"

	"github.com/authd/authd/accounts"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/fositestore"
)

// Authentication context classes (OIDC acr) authd asserts, weakest first:
// a login with the password only, and one that also passed a second
// factor. Tokens carry the class the browser session's amr earns
// (acrFor); an authorization request's acr_values name the classes the
// client accepts, and the weakest of them it names must be met.
const (
	ACRPassword = "urn:authd:acr:pwd"
	ACRMFA      = "urn:authd:acr:mfa"
)

// acrSupported is discovery's acr_values_supported, weakest first.
var acrSupported = []string{ACRPassword, ACRMFA}

// errUnmetAuthentication is OpenID Connect Core Unmet Authentication
// Requirements 1.0: the requested acr cannot be met.
var errUnmetAuthentication = &fosite.RFC6749Error{
	ErrorField:       "unmet_authentication_requirements",
	DescriptionField: "The authorization server cannot meet the requested authentication requirements (acr_values).",
	CodeField:        http.StatusBadRequest,
}

// acrFor is the class a login with amr earns.
func acrFor(amr []string) string {
	if slices.Contains(amr, accounts.AMRMulti) {
		return ACRMFA
	}
	return ACRPassword
}

// acrRank orders the classes; -1 for one authd does not know.
func acrRank(acr string) int { return slices.Index(acrSupported, acr) }

// requestedACR is the weakest known class in acr_values ("" when none was
// asked for); ok is false when classes were asked for but none is known.
func requestedACR(acrValues string) (acr string, ok bool) {
	vals := strings.Fields(acrValues)
	if len(vals) == 0 {
		return "", true
	}
	best := -1
	for _, v := range vals {
		if r := acrRank(v); r >= 0 && (best < 0 || r < best) {
			best = r
		}
	}
	if best < 0 {
		return "", false
	}
	return acrSupported[best], true
}

// mfaDemanded reports whether a login for this authorization request must
// pass a second factor: the client's flag or acr_values asking for it. The
// role policy is added per user where the decision is made
// (accounts.Service.MFARequired, MFAOwed); this reads the request for it
// at the authorization endpoint, the device approval and the login page
// (NeedsMFA).
func mfaDemanded(client *fositestore.Client, form url.Values) bool {
	if client != nil && client.RequireMFA {
		return true
	}
	acr, _ := requestedACR(form.Get("acr_values"))
	return acrRank(acr) >= acrRank(ACRMFA)
}

// NeedsMFA implements loginui.LoginRequirements: whether the authorization
// request the login returns to demands a second factor. The request is
// parsed as the authorization endpoint will parse it, so a pushed request
// (request_uri) is judged by its pushed parameters; nothing is spent.
func (p *Provider) NeedsMFA(ctx context.Context, returnTo string) (bool, error) {
	target, ok := loginui.AuthorizeReturnTo(returnTo)
	if !ok {
		return false, nil
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return false, nil
	}
	ar, err := p.op.NewAuthorizeRequest(ctx, r)
	if err != nil {
		if storage.IsUnavailable(err) {
			return false, err
		}
		// The authorization endpoint will refuse it; the login owes it nothing.
		return mfaDemanded(nil, r.URL.Query()), nil
	}
	c, _ := ar.GetClient().(*fositestore.Client)
	return mfaDemanded(c, ar.GetRequestForm()), nil
}

var _ loginui.LoginRequirements = (*Provider)(nil)

// checkAuthentication decides whether the browser session satisfies what
// the request and the user's role demand of the login. It returns nil
// when it does, errUnmetAuthentication when nothing the user can do here
// meets it, and errStepUp when a new login (with the second factor, or
// enrolling one) would.
func (p *Provider) checkAuthentication(ctx context.Context, client *fositestore.Client, form url.Values,
	bsess *accounts.Session, user *accounts.User) error {
	if _, ok := requestedACR(form.Get("acr_values")); !ok {
		return errUnmetAuthentication.WithHint("None of the requested acr_values is supported; see acr_values_supported in discovery.")
	}
	if !p.accts.MFAOwed(user, bsess, mfaDemanded(client, form)) {
		return nil
	}
	return errStepUp
}

// errStepUp means the session's login was too weak: log in again.
var errStepUp = errors.New("oauth: a stronger login is needed")

// sessionAMR is the amr of a browser session (sessions from before amr was
// recorded were password logins).
func sessionAMR(bsess *accounts.Session) []string {
	if len(bsess.AMR) == 0 {
		return []string{accounts.AMRPassword}
	}
	return slices.Clone(bsess.AMR)
}

// setAuthentication records how the user logged in on the session: amr
// and acr in the ID token, and in the access token and introspection
// (Extra), so resource servers can ask for a step-up (RFC 9470).
func (s *Session) setAuthentication(amr []string) {
	acr := acrFor(amr)
	s.Claims.AuthenticationMethodsReferences = amr
	s.Claims.AuthenticationContextClassReference = acr
	if s.Extra == nil {
		s.Extra = map[string]interface{}{}
	}
	s.Extra["amr"] = amr
	s.Extra["acr"] = acr
}

// authenticationOK runs checkAuthentication for an authorization request
// about to be consented or answered with a code. When the login was too
// weak it sends the browser to log in again (password, then the second
// factor or its enrolment), or fails with login_required under
// prompt=none; it returns false once it has answered.
func (p *Provider) authenticationOK(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester,
	client *fositestore.Client, bsess *accounts.Session, user *accounts.User) bool {
	ctx := r.Context()
	form := ar.GetRequestForm()
	err := p.checkAuthentication(ctx, client, form, bsess, user)
	switch {
	case err == nil:
		return true
	case errors.Is(err, errStepUp) && slices.Contains(strings.Fields(form.Get("prompt")), "none"):
		p.authorizeError(ctx, w, ar, fosite.ErrLoginRequired.WithHint("A login with a second factor is required (prompt=none)."))
	case errors.Is(err, errStepUp):
		p.metrics.authorize.WithLabelValues("step_up").Inc()
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(afterLoginURL(form)), http.StatusSeeOther)
	default:
		p.authorizeError(ctx, w, ar, err)
	}
	return false
}

// passwordGrantAllowed refuses the password grant to a user who holds or
// must hold a second factor, and for a client that requires one: the grant
// has no second step, so such users log in through the browser.
func (p *Provider) passwordGrantAllowed(ctx context.Context, client *fositestore.Client, u *accounts.User) error {
	methods, err := p.accts.Factors(ctx, u.ID)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err)
	}
	if accounts.HasSecondFactor(methods) || p.accts.MFARequired(u, client.RequireMFA) {
		return fosite.ErrInvalidGrant.WithHint("This account must sign in with a second factor (MFA), which the password grant cannot carry; " +
			"use the browser sign-in (authorization code flow) instead.")
	}
	return nil
}
