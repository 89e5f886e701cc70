package oauth

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
)

// grantHandler records PopulateTokenEndpointResponse calls for one grant.
type grantHandler struct {
	fosite.TokenEndpointHandler
	grant     string
	populated int
}

func (h *grantHandler) CanHandleTokenEndpointRequest(_ context.Context, r fosite.AccessRequester) bool {
	return r.GetGrantTypes().ExactOne(h.grant)
}

func (h *grantHandler) PopulateTokenEndpointResponse(context.Context, fosite.AccessRequester, fosite.AccessResponder) error {
	h.populated++
	return nil
}

func TestDispatchByGrant_PopulatesOnlyTheGrantsOwnHandler(t *testing.T) {
	cc, refresh := &grantHandler{grant: "client_credentials"}, &grantHandler{grant: "refresh_token"}
	cfg := &fosite.Config{TokenEndpointHandlers: fosite.TokenEndpointHandlers{cc, refresh}}
	dispatchByGrant(cfg)

	req := fosite.NewAccessRequest(NewSession(""))
	req.GrantTypes = fosite.Arguments{"client_credentials"}
	var errs []error
	for _, h := range cfg.GetTokenEndpointHandlers(context.Background()) {
		errs = append(errs, h.PopulateTokenEndpointResponse(context.Background(), req, fosite.NewAccessResponse()))
	}
	if cc.populated != 1 || refresh.populated != 0 {
		t.Fatalf("populated: client_credentials handler %d times, refresh handler %d times; want 1 and 0", cc.populated, refresh.populated)
	}
	if errs[0] != nil || !errors.Is(errs[1], fosite.ErrUnknownRequest) {
		t.Fatalf("errors = %v; want nil for the own grant and ErrUnknownRequest (which fosite skips) for the other", errs)
	}
}

// A refresh not granted openid passes fosite's OpenID Connect refresh
// handler as the bare ErrUnknownRequest (no stack captured); one granted
// openid still reaches the handler.
func TestDispatchByGrant_OpenIDRefreshHandlerSkipsPlainRefreshes(t *testing.T) {
	ctx := context.Background()
	cfg := &fosite.Config{TokenEndpointHandlers: fosite.TokenEndpointHandlers{&openid.OpenIDConnectRefreshHandler{}}}
	dispatchByGrant(cfg)
	h := cfg.GetTokenEndpointHandlers(ctx)[0]

	req := fosite.NewAccessRequest(NewSession("alice"))
	req.GrantTypes = fosite.Arguments{"refresh_token"}
	req.Client = &fosite.DefaultClient{ID: "web", GrantTypes: fosite.Arguments{"authorization_code", "refresh_token"}}
	req.GrantScope("offline_access")
	for name, err := range map[string]error{
		"HandleTokenEndpointRequest":    h.HandleTokenEndpointRequest(ctx, req),
		"PopulateTokenEndpointResponse": h.PopulateTokenEndpointResponse(ctx, req, fosite.NewAccessResponse()),
	} {
		if err != fosite.ErrUnknownRequest { //nolint:errorlint // the bare sentinel, not a wrapped copy with a stack
			t.Errorf("%s without openid: %v (%T), want the bare fosite.ErrUnknownRequest", name, err, err)
		}
	}

	req.GrantScope("openid")
	req.GetSession().(openid.Session).IDTokenClaims().ExpiresAt = time.Now()
	if err := h.HandleTokenEndpointRequest(ctx, req); err != nil {
		t.Fatalf("HandleTokenEndpointRequest with openid: %v", err)
	}
	if !req.GetSession().(openid.Session).IDTokenClaims().ExpiresAt.IsZero() {
		t.Fatal("with openid the OpenID Connect refresh handler did not run (it resets the ID token's expiry)")
	}
}
