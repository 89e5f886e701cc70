package oauth

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/ratelimit"
	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/fositestore"
)

// token is POST /oauth2/token. Refreshes (refresh.go) and code exchanges
// (code_exchange.go) take their own paths; the other grants run fosite's request phase outside any transaction (so a
// reused code's family revocation sticks) and the response phase inside one.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err := r.ParseForm(); err != nil {
		p.tokenError(ctx, w, nil, "other", fosite.ErrInvalidRequest.WithHint("Malformed form body."))
		return
	}
	grant := r.PostForm.Get("grant_type")
	if err := checkGrantType(grant); err != nil {
		p.tokenError(ctx, w, nil, "other", err)
		return
	}
	if grant == "password" && p.cfg.PasswordGrantLimit != nil {
		if ok, wait := p.cfg.PasswordGrantLimit.Allow(ratelimit.ClientIP(r)); !ok {
			p.accts.Metrics().Login(accounts.LoginRateLimited)
			w.Header().Set("Retry-After", ratelimit.RetryAfter(wait))
			p.tokenError(ctx, w, nil, grant, fosite.ErrRequestForbidden.WithHint("Too many password attempts from this address; retry later.").WithWrap(errRateLimited))
			return
		}
	}
	switch grant {
	case "refresh_token":
		p.refresh(w, r)
		return
	case "authorization_code":
		p.exchangeCode(w, r)
		return
	}
	if grant == DeviceGrantType {
		p.deviceToken(w, r)
		return
	}
	sess := NewSession("")
	ar, err := p.op.NewAccessRequest(ctx, r, sess)
	if err != nil {
		p.tokenError(ctx, w, ar, grant, err)
		return
	}
	client, _ := ar.GetClient().(*fositestore.Client)
	switch {
	case ar.GetGrantTypes().ExactOne("client_credentials"):
		// fosite validates but does not grant client_credentials scopes.
		sess.Subject = client.GetID()
		sess.ClientID = client.GetID()
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		grantAudience(ar, p.cfg.APIAudience)
		sess.setRoles([]string{}, false)
	case ar.GetGrantTypes().ExactOne("password"):
		if client == nil || !client.FirstParty {
			p.tokenError(ctx, w, ar, grant, fosite.ErrUnauthorizedClient.WithHint("The password grant is reserved for first-party clients."))
			return
		}
		u, err := p.accts.User(ctx, sess.GetSubject())
		if err != nil {
			p.tokenError(ctx, w, ar, grant, fosite.ErrServerError.WithWrap(err))
			return
		}
		if err := p.passwordGrantAllowed(ctx, client, u); err != nil {
			p.tokenError(ctx, w, ar, grant, err)
			return
		}
		sess.ClientID = client.GetID()
		sess.Claims.Subject = u.ID
		sess.Claims.AuthTime = p.cfg.Now().UTC()
		sess.setAuthentication([]string{accounts.AMRPassword})
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		grantAudience(ar, p.cfg.APIAudience)
		sess.setRoles(u.Roles, false)
	}
	var resp fosite.AccessResponder
	issue := func(ctx context.Context) error {
		var err error
		resp, err = p.op.NewAccessResponse(ctx, ar)
		return err
	}
	if ar.GetGrantTypes().ExactOne("client_credentials") {
		// Its one write is a single INSERT, atomic on its own: BEGIN and
		// COMMIT would be two of its round trips for nothing.
		err = issue(ctx)
	} else {
		err = p.store.InTx(ctx, issue)
	}
	if err != nil {
		p.tokenError(ctx, w, ar, grant, err)
		return
	}
	p.metrics.tokenIssued(grant, ar.GetClient().GetID())
	reqctx.Logger(ctx).Info("token issued", zap.String("grant_type", grantLabel(grant)),
		zap.String("client_id", ar.GetClient().GetID()), zap.String("subject", sess.GetSubject()))
	p.op.WriteAccessResponse(ctx, w, ar, resp)
}

var errRateLimited = errors.New("oauth: rate limited")

// assertionInvalid reports an error fosite passed through unclassified from
// checking a client_assertion's time claims ("Token is expired"): fosite
// returns the JWT library's plain error, which would be answered as a
// server error. Database failures are not this.
func assertionInvalid(ar fosite.AccessRequester, err error) bool {
	var (
		rfc *fosite.RFC6749Error
		pe  *pgconn.PgError
	)
	if ar == nil || ar.GetRequestForm().Get("client_assertion") == "" || errors.As(err, &rfc) || errors.As(err, &pe) {
		return false
	}
	return !storage.IsUnavailable(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func (p *Provider) tokenError(ctx context.Context, w http.ResponseWriter, ar fosite.AccessRequester, grant string, err error) {
	var throttled *accounts.ThrottledError
	switch {
	case storage.IsUnavailable(err):
		w.Header().Set("Retry-After", retryAfter(err))
	case errors.As(err, &throttled):
		// The account's login backoff refused the password grant without
		// checking the password: the client may retry later.
		w.Header().Set("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
		err = fosite.ErrInvalidGrant.WithHintf("Too many failed sign-in attempts for this account; retry in %d seconds.",
			throttled.RetryAfterSeconds()).WithWrap(err)
	case assertionInvalid(ar, err):
		err = fosite.ErrInvalidClient.WithHint("The client_assertion is expired, not yet valid or issued in the future.").WithWrap(err)
	case errors.Is(err, fositestore.ErrPKCEConsumed):
		// A code whose PKCE check already failed once: the client's fault,
		// not the server's (fosite reports any non-NotFound as server_error).
		err = fosite.ErrInvalidGrant.WithHint("The authorization code can no longer be used.").WithWrap(err)
	}
	err = asOAuthError(err)
	p.metrics.tokens.WithLabelValues(grantLabel(grant), errorCode(err)).Inc()
	p.logOAuthError(ctx, "token", err)
	if ar == nil {
		ar = fosite.NewAccessRequest(NewSession(""))
	}
	p.op.WriteAccessError(ctx, w, ar, err)
}

// liveUser returns the enabled user behind subject, for re-reading roles.
// Subjects that are not users (client_credentials) give nil, nil.
func (p *Provider) liveUser(ctx context.Context, subject string) (*accounts.User, error) {
	u, err := p.accts.User(ctx, subject)
	if errors.Is(err, accounts.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}
