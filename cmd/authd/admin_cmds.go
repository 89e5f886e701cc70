package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/internal/problem"
	"github.com/authd/authd/ledger"
	"github.com/authd/authd/oauth/clients"
	"github.com/authd/authd/oauth/keys"
	"github.com/authd/authd/storage/fositestore"
)

// clientJSON is the CLI's view of a client; the secret appears only on create.
type clientJSON struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	Name                    string   `json:"name"`
	RedirectURIs            []string `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string `json:"post_logout_redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
	Public                  bool     `json:"public"`
	FirstParty              bool     `json:"first_party"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	// The private_key_jwt settings: the enforced assertion alg and the keys.
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`
	IDTokenSignedResponseAlg    string          `json:"id_token_signed_response_alg,omitempty"`
	RequirePAR                  bool            `json:"require_pushed_authorization_requests"`
	RequireMFA                  bool            `json:"require_mfa"`
	BackchannelLogoutURI        string          `json:"backchannel_logout_uri,omitempty"`
	BackchannelSessionRequired  bool            `json:"backchannel_logout_session_required"`
	CreatedAt                   time.Time       `json:"created_at"`
}

func toClientJSON(c *fositestore.Client, secret string) clientJSON {
	return clientJSON{
		ClientID: c.ID, ClientSecret: secret, Name: c.Name, RedirectURIs: c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes, Scope: strings.Join(c.Scopes, " "),
		Public: c.Public, FirstParty: c.FirstParty, TokenEndpointAuthMethod: c.TokenEndpointAuthMethod,
		TokenEndpointAuthSigningAlg: c.TokenEndpointAuthSigningAlg, JWKS: c.JWKS, JWKSURI: c.JWKSURI,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg, CreatedAt: c.CreatedAt,
		RequirePAR: c.RequirePushedAuthorizationRequests, RequireMFA: c.RequireMFA,
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelSessionRequired: c.BackchannelLogoutSessionRequired,
	}
}

func withClients(ctx context.Context, fn func(cr *clients.Registry) error) error {
	return withPool(ctx, func(cfg *config.Config, pool *pgxpool.Pool) error {
		return fn(clients.NewRegistry(fositestore.New(pool, fositestore.Options{})).InDev(cfg.Dev()))
	})
}

func (c *cli) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients"}
	var spec clients.Spec
	var scope, jwksFile string
	create := &cobra.Command{
		Use:   "create --name N --redirect-uri U... --grant-type G... --scope \"a b\" [--public] [--first-party] [--token-auth-method M] [--jwks FILE | --jwks-uri U] [--token-auth-signing-alg A]",
		Short: "Register a client; prints its client_id and generated secret once",
		Long: `Register a client; prints its client_id and, for a client that authenticates
with a secret, the generated secret (shown only once).

A client authenticates at the token endpoint with exactly the method it is
registered with (--token-auth-method; client_secret_basic by default, none for
--public). Giving --jwks or --jwks-uri registers a private_key_jwt client: its
assertions must be signed with --token-auth-signing-alg, which by default
follows the keys (ES256 for P-256 keys, RS256 for RSA keys; RS256 with
--jwks-uri). Keys that cannot verify that algorithm are refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.Scopes = strings.Fields(scope)
			keys := jwksFile != "" || spec.JWKSURI != ""
			switch {
			case keys && spec.Public:
				return errors.New("--jwks and --jwks-uri are for confidential clients (private_key_jwt), not --public ones")
			case keys && spec.TokenEndpointAuthMethod != "" && spec.TokenEndpointAuthMethod != "private_key_jwt":
				return fmt.Errorf("--jwks and --jwks-uri are for private_key_jwt clients, not %s", spec.TokenEndpointAuthMethod)
			}
			if jwksFile != "" {
				b, err := os.ReadFile(jwksFile)
				if err != nil {
					return fmt.Errorf("--jwks: %w", err)
				}
				spec.JWKS = json.RawMessage(b)
			}
			return withClients(cmd.Context(), func(cr *clients.Registry) error {
				cl, secret, err := cr.CreateClient(cmd.Context(), spec)
				if err != nil {
					return fieldError(err)
				}
				text := "client_id:     " + cl.ID
				if secret != "" {
					text += "\nclient_secret: " + secret + "\n(the secret is shown only now; store it safely)"
				}
				return c.print(toClientJSON(cl, secret), text)
			})
		},
	}
	f := create.Flags()
	f.StringVar(&spec.ID, "id", "", "client id (default: generated)")
	f.StringVar(&spec.Name, "name", "", "display name shown on the consent page")
	f.StringArrayVar(&spec.RedirectURIs, "redirect-uri", nil, "redirect URI (repeatable; matched exactly)")
	f.StringArrayVar(&spec.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "post-logout redirect URI (repeatable)")
	f.StringArrayVar(&spec.GrantTypes, "grant-type", nil, "grant type (repeatable): authorization_code, refresh_token, client_credentials, password")
	f.StringVar(&scope, "scope", "", "space-separated scopes the client may request")
	f.StringArrayVar(&spec.Audience, "audience", nil, "audience the client may request (repeatable)")
	f.BoolVar(&spec.Public, "public", false, "public client (no secret; PKCE required)")
	f.BoolVar(&spec.FirstParty, "first-party", false, "first-party client: no consent screen, may use the password grant")
	f.StringVar(&spec.TokenEndpointAuthMethod, "token-auth-method", "", "client_secret_basic (default), client_secret_post, private_key_jwt or none")
	f.Int64Var(&spec.ChargeMaxPerSpend, "charge-max-per-spend", 0, "with scope credits:charge: the most credits one charge may take (0: no cap)")
	f.Int64Var(&spec.ChargeMaxPerUserDay, "charge-max-per-user-day", 0, "with scope credits:charge: the most credits charged to one user per UTC day (0: no cap)")
	f.BoolVar(&spec.RequirePushedAuthorizationRequests, "require-par", false, "the client must push every authorization request to /oauth2/par first (RFC 9126)")
	f.BoolVar(&spec.RequireMFA, "require-mfa", false, "the client's users must pass a second factor (and enrol one when they have none) before it gets a code")
	f.StringVar(&spec.BackchannelLogoutURI, "backchannel-logout-uri", "", "URL that receives logout tokens (OIDC Back-Channel Logout; https, http on loopback only in development)")
	f.BoolVar(&spec.BackchannelLogoutSessionRequired, "backchannel-logout-session-required", false, "every logout token must carry sid (needs --backchannel-logout-uri)")
	f.StringVar(&jwksFile, "jwks", "", "file with the client's public JWKS (private_key_jwt)")
	f.StringVar(&spec.JWKSURI, "jwks-uri", "", "URL where the client publishes its public JWKS (private_key_jwt; https, or http on loopback)")
	f.StringVar(&spec.TokenEndpointAuthSigningAlg, "token-auth-signing-alg", "", "alg of private_key_jwt assertions: RS256 or ES256 (default: from the keys)")
	f.StringVar(&spec.IDTokenSignedResponseAlg, "id-token-signed-response-alg", "", "alg of the client's ID tokens: RS256 (default) or ES256")

	list := &cobra.Command{Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClients(cmd.Context(), func(cr *clients.Registry) error {
				cls, err := cr.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				out := make([]clientJSON, 0, len(cls))
				text := textTable("CLIENT_ID\tNAME\tGRANTS\tSCOPE", func(tw io.Writer) {
					for _, cl := range cls {
						out = append(out, toClientJSON(cl, ""))
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", cl.ID, cl.Name, strings.Join(cl.GrantTypes, ","), strings.Join(cl.Scopes, " "))
					}
				})
				return c.print(out, text)
			})
		}}
	get := &cobra.Command{Use: "get ID", Short: "Show a client", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClients(cmd.Context(), func(cr *clients.Registry) error {
				cl, err := cr.GetClient(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				j := toClientJSON(cl, "")
				b, _ := json.MarshalIndent(j, "", "  ")
				return c.print(j, string(b))
			})
		}}
	del := &cobra.Command{Use: "delete ID", Short: "Delete a client and every token issued to it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClients(cmd.Context(), func(cr *clients.Registry) error {
				if err := cr.DeleteClient(cmd.Context(), args[0]); err != nil {
					return err
				}
				return c.print(map[string]any{"client_id": args[0], "deleted": true}, "deleted client "+args[0])
			})
		}}
	cmd.AddCommand(create, list, get, del)
	return cmd
}

// fieldError names the invalid field of a registration error, as the
// admin API's problem document does.
func fieldError(err error) error {
	var pe *problem.Error
	if errors.As(err, &pe) && pe.Field != "" {
		return fmt.Errorf("%s: %s", pe.Field, pe.Detail)
	}
	return err
}

func withKeys(ctx context.Context, fn func(m *keys.Manager) error) error {
	return withPool(ctx, func(cfg *config.Config, pool *pgxpool.Pool) error {
		if cfg.SecretsKey == "" && cfg.Dev() {
			k, err := devSecretsKey()
			if err != nil {
				return err
			}
			cfg.SecretsKey = k
		}
		if cfg.SecretsKey == "" {
			return errors.New("AUTHD_SECRETS_KEY: required to manage signing keys")
		}
		m, err := keys.NewManager(pool, cfg.Key(), keys.Config{
			RotationPeriod: cfg.KeyRotationPeriod, Prepublish: cfg.KeyPrepublish,
			RetainAfter: max(cfg.AccessTokenTTL, cfg.IDTokenTTL) + 5*time.Minute,
		}, zap.NewNop())
		if err != nil {
			return err
		}
		return fn(m)
	})
}

func (c *cli) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage signing keys"}
	printKeys := func(ctx context.Context, m *keys.Manager) error {
		ks, err := m.List(ctx)
		if err != nil {
			return err
		}
		text := textTable("KID\tALG\tSTATE\tACTIVATES\tRETIRES", func(tw io.Writer) {
			for _, k := range ks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.State, k.ActivatesAt.Format(time.RFC3339), k.RetiresAt.Format(time.RFC3339))
			}
		})
		return c.print(ks, text)
	}
	cmd.AddCommand(
		&cobra.Command{Use: "list", Short: "List signing keys and their schedule", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withKeys(cmd.Context(), func(m *keys.Manager) error { return printKeys(cmd.Context(), m) })
			}},
		&cobra.Command{Use: "rotate", Short: "Activate the pre-published next key now and publish a new next key", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withKeys(cmd.Context(), func(m *keys.Manager) error {
					if err := m.Rotate(cmd.Context()); err != nil {
						return err
					}
					return printKeys(cmd.Context(), m)
				})
			}},
	)
	return cmd
}

func (c *cli) ledgerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ledger", Short: "Credit ledger tools"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Recompute every balance and hash chain; exit non-zero on any broken invariant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withPool(cmd.Context(), func(_ *config.Config, pool *pgxpool.Pool) error {
				rep, err := ledger.Verify(cmd.Context(), pool)
				if err != nil {
					return err
				}
				if err := c.print(rep, rep.String()); err != nil {
					return err
				}
				if !rep.OK() {
					return errLedgerBroken
				}
				return nil
			})
		},
	})
	return cmd
}

var errLedgerBroken = errors.New("ledger verify: invariants broken (see report)")
