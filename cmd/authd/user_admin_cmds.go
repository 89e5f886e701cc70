package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/internal/config"
)

// cliOrigin is the actor the audit log records for changes made with the
// CLI: someone with direct access to the database, not a signed-in admin.
func cliOrigin() audit.Event {
	return audit.Event{ActorType: audit.ActorSystem, ActorID: "authd-cli"}
}

// withAccounts runs fn with the accounts service over the CLI's database.
func withAccounts(ctx context.Context, fn func(svc *accounts.Service, pool *pgxpool.Pool) error) error {
	return withPool(ctx, func(cfg *config.Config, pool *pgxpool.Pool) error {
		svc, err := newAccounts(cfg, pool, zap.NewNop())
		if err != nil {
			return err
		}
		return fn(svc, pool)
	})
}

// findUser resolves an email address or a user id.
func findUser(ctx context.Context, svc *accounts.Service, ref string) (*accounts.User, error) {
	u, err := svc.UserByEmailOrID(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", ref, err)
	}
	return u, nil
}

// userAdminCmds are the everyday user administration commands, the CLI
// twins of /admin/v1/users.
func (c *cli) userAdminCmds() []*cobra.Command {
	var f accounts.UserFilter
	var disabled, enabled bool
	list := &cobra.Command{Use: "list [--query Q] [--role R] [--disabled|--enabled] [--limit N] [--cursor C]",
		Short: "List users, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case disabled && enabled:
				return fmt.Errorf("give at most one of --disabled and --enabled")
			case disabled || enabled:
				f.Disabled = &disabled
			}
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				page, err := svc.ListUsers(cmd.Context(), f)
				if err != nil {
					return err
				}
				text := textTable("ID\tEMAIL\tROLES\tSTATE\tCREATED", func(tw io.Writer) {
					for _, u := range page.Items {
						state := "enabled"
						if u.Disabled {
							state = "disabled"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, strings.Join(u.Roles, ","), state, u.CreatedAt.UTC().Format(time.RFC3339))
					}
				})
				if page.NextCursor != nil {
					text += fmt.Sprintf("\nmore: --cursor %s", *page.NextCursor)
				}
				return c.print(page, text)
			})
		}}
	lf := list.Flags()
	lf.StringVar(&f.Query, "query", "", "substring of the email or name")
	lf.StringVar(&f.Role, "role", "", "only users holding this role")
	lf.BoolVar(&disabled, "disabled", false, "only disabled users")
	lf.BoolVar(&enabled, "enabled", false, "only enabled users")
	lf.IntVar(&f.Limit, "limit", 0, fmt.Sprintf("page size (default %d, at most %d)", accounts.DefaultPageSize, accounts.MaxPageSize))
	lf.StringVar(&f.Cursor, "cursor", "", "continue a previous listing")

	get := &cobra.Command{Use: "get EMAIL_OR_ID", Short: "Show a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				u, err := findUser(cmd.Context(), svc, args[0])
				if err != nil {
					return err
				}
				b, _ := json.MarshalIndent(u, "", "  ")
				return c.print(u, string(b))
			})
		}}

	var keepSessions bool
	setDisabled := func(disable bool) func(cmd *cobra.Command, args []string) error {
		return func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				u, err := findUser(cmd.Context(), svc, args[0])
				if err != nil {
					return err
				}
				u, err = svc.SetDisabled(cmd.Context(), cliOrigin(), u.ID, disable, disable && !keepSessions)
				if err != nil {
					return err
				}
				verb := "enabled"
				if disable {
					verb = "disabled"
				}
				return c.print(u, fmt.Sprintf("%s user %s (%s)", verb, u.Email, u.ID))
			})
		}
	}
	disable := &cobra.Command{Use: "disable EMAIL_OR_ID [--keep-sessions]",
		Short: "Disable a user: no login, no token use; ends their sessions and revokes their tokens",
		Args:  cobra.ExactArgs(1), RunE: setDisabled(true)}
	disable.Flags().BoolVar(&keepSessions, "keep-sessions", false,
		"keep sessions and tokens (unusable while disabled, usable again after enable)")
	enable := &cobra.Command{Use: "enable EMAIL_OR_ID", Short: "Enable a disabled user", Args: cobra.ExactArgs(1),
		RunE: setDisabled(false)}

	del := &cobra.Command{Use: "delete EMAIL_OR_ID",
		Short: "Delete a user (anonymised instead when they have credit history)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				u, err := findUser(cmd.Context(), svc, args[0])
				if err != nil {
					return err
				}
				res, err := svc.DeleteUser(cmd.Context(), cliOrigin(), u.ID)
				if err != nil {
					return err
				}
				return c.print(res, fmt.Sprintf("user %s %s", res.ID, res.Outcome))
			})
		}}
	mfa := &cobra.Command{Use: "mfa", Short: "Second factors of users"}
	mfa.AddCommand(&cobra.Command{Use: "reset EMAIL_OR_ID",
		Short: "Remove every second factor of a user (lost phone); ends their sessions, revokes their tokens, mails them",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				u, err := findUser(cmd.Context(), svc, args[0])
				if err != nil {
					return err
				}
				if err := svc.ResetFactors(cmd.Context(), cliOrigin(), u.ID); err != nil {
					return err
				}
				return c.print(map[string]any{"id": u.ID, "factors": []string{}}, fmt.Sprintf("second factors of %s removed", u.Email))
			})
		}})
	return []*cobra.Command{list, get, disable, enable, del, mfa}
}
