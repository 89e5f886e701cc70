package federation

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// Registry is the providers table. Every change writes its audit event in
// its own transaction. Create it with NewRegistry.
type Registry struct {
	pool    *pgxpool.Pool
	secrets *accounts.LinkSealer
	log     *zap.Logger
}

// NewRegistry returns the registry; secrets seals client secrets at rest
// (a sealer keyed from AUTHD_SECRETS_KEY for this purpose alone).
func NewRegistry(pool *pgxpool.Pool, secrets *accounts.LinkSealer, log *zap.Logger) *Registry {
	if log == nil {
		log = zap.NewNop()
	}
	return &Registry{pool: pool, secrets: secrets, log: log}
}

// secretAD binds a sealed secret to its provider row.
func secretAD(id string) string { return "upstream client secret\x00" + id }

const providerColumns = `id, slug, display_name, kind, issuer, auth_url, token_url, api_url, client_id, client_secret_sealed,
	scopes, email_claim, name_claim, roles_claim, allowed_roles, allow_signup, enabled, created_at, updated_at`

func (g *Registry) scan(row pgx.Row) (*Provider, error) {
	var p Provider
	var sealed string
	err := row.Scan(&p.ID, &p.Slug, &p.DisplayName, &p.Kind, &p.Issuer, &p.AuthURL, &p.TokenURL, &p.APIURL, &p.ClientID, &sealed,
		&p.Scopes, &p.EmailClaim, &p.NameClaim, &p.RolesClaim, &p.AllowedRoles, &p.AllowSignup, &p.Enabled, &p.CreatedAt, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("federation: read provider: %w", err)
	}
	if p.clientSecret, err = g.secrets.Open(sealed, secretAD(p.ID)); err != nil {
		return nil, fmt.Errorf("%w: provider %s", ErrSecretKey, p.Slug)
	}
	return &p, nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Get returns the provider with that id or slug; ErrNotFound.
func (g *Registry) Get(ctx context.Context, ref string) (*Provider, error) {
	if uuidRE.MatchString(ref) {
		return g.scan(g.pool.QueryRow(ctx, `SELECT `+providerColumns+` FROM upstream_providers WHERE id = $1`, ref))
	}
	if !slugRE.MatchString(ref) {
		return nil, ErrNotFound
	}
	return g.scan(g.pool.QueryRow(ctx, `SELECT `+providerColumns+` FROM upstream_providers WHERE slug = $1`, ref))
}

// List returns every provider (enabledOnly: those shown on the login page),
// by display name.
func (g *Registry) List(ctx context.Context, enabledOnly bool) ([]*Provider, error) {
	rows, err := g.pool.Query(ctx, `SELECT `+providerColumns+` FROM upstream_providers
		WHERE enabled OR NOT $1 ORDER BY display_name, slug`, enabledOnly)
	if err != nil {
		return nil, fmt.Errorf("federation: list providers: %w", err)
	}
	defer rows.Close()
	out := []*Provider{}
	for rows.Next() {
		p, err := g.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Create registers a provider; origin is the admin's audit facts. It
// returns *SpecError and ErrSlugTaken.
func (g *Registry) Create(ctx context.Context, origin audit.Event, spec Spec) (*Provider, error) {
	p, err := spec.provider()
	if err != nil {
		return nil, err
	}
	var out *Provider
	err = storage.InTx(ctx, g.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, `SELECT gen_random_uuid()::text`).Scan(&id); err != nil {
			return err
		}
		row := tx.QueryRow(ctx, `INSERT INTO upstream_providers (id, slug, display_name, kind, issuer, auth_url, token_url, api_url,
			client_id, client_secret_sealed, scopes, email_claim, name_claim, roles_claim, allowed_roles, allow_signup, enabled)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17) RETURNING `+providerColumns,
			id, p.Slug, p.DisplayName, p.Kind, p.Issuer, p.AuthURL, p.TokenURL, p.APIURL, p.ClientID, g.secrets.Seal(p.clientSecret, secretAD(id)),
			p.Scopes, p.EmailClaim, p.NameClaim, p.RolesClaim, p.AllowedRoles, p.AllowSignup, p.Enabled)
		var err error
		out, err = g.scan(row)
		if storage.IsUniqueViolation(err, "upstream_providers_slug_key") {
			return ErrSlugTaken
		}
		if err != nil {
			return err
		}
		return g.audit(ctx, tx, origin, "provider.created", out, nil)
	})
	return out, err
}

// Update is a change to a provider: nil fields stay as they are.
type Update struct {
	DisplayName  *string
	ClientID     *string
	ClientSecret *string
	Scopes       *[]string
	EmailClaim   *string
	NameClaim    *string
	RolesClaim   *string
	AllowedRoles *[]string
	AllowSignup  *bool
	Enabled      *bool
}

// Update changes the provider with id or slug ref. It returns ErrNotFound
// and *SpecError.
func (g *Registry) Update(ctx context.Context, origin audit.Event, ref string, u Update) (*Provider, error) {
	cur, err := g.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	var changed []string
	set := func(name string, ok bool, fn func()) {
		if ok {
			fn()
			changed = append(changed, name)
		}
	}
	p := *cur
	set("display_name", u.DisplayName != nil, func() { p.DisplayName = *u.DisplayName })
	set("client_id", u.ClientID != nil, func() { p.ClientID = *u.ClientID })
	set("client_secret", u.ClientSecret != nil, func() { p.clientSecret = *u.ClientSecret })
	set("scopes", u.Scopes != nil, func() { p.Scopes = *u.Scopes })
	set("email_claim", u.EmailClaim != nil, func() { p.EmailClaim = *u.EmailClaim })
	set("name_claim", u.NameClaim != nil, func() { p.NameClaim = *u.NameClaim })
	set("roles_claim", u.RolesClaim != nil, func() { p.RolesClaim = *u.RolesClaim })
	set("allowed_roles", u.AllowedRoles != nil, func() { p.AllowedRoles = *u.AllowedRoles })
	set("allow_signup", u.AllowSignup != nil, func() { p.AllowSignup = *u.AllowSignup })
	set("enabled", u.Enabled != nil, func() { p.Enabled = *u.Enabled })
	if p.Kind == KindOIDC && u.Scopes != nil && !slices.Contains(p.Scopes, "openid") {
		p.Scopes = append([]string{"openid"}, p.Scopes...)
	}
	if p.AllowedRoles == nil {
		p.AllowedRoles = []string{}
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	var out *Provider
	err = storage.InTx(ctx, g.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		out, err = g.scan(tx.QueryRow(ctx, `UPDATE upstream_providers SET display_name = $2, client_id = $3, client_secret_sealed = $4,
			scopes = $5, email_claim = $6, name_claim = $7, roles_claim = $8, allowed_roles = $9, allow_signup = $10, enabled = $11,
			updated_at = now() WHERE id = $1 RETURNING `+providerColumns,
			p.ID, p.DisplayName, p.ClientID, g.secrets.Seal(p.clientSecret, secretAD(p.ID)), p.Scopes, p.EmailClaim, p.NameClaim,
			p.RolesClaim, p.AllowedRoles, p.AllowSignup, p.Enabled))
		if err != nil {
			return err
		}
		return g.audit(ctx, tx, origin, "provider.updated", out, map[string]any{"changed": changed})
	})
	return out, err
}

// Delete removes a provider and every identity linked through it.
func (g *Registry) Delete(ctx context.Context, origin audit.Event, ref string) error {
	p, err := g.Get(ctx, ref)
	if err != nil {
		return err
	}
	return storage.InTx(ctx, g.pool, storage.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM upstream_providers WHERE id = $1`, p.ID)
		if err != nil {
			return fmt.Errorf("federation: delete provider %s: %w", p.Slug, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return g.audit(ctx, tx, origin, "provider.deleted", p, nil)
	})
}

func (g *Registry) audit(ctx context.Context, tx pgx.Tx, origin audit.Event, typ string, p *Provider, details map[string]any) error {
	e := origin
	e.Type, e.TargetType, e.TargetID = typ, "upstream_provider", p.ID
	if details == nil {
		details = map[string]any{}
	}
	details["slug"] = p.Slug
	e.Details = details
	return audit.Record(ctx, tx, g.log, e)
}
