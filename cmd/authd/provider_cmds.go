package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/authd/authd/federation"
	"github.com/authd/authd/internal/config"
)

// withProviders runs fn with the upstream provider registry over the CLI's
// database.
func withProviders(ctx context.Context, fn func(reg *federation.Registry, cfg *config.Config) error) error {
	return withPool(ctx, func(cfg *config.Config, pool *pgxpool.Pool) error {
		reg, err := upstreamRegistry(cfg.Key(), pool, zap.NewNop())
		if err != nil {
			return err
		}
		return fn(reg, cfg)
	})
}

// providerView is a provider as the CLI prints it: the admin API's view,
// with the redirect URI to register at the provider.
type providerView struct {
	*federation.Provider
	CallbackURL string `json:"callback_url"`
}

func viewProvider(p *federation.Provider, cfg *config.Config) providerView {
	return providerView{Provider: p, CallbackURL: strings.TrimRight(cfg.Issuer, "/") + federation.CallbackPath(p.Slug)}
}

func readSecret(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read the client secret from stdin: %w", err)
	}
	s := strings.TrimRight(line, "\r\n")
	if s == "" {
		return "", errors.New("the client secret read from stdin is empty")
	}
	return s, nil
}

// providerCmd manages upstream identity providers, the CLI twin of
// /admin/v1/identity-providers.
func (c *cli) providerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "provider", Short: "Manage upstream identity providers (log in with Google, Microsoft, GitHub, any OpenID Connect provider)"}
	var spec federation.Spec
	var scope string
	create := &cobra.Command{
		Use:   "create [--preset oidc|google|microsoft|github] [--slug S] [--name N] [--issuer U] [--tenant T] --client-id ID --client-secret-stdin [--scope \"a b\"] [--allow-signup] ...",
		Short: "Register an upstream identity provider; the client secret is read from stdin",
		Long: `Register an upstream identity provider. The client secret is read from the
first line of stdin (never from the command line, where process lists show it)
and stored encrypted with AUTHD_SECRETS_KEY.

Presets: oidc (default; needs --issuer, discovery at ISSUER/.well-known/openid-configuration),
google, microsoft (needs --tenant: your directory id or domain), github (OAuth 2.0
and GitHub's user API). Register the printed callback_url as the redirect URI
at the provider.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := readSecret(cmd.InOrStdin())
			if err != nil {
				return err
			}
			spec.ClientSecret = secret
			if scope != "" {
				spec.Scopes = strings.Fields(scope)
			}
			return withProviders(cmd.Context(), func(reg *federation.Registry, cfg *config.Config) error {
				p, err := reg.Create(cmd.Context(), cliOrigin(), spec)
				if err != nil {
					return err
				}
				v := viewProvider(p, cfg)
				return c.print(v, fmt.Sprintf("created provider %s (%s)\nredirect URI to register at the provider: %s", p.Slug, p.DisplayName, v.CallbackURL))
			})
		},
	}
	f := create.Flags()
	f.StringVar(&spec.Preset, "preset", "oidc", "oidc, google, microsoft or github")
	f.StringVar(&spec.Slug, "slug", "", "name in URLs (default: the preset's name)")
	f.StringVar(&spec.DisplayName, "name", "", "label of the login button (default: the preset's name)")
	f.StringVar(&spec.Issuer, "issuer", "", "OpenID Connect issuer URL")
	f.StringVar(&spec.Tenant, "tenant", "", "Microsoft: directory (tenant) id or domain")
	f.StringVar(&spec.AuthURL, "auth-url", "", "GitHub Enterprise: authorization endpoint")
	f.StringVar(&spec.TokenURL, "token-url", "", "GitHub Enterprise: token endpoint")
	f.StringVar(&spec.APIURL, "api-url", "", "GitHub Enterprise: API base URL")
	f.StringVar(&spec.ClientID, "client-id", "", "client id registered at the provider")
	f.Bool("client-secret-stdin", true, "read the client secret from the first line of stdin (always)")
	f.StringVar(&scope, "scope", "", "space-separated upstream scopes (default: the preset's)")
	f.StringVar(&spec.EmailClaim, "email-claim", "", "claim holding the email (default email)")
	f.StringVar(&spec.NameClaim, "name-claim", "", "claim holding the display name (default name)")
	f.StringVar(&spec.RolesClaim, "roles-claim", "", "claim holding upstream roles")
	f.StringArrayVar(&spec.AllowedRoles, "allowed-role", nil, "an upstream role granted at account creation (repeatable; never admin)")
	f.BoolVar(&spec.AllowSignup, "allow-signup", false, "let a first login create an account")
	f.BoolVar(&spec.Disabled, "disabled", false, "register without showing it on the login page")

	list := &cobra.Command{Use: "list", Short: "List upstream identity providers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withProviders(cmd.Context(), func(reg *federation.Registry, cfg *config.Config) error {
				ps, err := reg.List(cmd.Context(), false)
				if err != nil {
					return err
				}
				items := make([]providerView, len(ps))
				text := textTable("SLUG\tNAME\tKIND\tENABLED\tSIGNUP\tCALLBACK", func(tw io.Writer) {
					for i, p := range ps {
						items[i] = viewProvider(p, cfg)
						fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%s\n", p.Slug, p.DisplayName, p.Kind, p.Enabled, p.AllowSignup, items[i].CallbackURL)
					}
				})
				return c.print(map[string]any{"items": items}, text)
			})
		}}
	get := &cobra.Command{Use: "get SLUG_OR_ID", Short: "Show an upstream identity provider", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withProviders(cmd.Context(), func(reg *federation.Registry, cfg *config.Config) error {
				p, err := reg.Get(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("provider %q: %w", args[0], err)
				}
				v := viewProvider(p, cfg)
				return c.print(v, fmt.Sprintf("%s (%s, %s) enabled=%t signup=%t\ncallback: %s", p.Slug, p.DisplayName, p.Kind, p.Enabled, p.AllowSignup, v.CallbackURL))
			})
		}}
	var enable, disable, newSecret bool
	var signup string
	update := &cobra.Command{Use: "update SLUG_OR_ID [--enable|--disable] [--allow-signup true|false] [--client-secret-stdin]",
		Short: "Change an upstream identity provider", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u federation.Update
			if enable && disable {
				return errors.New("give at most one of --enable and --disable")
			}
			if enable || disable {
				u.Enabled = &enable
			}
			switch signup {
			case "":
			case "true", "false":
				v := signup == "true"
				u.AllowSignup = &v
			default:
				return errors.New("--allow-signup must be true or false")
			}
			if newSecret {
				s, err := readSecret(cmd.InOrStdin())
				if err != nil {
					return err
				}
				u.ClientSecret = &s
			}
			return withProviders(cmd.Context(), func(reg *federation.Registry, cfg *config.Config) error {
				p, err := reg.Update(cmd.Context(), cliOrigin(), args[0], u)
				if err != nil {
					return fmt.Errorf("provider %q: %w", args[0], err)
				}
				return c.print(viewProvider(p, cfg), fmt.Sprintf("updated provider %s: enabled=%t signup=%t", p.Slug, p.Enabled, p.AllowSignup))
			})
		}}
	update.Flags().BoolVar(&enable, "enable", false, "show it on the login page")
	update.Flags().BoolVar(&disable, "disable", false, "hide it and refuse its logins")
	update.Flags().StringVar(&signup, "allow-signup", "", "true or false: whether a first login creates an account")
	update.Flags().BoolVar(&newSecret, "client-secret-stdin", false, "read a new client secret from the first line of stdin")
	del := &cobra.Command{Use: "delete SLUG_OR_ID", Short: "Delete an upstream identity provider and every identity linked through it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withProviders(cmd.Context(), func(reg *federation.Registry, _ *config.Config) error {
				if err := reg.Delete(cmd.Context(), cliOrigin(), args[0]); err != nil {
					return fmt.Errorf("provider %q: %w", args[0], err)
				}
				return c.print(map[string]any{"slug": args[0], "deleted": true}, "deleted provider "+args[0])
			})
		}}
	cmd.AddCommand(create, list, get, update, del)
	return cmd
}
