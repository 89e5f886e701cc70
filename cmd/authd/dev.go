package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gorilla/mux"
	"github.com/spf13/cobra"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/internal/mailcatcher"
	"github.com/authd/authd/oauth/clients"

	"github.com/authd/authd/storage"
)

// devDir holds everything `authd dev` keeps between runs.
const devDir = ".authd"

// devExtras is what `authd dev` adds to a server: credentials it bootstraps
// and prints, and the built-in mail catcher.
type devExtras struct {
	catcher *mailcatcher.Catcher
	out     io.Writer
}

// devCredentials are generated on the first `authd dev` and kept in
// .authd/dev-credentials.json (0600) so later runs can print them again.
type devCredentials struct {
	AdminEmail       string `json:"admin_email"`
	AdminPassword    string `json:"admin_password"`
	DemoClientID     string `json:"demo_client_id"`
	DemoClientSecret string `json:"demo_client_secret"`
}

// devListenAddr is where `authd dev` listens unless AUTHD_LISTEN says
// otherwise: loopback only, since /dev/mail shows live reset links and the
// banner's admin password works.
const devListenAddr = "127.0.0.1:8080"

// devListen is the dev server's listen address: AUTHD_LISTEN when it was
// set (in the environment or .env, which config.Load copies into it), else
// devListenAddr instead of serve's all-interfaces default.
func devListen(configured string, lookup func(string) (string, bool)) string {
	if _, set := lookup("AUTHD_LISTEN"); set {
		return configured
	}
	return devListenAddr
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
			cfg.Listen = devListen(cfg.Listen, os.LookupEnv)
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
			catcher, err := mailcatcher.New(mailcatcher.Config{})
			if err != nil {
				return err
			}
			defer catcher.Close()
			return c.run(ctx, cfg, &devExtras{catcher: catcher, out: c.stderr})
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

// mountDev adds the development extras: /dev/mail, the bootstrap admin and
// demo client (printed), and the /demo relying party.
func mountDev(ctx context.Context, r *mux.Router, rt *runtime, a *app) error {
	d := rt.dev
	if d.catcher != nil {
		r.PathPrefix("/dev/mail").Handler(d.catcher).Methods(http.MethodGet)
	}
	creds, err := loadDevCredentials()
	if err != nil {
		creds = &devCredentials{AdminEmail: "admin@localhost"}
	}
	adminPassword := "" // what the banner shows: only a password that works
	unchecked := false  // the kept password could not be checked this time
	if _, err := a.accounts.UserByEmail(ctx, creds.AdminEmail); errors.Is(err, accounts.ErrNotFound) {
		creds.AdminPassword = rand.Text()[:16]
		if _, err := a.accounts.CreateUser(ctx, accounts.NewUser{Email: creds.AdminEmail, Password: creds.AdminPassword,
			Name: "Admin", Roles: []string{"admin"}, Verified: true}, nil); err != nil {
			return fmt.Errorf("dev: create admin user: %w", err)
		}
		adminPassword = creds.AdminPassword
	} else if err != nil {
		return err
	} else if creds.AdminPassword != "" {
		_, err := a.accounts.Authenticate(ctx, creds.AdminEmail, creds.AdminPassword)
		switch {
		case err == nil:
			adminPassword = creds.AdminPassword
		case errors.Is(err, accounts.ErrInvalidCredentials):
			creds.AdminPassword = "" // changed since: forget it rather than keep a dead one
		default:
			// Not checked (the login is paused after failed attempts, or the
			// account is disabled): keep it, but do not show what may not work.
			unchecked = true
		}
	}
	reg := a.provider.Clients()
	demoSpec := clients.Spec{
		Name:                   "authd demo app",
		RedirectURIs:           []string{rt.cfg.Issuer + "/demo/callback"},
		PostLogoutRedirectURIs: []string{rt.cfg.Issuer + "/demo"},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		Scopes:                 []string{"openid", "profile", "email", "roles", "offline_access", "credits:read", "credits:spend"},
		BackchannelLogoutURI:   rt.cfg.Issuer + "/demo/backchannel-logout",
	}
	if creds.DemoClientID == "" || func() bool { _, err := reg.GetClient(ctx, creds.DemoClientID); return err != nil }() {
		c, secret, err := reg.CreateClient(ctx, demoSpec)
		if err != nil {
			return fmt.Errorf("dev: create demo client: %w", err)
		}
		creds.DemoClientID, creds.DemoClientSecret = c.ID, secret
	} else if c, _ := reg.GetClient(ctx, creds.DemoClientID); c != nil && c.BackchannelLogoutURI != demoSpec.BackchannelLogoutURI {
		// A demo client from before back-channel logout, or another issuer.
		if _, _, err := reg.UpdateClient(ctx, c.ID, demoSpec); err != nil {
			return fmt.Errorf("dev: update demo client: %w", err)
		}
	}
	if err := saveDevCredentials(creds); err != nil {
		return err
	}
	if err := mountDemo(r, rt, creds); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\n  authd dev is up at %s\n\n", rt.cfg.Issuer)
	fmt.Fprintf(d.out, "  demo app      %s/demo\n", rt.cfg.Issuer)
	fmt.Fprintf(d.out, "  admin console %s/admin (log in as the admin below)\n", rt.cfg.Issuer)
	fmt.Fprintf(d.out, "  caught mail   %s/dev/mail\n", rt.cfg.Issuer)
	switch {
	case adminPassword != "":
		fmt.Fprintf(d.out, "  admin         %s / %s\n", creds.AdminEmail, adminPassword)
	case unchecked:
		fmt.Fprintf(d.out, "  admin         %s (password not shown: it could not be checked now, e.g. logins are paused after failed attempts)\n", creds.AdminEmail)
	default:
		fmt.Fprintf(d.out, "  admin         %s (password changed since it was generated; not shown)\n", creds.AdminEmail)
	}
	fmt.Fprintf(d.out, "  demo client   %s / %s\n", creds.DemoClientID, creds.DemoClientSecret)
	fmt.Fprintf(d.out, "  (kept in %s/dev-credentials.json)\n\n", devDir)
	return nil
}
