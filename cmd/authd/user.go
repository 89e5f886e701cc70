package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/config"
	"github.com/authd/authd/oauth"
	"github.com/authd/authd/storage"
	"github.com/authd/authd/storage/fositestore"
)

// withPool loads the configuration and opens the database for a CLI command
// (see cliConfig for where the database is found).
func withPool(ctx context.Context, fn func(cfg *config.Config, pool *pgxpool.Pool) error) error {
	cfg, err := cliConfig()
	if err != nil {
		return err
	}
	pool, err := storage.Open(ctx, cfg.DatabaseURL, storage.PoolConfig{MaxConns: 4})
	if err != nil {
		return err
	}
	defer pool.Close()
	return fn(cfg, pool)
}

// cliConfig is the configuration of every command that uses the database
// (migrate included): AUTHD_DATABASE_URL, or in development the database a
// running `authd dev` left its URL for in .authd/database_url, so the CLI
// works beside it without configuration.
func cliConfig() (*config.Config, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" && cfg.Dev() {
		if b, err := os.ReadFile(filepath.Join(devDir, "database_url")); err == nil {
			cfg.DatabaseURL = strings.TrimSpace(string(b))
		}
	}
	if cfg.DatabaseURL == "" {
		return nil, errors.New("AUTHD_DATABASE_URL: required (or run `make run` first in development)")
	}
	return cfg, nil
}

// newAccounts is the accounts service for CLI commands. Its Revoker lets
// disable and delete revoke the user's tokens as the admin API does.
func newAccounts(cfg *config.Config, pool *pgxpool.Pool, log *zap.Logger) (*accounts.Service, error) {
	h, err := accounts.NewPasswordHasher(cfg.PasswordHash, cfg.BcryptCost, 0)
	if err != nil {
		return nil, err
	}
	accts := accounts.New(pool, h, log, accounts.Config{DefaultRole: cfg.DefaultRole, BaseURL: cfg.Issuer,
		Revoker: fositestore.New(pool, fositestore.Options{}), Logouts: oauth.BackchannelAudience{}, MFARequiredRoles: cfg.MFARequiredRoles})
	// The same second-factor methods as the server, so the factor reset
	// removes passkeys too.
	if _, err := passkeyFactor(cfg, accts); err != nil {
		return nil, err
	}
	return accts, nil
}

func (c *cli) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users"}
	var email, password, name string
	var stdin, verified bool
	var roles []string
	create := &cobra.Command{
		Use:   "create --email E (--password-stdin | --password P) [--role R]... [--verified]",
		Short: "Create a user",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" {
				return errors.New("--email is required")
			}
			if stdin == (password != "") {
				return errors.New("give exactly one of --password-stdin or --password")
			}
			if stdin {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read password from stdin: %w", err)
				}
				password = strings.TrimRight(line, "\r\n")
			}
			return withPool(cmd.Context(), func(cfg *config.Config, pool *pgxpool.Pool) error {
				svc, err := newAccounts(cfg, pool, zap.NewNop())
				if err != nil {
					return err
				}
				// The rules of the registration page, so the CLI is no way around them.
				if err := svc.Policy().Check("password", password); err != nil {
					return cliPolicyError(err)
				}
				if name, err = accounts.CheckName("name", name); err != nil {
					return cliPolicyError(err)
				}
				u, err := svc.CreateUser(cmd.Context(), accounts.NewUser{Email: email, Password: password, Name: name, Roles: roles, Verified: verified}, nil)
				if err != nil {
					return err
				}
				return c.print(u, fmt.Sprintf("created user %s (%s) with roles %s", u.Email, u.ID, strings.Join(u.Roles, ", ")))
			})
		},
	}
	create.Flags().StringVar(&email, "email", "", "email address")
	create.Flags().StringVar(&password, "password", "", "password (visible in process lists; prefer --password-stdin)")
	create.Flags().BoolVar(&stdin, "password-stdin", false, "read the password from the first line of stdin")
	create.Flags().StringVar(&name, "name", "", "display name")
	create.Flags().StringArrayVar(&roles, "role", nil, "extra role (repeatable)")
	create.Flags().BoolVar(&verified, "verified", false, "mark the email as verified")

	role := &cobra.Command{Use: "role", Short: "Add or remove a user's role"}
	roleOp := func(add bool) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			return withPool(cmd.Context(), func(cfg *config.Config, pool *pgxpool.Pool) error {
				svc, err := newAccounts(cfg, pool, zap.NewNop())
				if err != nil {
					return err
				}
				u, err := svc.UserByEmailOrID(cmd.Context(), args[0])
				if err != nil {
					return fmt.Errorf("user %q: %w", args[0], err)
				}
				if add {
					err = svc.AddRole(cmd.Context(), u.ID, args[1])
				} else {
					err = removeRole(cmd.Context(), svc, pool, u.ID, args[1])
				}
				if err != nil {
					return err
				}
				roles, err := svc.Roles(cmd.Context(), u.ID)
				if err != nil {
					return err
				}
				return c.print(map[string]any{"id": u.ID, "email": u.Email, "roles": roles},
					fmt.Sprintf("%s now has roles %s", u.Email, strings.Join(roles, ", ")))
			})
		}
	}
	role.AddCommand(
		&cobra.Command{Use: "add EMAIL_OR_ID ROLE", Short: "Give a user a role", Args: cobra.ExactArgs(2), RunE: roleOp(true)},
		&cobra.Command{Use: "remove EMAIL_OR_ID ROLE", Short: "Take a role from a user (revokes their sessions and refresh tokens)", Args: cobra.ExactArgs(2), RunE: roleOp(false)},
	)
	cmd.AddCommand(create, role)
	cmd.AddCommand(c.userAdminCmds()...)
	return cmd
}

// cliPolicyError names the flag a refused value came from.
func cliPolicyError(err error) error {
	var pe *accounts.PolicyError
	if errors.As(err, &pe) {
		return fmt.Errorf("--%s: %s", pe.Field, pe.Reason)
	}
	return err
}

// removeRole takes the role away and, as DESIGN.md requires, revokes the
// user's refresh tokens and browser sessions at once, so the change cannot
// outlive a token minted with the old roles.
func removeRole(ctx context.Context, svc *accounts.Service, pool *pgxpool.Pool, userID, role string) error {
	had, err := svc.RemoveRole(ctx, pool, userID, role)
	if err != nil || !had {
		return err
	}
	if err := fositestore.New(pool, fositestore.Options{}).RevokeSubject(ctx, userID); err != nil {
		return err
	}
	return svc.RevokeUserSessions(ctx, pool, userID, "")
}
