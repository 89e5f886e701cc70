package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/reqctx"
	"github.com/authd/authd/storage/fositestore"
)

// The provider issues tokens for POST /api/v1/register called with a
// first-party client's credentials, exactly as the password grant would for
// the user just created.
var _ accounts.PasswordGrantIssuer = (*Provider)(nil)

var errNotFirstParty = errors.New("oauth: client is not a confidential first-party client with the password grant")

// AuthenticateFirstPartyClient checks the client's secret (constant time)
// and that it may use the password grant. It runs before the user exists.
func (p *Provider) AuthenticateFirstPartyClient(ctx context.Context, clientID, clientSecret string) error {
	c, err := p.store.Client(ctx, clientID)
	if err != nil {
		return err
	}
	if err := (fositestore.SHA256Hasher{}).Compare(ctx, c.SecretHash, []byte(clientSecret)); err != nil || len(c.SecretHash) == 0 {
		return fosite.ErrInvalidClient
	}
	if c.Public || !c.FirstParty || !slices.Contains(c.GrantTypes, "password") {
		return errNotFirstParty
	}
	return nil
}

// IssuePasswordGrant writes a token response for user to clientID with the
// requested scope, through fosite's password-grant handler so the tokens are
// stored, introspectable and revocable like any other.
func (p *Provider) IssuePasswordGrant(ctx context.Context, w http.ResponseWriter, r *http.Request, clientID string, user *accounts.User, scope string) {
	w.Header().Set("Cache-Control", "no-store")
	client, err := p.store.GetClient(ctx, clientID)
	if err != nil {
		p.tokenError(ctx, w, nil, "password", fosite.ErrInvalidClient.WithWrap(err))
		return
	}
	sess := NewSession(user.ID)
	sess.ClientID = clientID
	sess.Claims.AuthTime = p.cfg.Now().UTC()
	ar := fosite.NewAccessRequest(sess)
	ar.Client = client
	ar.GrantTypes = fosite.Arguments{"password"}
	ar.Form = url.Values{}
	for _, s := range strings.Fields(scope) {
		if !fosite.ExactScopeStrategy(client.GetScopes(), s) {
			p.tokenError(ctx, w, ar, "password", fosite.ErrInvalidScope.WithHintf("The client may not request scope '%s'.", s))
			return
		}
		ar.AppendRequestedScope(s)
		ar.GrantScope(s)
	}
	grantAudience(ar, p.cfg.APIAudience)
	sess.setRoles(user.Roles, false)
	now := p.cfg.Now().UTC()
	sess.SetExpiresAt(fosite.AccessToken, now.Add(p.cfg.AccessTokenTTL).Round(time.Second))
	sess.SetExpiresAt(fosite.RefreshToken, now.Add(p.cfg.RefreshTokenTTL).Round(time.Second))
	var resp fosite.AccessResponder
	err = p.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		resp, err = p.op.NewAccessResponse(ctx, ar)
		return err
	})
	if err != nil {
		p.tokenError(ctx, w, ar, "password", err)
		return
	}
	p.metrics.tokenIssued("password", clientID)
	reqctx.Logger(ctx).Info("token issued at registration", zap.String("client_id", clientID), zap.String("subject", user.ID))
	p.op.WriteAccessResponse(ctx, w, ar, resp)
}
