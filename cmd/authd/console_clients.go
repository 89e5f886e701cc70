package main

import (
	"context"
	"slices"

	"github.com/authd/authd/internal/audit"
	loginui "github.com/authd/authd/login-ui"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/storage/fositestore"
)

// consoleClients adapts clients.Admin (the admin API's audited client
// changes) to the console's ConsoleClients, whose errors are problems:
// login-ui cannot import oauth.
type consoleClients struct{ admin clients.Admin }

var _ loginui.ConsoleClients = consoleClients{}

func (c consoleClients) List(ctx context.Context) ([]*fositestore.Client, error) {
	return c.admin.Registry.ListClients(ctx)
}

func (c consoleClients) Get(ctx context.Context, id string) (*fositestore.Client, error) {
	cl, err := c.admin.Registry.GetClient(ctx, id)
	return cl, clients.Problem(err)
}

func (c consoleClients) Create(ctx context.Context, origin audit.Event, f loginui.ClientForm) (*fositestore.Client, string, error) {
	var spec clients.Spec
	applyForm(&spec, f)
	cl, secret, err := c.admin.Create(ctx, origin, spec)
	return cl, secret, clients.Problem(err)
}

func (c consoleClients) Update(ctx context.Context, origin audit.Event, id string, f loginui.ClientForm) (*fositestore.Client, string, error) {
	cl, secret, err := c.admin.Update(ctx, origin, id, func(spec *clients.Spec) []string { return applyForm(spec, f) })
	return cl, secret, clients.Problem(err)
}

func (c consoleClients) Delete(ctx context.Context, origin audit.Event, id string) error {
	return clients.Problem(c.admin.Delete(ctx, origin, id))
}

func (c consoleClients) RotateSecret(ctx context.Context, origin audit.Event, id string) (string, error) {
	secret, err := c.admin.RotateSecret(ctx, origin, id)
	return secret, clients.Problem(err)
}

func (c consoleClients) KnownScopes() []string { return oauth.Scopes }

// applyForm sets the console's fields on spec, keeping the others (keys,
// algorithms, charge caps, audience), and names the fields that changed.
func applyForm(spec *clients.Spec, f loginui.ClientForm) []string {
	var changed []string
	str := func(name string, dst *string, v string) {
		if *dst != v {
			*dst = v
			changed = append(changed, name)
		}
	}
	list := func(name string, dst *[]string, v []string) {
		if !slices.Equal(*dst, v) {
			*dst = v
			changed = append(changed, name)
		}
	}
	flag := func(name string, dst *bool, v bool) {
		if *dst != v {
			*dst = v
			changed = append(changed, name)
		}
	}
	str("name", &spec.Name, f.Name)
	list("redirect_uris", &spec.RedirectURIs, f.RedirectURIs)
	list("post_logout_redirect_uris", &spec.PostLogoutRedirectURIs, f.PostLogoutRedirectURIs)
	if !slices.Equal(spec.GrantTypes, f.GrantTypes) {
		spec.ResponseTypes = nil // re-derived from the grants
	}
	list("grant_types", &spec.GrantTypes, f.GrantTypes)
	list("scopes", &spec.Scopes, f.Scopes)
	flag("public", &spec.Public, f.Public)
	flag("first_party", &spec.FirstParty, f.FirstParty)
	str("token_endpoint_auth_method", &spec.TokenEndpointAuthMethod, f.TokenEndpointAuthMethod)
	flag("require_mfa", &spec.RequireMFA, f.RequireMFA)
	flag("require_pushed_authorization_requests", &spec.RequirePushedAuthorizationRequests, f.RequirePAR)
	str("backchannel_logout_uri", &spec.BackchannelLogoutURI, f.BackchannelLogoutURI)
	flag("backchannel_logout_session_required", &spec.BackchannelLogoutSessionRequired, f.BackchannelLogoutSessionRequired)
	return changed
}
