package oauth

import (
	"context"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// ownGrantOnly lets a token endpoint handler populate only the responses of
// the grants it handles. fosite's NewAccessResponse offers every request to
// every handler, and each one that does not handle it answers with
// errorsx.WithStack(ErrUnknownRequest): a stack capture per handler per
// token, ~5% of a client_credentials request's CPU. Every handler we compose
// starts its PopulateTokenEndpointResponse with the same
// CanHandleTokenEndpointRequest check (or, for PKCE, does nothing), so asking
// first changes nothing but the cost.
type ownGrantOnly struct{ fosite.TokenEndpointHandler }

func (h ownGrantOnly) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if !h.CanHandleTokenEndpointRequest(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, resp)
}

// openIDRefreshOnly lets fosite's OpenID Connect refresh handler see only
// refreshes granted "openid". It handles every refresh_token grant and
// refuses those without openid with errorsx.WithStack(ErrUnknownRequest),
// twice per rotation (request and response): ~3% of a plain refresh's CPU
// went into those stack captures. The handler's own first two checks are
// CanHandleTokenEndpointRequest and the granted openid scope, in both
// methods; they are asked here first, the same way, so only the cost changes.
type openIDRefreshOnly struct{ fosite.TokenEndpointHandler }

func (h openIDRefreshOnly) notOpenID(ctx context.Context, r fosite.AccessRequester) bool {
	return h.CanHandleTokenEndpointRequest(ctx, r) && !r.GetGrantedScopes().Has("openid")
}

func (h openIDRefreshOnly) HandleTokenEndpointRequest(ctx context.Context, r fosite.AccessRequester) error {
	if h.notOpenID(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.HandleTokenEndpointRequest(ctx, r)
}

func (h openIDRefreshOnly) PopulateTokenEndpointResponse(ctx context.Context, r fosite.AccessRequester, resp fosite.AccessResponder) error {
	if h.notOpenID(ctx, r) {
		return fosite.ErrUnknownRequest
	}
	return h.TokenEndpointHandler.PopulateTokenEndpointResponse(ctx, r, resp)
}

// dispatchByGrant wraps every token endpoint handler of cfg in ownGrantOnly,
// and the OpenID Connect refresh handler in openIDRefreshOnly too.
func dispatchByGrant(cfg *fosite.Config) {
	for i, h := range cfg.TokenEndpointHandlers {
		if _, ok := h.(*openid.OpenIDConnectRefreshHandler); ok {
			h = openIDRefreshOnly{h}
		}
		cfg.TokenEndpointHandlers[i] = ownGrantOnly{h}
	}
}
