package federation

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/reqctx"
	loginui "github.com/authd/authd/login-ui"
)

// Mount registers the hosted pages of upstream logins on r:
//
//	POST /login/federated/start              start a login (or, intent=link, a link from /account)
//	GET  /login/federated/{slug}/callback    the upstream's redirect back
//	POST /login/federated/link               prove the account with its password
//	POST /login/federated/link/mail          prove it with a mailed link instead
//	GET  /login/federated/link/confirm       the mailed link: a confirmation only
//	POST /login/federated/link/confirm       use the mailed link
//	POST /account/identities/unlink          unlink an identity
//
// Every POST carries the pages' CSRF token. The callback is a GET because
// the upstream redirects the browser to it; it acts only for the browser
// holding the sealed state cookie its start set.
// Finisher ends a login whose first factor passed: a session, or the
// second factor the user owes (*loginui.Login.FinishFirstFactor).
type Finisher interface {
	FinishFirstFactor(w http.ResponseWriter, r *http.Request, u *accounts.User, amr []string, returnTo string)
}

// Mount registers the federation pages; logins that pass upstream finish
// through login, like a password login.
func (s *Service) Mount(r *mux.Router, login Finisher) {
	s.login = login
	r.HandleFunc("/login/federated/start", s.start).Methods(http.MethodPost)
	r.HandleFunc("/login/federated/{slug}/callback", s.finish).Methods(http.MethodGet)
	r.HandleFunc("/login/federated/link", s.proveWithPassword).Methods(http.MethodPost)
	r.HandleFunc("/login/federated/link/mail", s.mailProof).Methods(http.MethodPost)
	r.HandleFunc("/login/federated/link/confirm", s.confirmForm).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/login/federated/link/confirm", s.confirm).Methods(http.MethodPost)
	r.HandleFunc("/account/identities/unlink", s.unlink).Methods(http.MethodPost)
}

// errorData is the content of templates/federation_error.html: a retry
// button (Retry is the provider's slug) and the way back to the login page.
type errorData struct {
	Code, Retry, ReturnTo string
}

func (s *Service) fail(w http.ResponseWriter, r *http.Request, status int, title, msg string, d errorData) {
	if d.ReturnTo == "" {
		d.ReturnTo = "/account"
	}
	s.ui.Render(w, r, status, "federation_error", loginui.Page{Title: title, Error: msg, Data: d})
}

func (s *Service) expired(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, http.StatusBadRequest, "Login expired", "This login expired or was started in another browser. Please start again.",
		errorData{Code: "login_expired"})
}

// accountUser is the signed-in user linking or unlinking a login from the
// account page; without a session it sends the browser to log in and back
// to /account. It returns false once it has answered.
func (s *Service) accountUser(w http.ResponseWriter, r *http.Request) (*accounts.User, bool) {
	_, u, err := s.accts.SessionByToken(r.Context(), s.ui.SessionToken(r))
	if errors.Is(err, accounts.ErrNoSession) {
		http.Redirect(w, r, "/login?"+url.Values{"return_to": {"/account"}}.Encode(), http.StatusSeeOther)
		return nil, false
	}
	if err != nil {
		s.internal(w, r, "federation: session", err)
		return nil, false
	}
	return u, true
}

// internal answers a failure of authd's own (the database): 503 while it is
// unreachable, and the cause in the log.
func (s *Service) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	reqctx.Logger(r.Context()).Error(what, zap.Error(err))
	status, msg := loginui.Failure(w, err)
	s.fail(w, r, status, "Something went wrong", msg, errorData{Code: "server_error"})
}

// upstreamDown is the page for an upstream that failed: never a 500, a retry.
func (s *Service) upstreamDown(w http.ResponseWriter, r *http.Request, p *Provider, returnTo string, err error) {
	var ue *UpstreamError
	if !errors.As(err, &ue) {
		s.internal(w, r, "federation: upstream", err)
		return
	}
	reqctx.Logger(r.Context()).Warn("upstream login failed", zap.String("provider", ue.Provider), zap.String("reason", ue.Reason))
	s.fail(w, r, http.StatusBadGateway, "Could not reach "+p.DisplayName,
		p.DisplayName+" did not answer as expected, so you are not logged in. This is usually temporary: try again in a moment.",
		errorData{Code: "upstream_unavailable", Retry: p.Slug, ReturnTo: returnTo})
}

func (s *Service) form(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil || !s.ui.CheckCSRF(r) {
		s.fail(w, r, http.StatusForbidden, "Request expired", "This form has expired. Please go back and try again.", errorData{Code: "csrf"})
		return false
	}
	return true
}

func (s *Service) allow(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.Limit == nil {
		return true
	}
	ok, wait := s.cfg.Limit.Allow(ratelimit.ClientIP(r))
	if !ok {
		w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
		s.fail(w, r, http.StatusTooManyRequests, "Too many attempts",
			"Too many attempts from your network. Please wait "+ratelimit.RetryAfter(wait)+" seconds and try again.", errorData{Code: "rate_limited"})
	}
	return ok
}

// upstreamCtx bounds a page's whole conversation with an upstream.
func (s *Service) upstreamCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 2*s.cfg.Timeout)
}

// start is POST /login/federated/start: it sets the sealed state cookie and
// sends the browser to the upstream.
func (s *Service) start(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) || !s.allow(w, r) {
		return
	}
	ctx := r.Context()
	returnTo := loginui.SafeReturnTo(r.PostFormValue("return_to"))
	p, err := s.Providers.Get(ctx, r.PostFormValue("provider"))
	if errors.Is(err, ErrNotFound) || (err == nil && !p.Enabled) {
		s.fail(w, r, http.StatusNotFound, "Unknown provider", "This login provider is not available.", errorData{Code: "unknown_provider", ReturnTo: returnTo})
		return
	}
	if err != nil {
		s.internal(w, r, "federation: provider", err)
		return
	}
	st := &flowState{Provider: p.ID, State: random(), Nonce: random(), Verifier: random(), ReturnTo: returnTo,
		Expires: s.cfg.Now().Add(s.cfg.FlowTTL).Unix()}
	if r.PostFormValue("intent") == "link" {
		u, ok := s.accountUser(w, r)
		if !ok {
			return
		}
		st.LinkUser, st.ReturnTo = u.ID, "/account"
	}
	uctx, cancel := s.upstreamCtx(ctx)
	defer cancel()
	dest, err := s.client.authCodeURL(uctx, p, s.callback(p), st)
	if err != nil {
		s.upstreamDown(w, r, p, returnTo, err)
		return
	}
	s.ui.SetFlowCookie(w, flowCookie, s.seal(flowCookie, st), s.cfg.FlowTTL)
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// finish is the callback: check the state against the browser's cookie,
// redeem the code, verify what the upstream says, and act on resolve's
// decision.
func (s *Service) finish(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var st flowState
	if !s.open(flowCookie, s.ui.FlowCookie(r, flowCookie), &st, func() int64 { return st.Expires }) {
		s.expired(w, r)
		return
	}
	p, err := s.Providers.Get(ctx, mux.Vars(r)["slug"])
	if errors.Is(err, ErrNotFound) || (err == nil && p.ID != st.Provider) {
		s.expired(w, r)
		return
	}
	if err == nil && !p.Enabled { // disabled while the person was away
		s.fail(w, r, http.StatusNotFound, "Unknown provider", "This login provider is not available.", errorData{Code: "unknown_provider", ReturnTo: st.ReturnTo})
		return
	}
	if err != nil {
		s.internal(w, r, "federation: provider", err)
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		s.expired(w, r)
		return
	}
	// The state is single use: whatever happens next, this cookie is spent.
	s.ui.ClearFlowCookie(w, flowCookie)
	if q.Get("error") != "" {
		s.fail(w, r, http.StatusBadRequest, "Login cancelled", p.DisplayName+" did not log you in (it answered "+truncate(q.Get("error"), 40)+").",
			errorData{Code: "upstream_denied", Retry: p.Slug, ReturnTo: st.ReturnTo})
		return
	}
	// RFC 9207: an issuer identified in the response must be the one we asked.
	if iss := q.Get("iss"); iss != "" && p.Kind == KindOIDC && iss != p.Issuer {
		s.upstreamDown(w, r, p, st.ReturnTo, upstreamErr(p, "authorization response from another issuer"))
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		s.upstreamDown(w, r, p, st.ReturnTo, upstreamErr(p, "authorization response without a usable code"))
		return
	}
	uctx, cancel := s.upstreamCtx(ctx)
	id, err := s.client.exchange(uctx, p, s.callback(p), code, &st)
	cancel()
	if err != nil {
		s.upstreamDown(w, r, p, st.ReturnTo, err)
		return
	}
	out, err := s.resolve(ctx, p, id, st.LinkUser)
	if err != nil {
		s.internal(w, r, "federation: resolve", err)
		return
	}
	switch {
	case out.refused != "":
		s.auditLogin(r, "", p, out.code)
		s.fail(w, r, http.StatusForbidden, "Cannot log you in", out.refused, errorData{Code: out.code, ReturnTo: st.ReturnTo})
	case out.prove != nil:
		pl := &pendingLink{Identity: *id, UserID: out.prove.ID, ReturnTo: st.ReturnTo, Expires: s.cfg.Now().Add(s.cfg.FlowTTL).Unix()}
		s.ui.SetFlowCookie(w, linkCookie, s.seal(linkCookie, pl), s.cfg.FlowTTL)
		s.renderProve(w, r, http.StatusOK, p, out.prove, "", "")
	default:
		s.loggedIn(w, r, p, out.user, st.ReturnTo)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// loggedIn hands a login through p to the hosted login's last steps: the
// second factor if one is owed, then the session (amr "fed").
func (s *Service) loggedIn(w http.ResponseWriter, r *http.Request, p *Provider, u *accounts.User, returnTo string) {
	s.auditLogin(r, u.ID, p, "")
	s.login.FinishFirstFactor(w, r, u, []string{accounts.AMRFederated}, returnTo)
}

func (s *Service) auditLogin(r *http.Request, userID string, p *Provider, refused string) {
	// Success is "user.login_upstream": the hosted login records
	// "user.login" once the session exists (after any second factor).
	e := audit.Event{Type: "user.login_upstream", ActorType: audit.ActorUser, ActorID: userID, TargetType: "user", TargetID: userID,
		Details: map[string]any{"method": "federated", "provider": p.Slug}}
	if refused != "" {
		e.ActorType, e.Failed = audit.ActorAnonymous, true
		e.Details["reason"] = refused
	}
	if err := audit.Record(r.Context(), s.Providers.pool, s.log, e.FromRequest(r)); err != nil {
		reqctx.Logger(r.Context()).Warn("audit upstream login", zap.Error(err))
	}
}

// proveData is the content of templates/federation_link.html.
type proveData struct {
	Provider, Email string
	HasPassword     bool
}

func (s *Service) renderProve(w http.ResponseWriter, r *http.Request, status int, p *Provider, u *accounts.User, errMsg, note string) {
	s.ui.Render(w, r, status, "federation_link", loginui.Page{Title: "Link " + p.DisplayName + " to your account", Error: errMsg, Notice: note,
		Data: proveData{Provider: p.DisplayName, Email: u.Email, HasPassword: u.HasPassword()}})
}

// pending reads the browser's pending link with its provider and account;
// ok false means the page was answered.
func (s *Service) pending(w http.ResponseWriter, r *http.Request) (*pendingLink, *Provider, *accounts.User, bool) {
	var pl pendingLink
	if !s.open(linkCookie, s.ui.FlowCookie(r, linkCookie), &pl, func() int64 { return pl.Expires }) {
		s.expired(w, r)
		return nil, nil, nil, false
	}
	p, err := s.Providers.Get(r.Context(), pl.Identity.ProviderID)
	if errors.Is(err, ErrNotFound) || (err == nil && !p.Enabled) {
		s.expired(w, r)
		return nil, nil, nil, false
	}
	if err != nil {
		s.internal(w, r, "federation: provider", err)
		return nil, nil, nil, false
	}
	u, err := s.accts.User(r.Context(), pl.UserID)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && u.Disabled) {
		s.expired(w, r)
		return nil, nil, nil, false
	}
	if err != nil {
		s.internal(w, r, "federation: user", err)
		return nil, nil, nil, false
	}
	return &pl, p, u, true
}

// proveWithPassword is POST /login/federated/link: the account's password
// proves it; the link and its audit event commit together.
func (s *Service) proveWithPassword(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) || !s.allow(w, r) {
		return
	}
	pl, p, u, ok := s.pending(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	got, err := s.accts.Authenticate(ctx, u.Email, r.PostFormValue("password"))
	var throttled *accounts.ThrottledError
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(throttled.RetryAfter))
		s.renderProve(w, r, http.StatusTooManyRequests, p, u, "Too many failed attempts. Please wait "+ratelimit.RetryAfter(throttled.RetryAfter)+" seconds and try again.", "")
		return
	case errors.Is(err, accounts.ErrInvalidCredentials), errors.Is(err, accounts.ErrUserDisabled), errors.Is(err, accounts.ErrInvalidEmail),
		err == nil && got.ID != u.ID:
		s.auditLinkFailed(r, u.ID, p, "wrong_password")
		s.renderProve(w, r, http.StatusUnauthorized, p, u, "Incorrect password.", "")
		return
	case err != nil:
		s.internal(w, r, "federation: authenticate", err)
		return
	}
	s.linked(w, r, pl, p, u, s.link(ctx, audit.Event{}.FromRequest(r), u.ID, &pl.Identity, "password", nil))
}

// linked finishes a proven link: a session for the account (unless this
// browser is already logged in to it) and back to where the login started.
func (s *Service) linked(w http.ResponseWriter, r *http.Request, pl *pendingLink, p *Provider, u *accounts.User, err error) {
	switch {
	case errors.Is(err, ErrIdentityTaken):
		s.ui.ClearFlowCookie(w, linkCookie)
		s.fail(w, r, http.StatusConflict, "Cannot link", "This "+p.DisplayName+" account is already linked to another account.",
			errorData{Code: "identity_taken", ReturnTo: pl.ReturnTo})
		return
	case errors.Is(err, accounts.ErrInvalidToken):
		s.fail(w, r, http.StatusBadRequest, "Link expired", "This link has expired or was already used. Log in again to get a new one.",
			errorData{Code: "invalid_link", ReturnTo: pl.ReturnTo})
		return
	case err != nil:
		s.internal(w, r, "federation: link", err)
		return
	}
	s.ui.ClearFlowCookie(w, linkCookie)
	if sess, cur, err := s.accts.SessionByToken(r.Context(), s.ui.SessionToken(r)); err == nil && sess != nil && cur.ID == u.ID {
		http.Redirect(w, r, "/account?done=linked", http.StatusSeeOther)
		return
	}
	s.loggedIn(w, r, p, u, pl.ReturnTo)
}

func (s *Service) auditLinkFailed(r *http.Request, userID string, p *Provider, reason string) {
	e := audit.Event{Type: "user.identity_linked", ActorType: audit.ActorAnonymous, TargetType: "user", TargetID: userID, Failed: true,
		Details: map[string]any{"provider": p.Slug, "reason": reason}}
	if err := audit.Record(r.Context(), s.Providers.pool, s.log, e.FromRequest(r)); err != nil {
		reqctx.Logger(r.Context()).Warn("audit link", zap.Error(err))
	}
}

// mailProof is POST /login/federated/link/mail: mail the account a link.
func (s *Service) mailProof(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) || !s.allow(w, r) {
		return
	}
	_, p, u, ok := s.pending(w, r)
	if !ok {
		return
	}
	err := s.accts.SendLinkProof(r.Context(), u.ID, p.DisplayName, "/login/federated/link/confirm")
	var soon *accounts.TooSoonError
	switch {
	case errors.As(err, &soon):
		w.Header().Set("Retry-After", ratelimit.RetryAfter(soon.RetryAfter))
		s.renderProve(w, r, http.StatusTooManyRequests, p, u, "A link was sent a moment ago. Please wait "+ratelimit.RetryAfter(soon.RetryAfter)+" seconds before asking again.", "")
	case err != nil:
		s.internal(w, r, "federation: mail proof", err)
	default:
		s.renderProve(w, r, http.StatusOK, p, u, "", "We sent a link to "+u.Email+". Open it in this browser to finish.")
	}
}

// confirmData is the content of templates/federation_confirm.html.
type confirmData struct{ Provider, Email, Token string }

// confirmForm is GET of the mailed link: it only asks (mail scanners fetch
// links), in the browser holding the pending link.
func (s *Service) confirmForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	okTok, err := s.accts.LinkProofValid(r.Context(), tok)
	if err != nil {
		s.internal(w, r, "federation: check link", err)
		return
	}
	if !okTok {
		s.fail(w, r, http.StatusBadRequest, "Link expired", "This link has expired or was already used. Log in again to get a new one.",
			errorData{Code: "invalid_link"})
		return
	}
	_, p, u, ok := s.pending(w, r)
	if !ok {
		return
	}
	s.ui.Render(w, r, http.StatusOK, "federation_confirm", loginui.Page{Title: "Link " + p.DisplayName + "?",
		Data: confirmData{Provider: p.DisplayName, Email: u.Email, Token: tok}})
}

// confirm is POST of the mailed link: the token and the browser's pending
// link must name the same account.
func (s *Service) confirm(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	pl, p, u, ok := s.pending(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	tok := r.PostFormValue("token")
	err := s.link(ctx, audit.Event{}.FromRequest(r), u.ID, &pl.Identity, "email", func(tx pgx.Tx) (string, error) {
		return s.accts.ConsumeLinkProof(ctx, tx, tok)
	})
	s.linked(w, r, pl, p, u, err)
}

// unlink is POST /account/identities/unlink.
func (s *Service) unlink(w http.ResponseWriter, r *http.Request) {
	if !s.form(w, r) {
		return
	}
	ctx := r.Context()
	u, ok := s.accountUser(w, r)
	if !ok {
		return
	}
	err := s.Unlink(ctx, audit.Event{}.FromRequest(r), u.ID, r.PostFormValue("provider_id"), r.PostFormValue("subject"))
	switch {
	case errors.Is(err, ErrLastLogin):
		s.fail(w, r, http.StatusConflict, "Cannot unlink", "This is the only way to log in to your account. Set a password (or link another login) first.",
			errorData{Code: "last_login"})
	case errors.Is(err, ErrNoIdentity):
		s.fail(w, r, http.StatusNotFound, "Cannot unlink", "This login is not linked to your account.", errorData{Code: "not_linked"})
	case err != nil:
		s.internal(w, r, "federation: unlink", err)
	default:
		http.Redirect(w, r, "/account?done=unlinked", http.StatusSeeOther)
	}
}

// LoginButtons lists the enabled providers (loginui.UpstreamLister).
func (s *Service) LoginButtons(ctx context.Context) ([]loginui.UpstreamButton, error) {
	ps, err := s.Providers.List(ctx, true)
	if err != nil {
		return nil, err
	}
	out := make([]loginui.UpstreamButton, len(ps))
	for i, p := range ps {
		out[i] = loginui.UpstreamButton{Slug: p.Slug, Name: p.DisplayName}
	}
	return out, nil
}

// LinkedIdentities lists a user's identities (loginui.AccountIdentities).
func (s *Service) LinkedIdentities(ctx context.Context, userID string) ([]loginui.LinkedIdentity, error) {
	ids, err := s.Identities(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]loginui.LinkedIdentity, len(ids))
	for i, x := range ids {
		out[i] = loginui.LinkedIdentity{ProviderID: x.ProviderID, Slug: x.Slug, Provider: x.Provider, Subject: x.Subject, Email: x.Email, CreatedAt: x.CreatedAt}
	}
	return out, nil
}

var (
	_ loginui.UpstreamLister    = (*Service)(nil)
	_ loginui.AccountIdentities = (*Service)(nil)
)
