package main

import (
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/authd/authd/accounts"
)

// roleCmd manages roles, the CLI twin of /admin/v1/roles. Roles must exist
// before `user create --role` or `user role add` can hand them out.
func (c *cli) roleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Manage roles"}
	var description string
	create := &cobra.Command{Use: "create NAME [--description D]", Short: "Create a role", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				r, err := svc.CreateRole(cmd.Context(), cliOrigin(), args[0], description)
				if err != nil {
					return fmt.Errorf("role %q: %w", args[0], err)
				}
				return c.print(r, "created role "+r.Name)
			})
		}}
	create.Flags().StringVar(&description, "description", "", "what holders of the role may do")
	list := &cobra.Command{Use: "list", Short: "List roles and how many users hold each", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				roles, err := svc.ListRoles(cmd.Context())
				if err != nil {
					return err
				}
				text := textTable("NAME\tUSERS\tBUILTIN\tDESCRIPTION", func(tw io.Writer) {
					for _, r := range roles {
						fmt.Fprintf(tw, "%s\t%d\t%t\t%s\n", r.Name, r.Users, r.Builtin, r.Description)
					}
				})
				return c.print(map[string]any{"items": roles}, text)
			})
		}}
	del := &cobra.Command{Use: "delete NAME", Short: "Delete a role nobody holds (built-in roles stay)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAccounts(cmd.Context(), func(svc *accounts.Service, _ *pgxpool.Pool) error {
				if err := svc.DeleteRole(cmd.Context(), cliOrigin(), args[0]); err != nil {
					return fmt.Errorf("role %q: %w", args[0], err)
				}
				return c.print(map[string]any{"name": args[0], "deleted": true}, "deleted role "+args[0])
			})
		}}
	cmd.AddCommand(create, list, del)
	return cmd
}
