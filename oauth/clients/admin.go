package clients

import (
	"context"

	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage/fositestore"
)

// Admin is an administrator's changes to clients, used by the admin
// API and the admin console alike: each change writes its audit event in the
// change's own transaction, so the two commit or fail together. origin is
// the event's actor and request facts; the method adds what happened.
// Errors are the registry's.
type Admin struct {
	Registry *Registry
	Log      *zap.Logger
}

func (a Admin) record(ctx context.Context, origin audit.Event, typ, id string, details map[string]any) error {
	e := origin
	e.Type, e.TargetType, e.TargetID, e.Details = typ, "client", id, details
	return audit.Record(ctx, a.Registry.store.Querier(ctx), a.Log, e)
}

// Create registers spec; the secret (if the client uses one) is returned once.
func (a Admin) Create(ctx context.Context, origin audit.Event, spec Spec) (c *fositestore.Client, secret string, err error) {
	err = a.Registry.InTx(ctx, func(ctx context.Context) (err error) {
		if c, secret, err = a.Registry.CreateClient(ctx, spec); err != nil {
			return err
		}
		// The caps are recorded: what a charging service may take, and who allowed it.
		return a.record(ctx, origin, "client.created", c.ID, map[string]any{
			"name": c.Name, "grant_types": c.GrantTypes, "scopes": c.Scopes, "redirect_uris": c.RedirectURIs,
			"token_endpoint_auth_method": c.TokenEndpointAuthMethod,
			"charge_max_per_spend":       c.ChargeMaxPerSpend, "charge_max_per_user_day": c.ChargeMaxPerUserDay,
		})
	})
	return c, secret, err
}

// Update changes client id: apply edits the client's current spec and names
// the fields it set. A secret is returned when the client starts needing one.
func (a Admin) Update(ctx context.Context, origin audit.Event, id string, apply func(*Spec) []string) (c *fositestore.Client, secret string, err error) {
	old, err := a.Registry.GetClient(ctx, id)
	if err != nil {
		return nil, "", err
	}
	spec := specOf(old)
	changed := apply(&spec)
	err = a.Registry.InTx(ctx, func(ctx context.Context) (err error) {
		if c, secret, err = a.Registry.UpdateClient(ctx, id, spec); err != nil {
			return err
		}
		return a.record(ctx, origin, "client.updated", id, map[string]any{
			"changed": changed, "grant_types": c.GrantTypes, "scopes": c.Scopes, "redirect_uris": c.RedirectURIs,
			"secret_generated":     secret != "",
			"charge_max_per_spend": c.ChargeMaxPerSpend, "charge_max_per_user_day": c.ChargeMaxPerUserDay,
		})
	})
	return c, secret, err
}

// Delete removes client id and, by cascade, every token issued to it.
func (a Admin) Delete(ctx context.Context, origin audit.Event, id string) error {
	return a.Registry.InTx(ctx, func(ctx context.Context) error {
		if err := a.Registry.DeleteClient(ctx, id); err != nil {
			return err
		}
		return a.record(ctx, origin, "client.deleted", id, nil)
	})
}

// RotateSecret gives client id a new secret (returned once); the old one
// stops working.
func (a Admin) RotateSecret(ctx context.Context, origin audit.Event, id string) (secret string, err error) {
	err = a.Registry.InTx(ctx, func(ctx context.Context) (err error) {
		if secret, err = a.Registry.RotateSecret(ctx, id); err != nil {
			return err
		}
		return a.record(ctx, origin, "client.secret_rotated", id, nil)
	})
	return secret, err
}
