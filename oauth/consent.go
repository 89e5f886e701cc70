package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/jackc/pgx/v5"
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

// Consents are remembered per user and client as the scopes and audiences
// the user has granted (table oauth2_consents). A request is covered when
// every scope and every audience it asks for was shown and granted before.

// hasConsent reports whether user granted client every scope in scopes and
// every audience in audiences.
func (p *Provider) hasConsent(ctx context.Context, userID, clientID string, scopes, audiences []string) (bool, error) {
	var granted, grantedAud []string
	err := p.pool.QueryRow(ctx, `SELECT scopes, audiences FROM oauth2_consents WHERE user_id = $1 AND client_id = $2`,
		userID, clientID).Scan(&granted, &grantedAud)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("oauth: read consent: %w", err)
	}
	covered := func(want, have []string) bool {
		return !slices.ContainsFunc(want, func(s string) bool { return !slices.Contains(have, s) })
	}
	return covered(scopes, granted) && covered(audiences, grantedAud), nil
}

// saveConsent adds scopes and audiences to what user granted client.
func (p *Provider) saveConsent(ctx context.Context, userID, clientID string, scopes, audiences []string) error {
	if scopes == nil {
		scopes = []string{}
	}
	if audiences == nil {
		audiences = []string{}
	}
	_, err := p.pool.Exec(ctx, `INSERT INTO oauth2_consents (user_id, client_id, scopes, audiences) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET
			scopes = ARRAY(SELECT DISTINCT s FROM unnest(oauth2_consents.scopes || EXCLUDED.scopes) AS s ORDER BY s),
			audiences = ARRAY(SELECT DISTINCT a FROM unnest(oauth2_consents.audiences || EXCLUDED.audiences) AS a ORDER BY a),
			updated_at = now()`, userID, clientID, scopes, audiences)
	if err != nil {
		return fmt.Errorf("oauth: save consent: %w", err)
	}
	return nil
}

// RevokeConsent forgets every scope user granted client (the account page
// can offer it); the next authorization asks again.
func (p *Provider) RevokeConsent(ctx context.Context, userID, clientID string) error {
	_, err := p.pool.Exec(ctx, `DELETE FROM oauth2_consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	if err != nil {
		return fmt.Errorf("oauth: revoke consent: %w", err)
	}
	return nil
}

// ConsentedApps lists the third-party apps user has allowed, for the
// account page (loginui.AccountApps).
func (p *Provider) ConsentedApps(ctx context.Context, userID string) ([]loginui.ConsentedApp, error) {
	rows, err := p.pool.Query(ctx, `SELECT c.id, c.name, k.scopes, k.audiences, k.updated_at
		FROM oauth2_consents k JOIN oauth2_clients c ON c.id = k.client_id
		WHERE k.user_id = $1 ORDER BY c.name, c.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("oauth: list consents: %w", err)
	}
	apps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (loginui.ConsentedApp, error) {
		var a loginui.ConsentedApp
		err := row.Scan(&a.ClientID, &a.Name, &a.Scopes, &a.Audiences, &a.GrantedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: list consents: %w", err)
	}
	return apps, nil
}

// RevokeApp withdraws what user allowed client: the remembered consent goes
// first (the next authorization asks again), then every token the client
// holds for the user. A failure after the first step leaves nothing the
// user did not ask for; trying again finishes it.
func (p *Provider) RevokeApp(ctx context.Context, userID, clientID string) error {
	if err := p.RevokeConsent(ctx, userID, clientID); err != nil {
		return err
	}
	if err := p.store.RevokeUserClientTokens(ctx, userID, clientID); err != nil {
		return fmt.Errorf("oauth: revoke app tokens: %w", err)
	}
	return nil
}
