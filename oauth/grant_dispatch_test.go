package oauth

import (
	"context"
	"errors"
	"testing"

	"github.com/ory/fosite"
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
