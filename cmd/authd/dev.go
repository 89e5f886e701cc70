package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authd/authd/storage"
)

// devDir holds everything `authd dev` keeps between runs.
const devDir = ".authd"

// devExtras is what `authd dev` adds to a server: credentials it bootstraps
// and prints, and the built-in mail catcher.
type devExtras struct {
	creds *devCredentials
}

// devCredentials are generated on the first `authd dev` and kept in
// .authd/dev-credentials.json (0600) so later runs can print them again.
type devCredentials struct {
	AdminEmail       string `json:"admin_email"`
	AdminPassword    string `json:"admin_password"`
	DemoClientID     string `json:"demo_client_id"`
	DemoClientSecret string `json:"demo_client_secret"`
}

func (c *cli) devCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Run everything locally with embedded defaults (make run)",
		Long: "Run authd for development: without AUTHD_DATABASE_URL it starts a private PostgreSQL under ./.authd/pg, " +
			"migrates, creates a signing key, an admin user and a demo client, catches all mail at /dev/mail and serves a demo app at /demo.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			if !cfg.Dev() {
				return errors.New("AUTHD_ENV: `authd dev` runs only in development; use `authd serve`")
			}
			// Traversable (not readable) by others: as root, the private
			// PostgreSQL runs as an unprivileged user and must reach .authd/pg.
			if err := os.MkdirAll(devDir, 0o711); err != nil {
				return err
			}
			if err := os.Chmod(devDir, 0o711); err != nil {
				return err
			}
			if cfg.SecretsKey == "" {
				if cfg.SecretsKey, err = devSecretsKey(); err != nil {
					return err
				}
			}
			if cfg.DatabaseURL == "" {
				abs, _ := filepath.Abs(filepath.Join(devDir, "pg"))
				cluster := &storage.Cluster{Dir: abs, Durable: true}
				fmt.Fprintf(c.stderr, "starting private PostgreSQL in %s …\n", abs)
				if err := cluster.Start(ctx); err != nil {
					return err
				}
				defer func() {
					if err := cluster.Stop(context.WithoutCancel(ctx)); err != nil {
						fmt.Fprintln(c.stderr, "authd:", err)
					} else {
						fmt.Fprintln(c.stderr, "private PostgreSQL stopped")
					}
				}()
				cfg.DatabaseURL = cluster.URL("authd")
				// Lets `authd user …` and friends find this database while dev runs.
				_ = os.WriteFile(filepath.Join(devDir, "database_url"), []byte(cfg.DatabaseURL+"\n"), 0o600)
			}
			if err := storage.Migrate(cfg.DatabaseURL); err != nil {
				return err
			}
			return c.run(ctx, cfg, &devExtras{})
		},
	}
}

// devSecretsKey returns the dev secrets key, generating .authd/secrets.key once.
func devSecretsKey() (string, error) {
	p := filepath.Join(devDir, "secrets.key")
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	s := base64.StdEncoding.EncodeToString(k)
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	return s, nil
}

func loadDevCredentials() (*devCredentials, error) {
	b, err := os.ReadFile(filepath.Join(devDir, "dev-credentials.json"))
	if err != nil {
		return nil, err
	}
	var dc devCredentials
	return &dc, json.Unmarshal(b, &dc)
}

func saveDevCredentials(dc *devCredentials) error {
	b, _ := json.MarshalIndent(dc, "", "  ")
	return os.WriteFile(filepath.Join(devDir, "dev-credentials.json"), b, 0o600)
}
