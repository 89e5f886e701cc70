package oauth

import (
	"context"
	"errors"
	"net/http"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/authd/authd/storage/fositestore"
)

// familyRevocation is RFC 7009 revocation that ends a refresh token's whole
// family whether or not the presented token was already rotated. fosite's
// own handler treats a used refresh token as already revoked and does
// nothing, so a logout racing a refresh left the refresh's new pair alive;
// RFC 7009 §2.1 asks that revoking a refresh token end every token of the
// grant. The family revocation takes the family's lock, so a rotation in
// flight either commits first and is revoked with the rest, or finds its
// token revoked.
type familyRevocation struct {
	store    *fositestore.Store
	strategy oauth2.CoreStrategy
}

var _ fosite.RevocationHandler = (*familyRevocation)(nil)

// familyRevocationFactory composes familyRevocation in place of
// compose.OAuth2TokenRevocationFactory.
func (p *Provider) familyRevocationFactory(fosite.Configurator, interface{}, interface{}) interface{} {
	return &familyRevocation{store: p.store, strategy: p.strategy}
}

// RevokeToken implements fosite.RevocationHandler. An unknown token is not
// an error (RFC 7009 §2.2); another client's token is unauthorized_client;
// a database failure is temporarily_unavailable, wrapping the cause.
func (h *familyRevocation) RevokeToken(ctx context.Context, token string, hint fosite.TokenType, client fosite.Client) error {
	find := []func() (fosite.Requester, error){
		func() (fosite.Requester, error) {
			return h.store.GetRefreshTokenSession(ctx, h.strategy.RefreshTokenSignature(ctx, token), nil)
		},
		func() (fosite.Requester, error) {
			return h.store.GetAccessTokenSession(ctx, h.strategy.AccessTokenSignature(ctx, token), nil)
		},
	}
	if hint == fosite.AccessToken {
		find[0], find[1] = find[1], find[0]
	}
	var ar fosite.Requester
	for _, f := range find {
		r, err := f()
		if err == nil || (errors.Is(err, fosite.ErrInactiveToken) && r != nil) {
			ar = r // a used or revoked token still names its family
			break
		}
		if !errors.Is(err, fosite.ErrNotFound) && !errors.Is(err, fosite.ErrInactiveToken) {
			return fosite.ErrTemporarilyUnavailable.WithWrap(err)
		}
	}
	if ar == nil {
		return nil
	}
	if ar.GetClient().GetID() != client.GetID() {
		return fosite.ErrUnauthorizedClient
	}
	if err := h.store.RevokeRefreshToken(ctx, ar.GetID()); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	if err := h.store.RevokeAccessToken(ctx, ar.GetID()); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return fosite.ErrTemporarilyUnavailable.WithWrap(err)
	}
	return nil
}

// revoke is POST /oauth2/revoke (RFC 7009): fosite authenticates the client,
// checks it owns the token and revokes the whole family.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	err := p.op.NewRevocationRequest(ctx, r)
	if err != nil {
		p.logOAuthError(ctx, "revoke", err)
	}
	if _, ok := asUnavailable(err); ok {
		// fosite would answer 200 (or invalid_client): the client must
		// learn that nothing was revoked.
		writeUnavailable(w, err)
		return
	}
	p.metrics.revoked(err)
	p.op.WriteRevocationResponse(ctx, w, err)
}
