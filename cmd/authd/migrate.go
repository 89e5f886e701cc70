package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/authd/authd/storage"
)

func (c *cli) migrateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply or inspect database migrations"}
	with := func(fn func(m *storage.Migrator) error) error {
		cfg, err := cliConfig()
		if err != nil {
			return err
		}
		m, err := storage.NewMigrator(cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer m.Close()
		return fn(m)
	}
	version := func(m *storage.Migrator) error {
		v, dirty, err := m.Version()
		if err != nil {
			return err
		}
		return c.print(map[string]any{"version": v, "dirty": dirty, "latest": storage.LatestVersion()},
			fmt.Sprintf("version %d (latest %d)%s", v, storage.LatestVersion(), map[bool]string{true: " DIRTY", false: ""}[dirty]))
	}
	cmd.AddCommand(
		&cobra.Command{Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error {
				return with(func(m *storage.Migrator) error {
					if err := m.Up(); err != nil {
						return err
					}
					return version(m)
				})
			}},
		&cobra.Command{Use: "down N", Short: "Undo the last N migrations", Args: cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				n, err := strconv.Atoi(args[0])
				if err != nil || n <= 0 {
					return fmt.Errorf("migrate down: N must be a positive number, got %q", args[0])
				}
				return with(func(m *storage.Migrator) error {
					if err := m.Down(n); err != nil {
						return err
					}
					return version(m)
				})
			}},
		&cobra.Command{Use: "version", Short: "Print the applied migration version", Args: cobra.NoArgs,
			RunE: func(*cobra.Command, []string) error { return with(version) }},
	)
	return cmd
}
