// Command authd is the authd server and its administration CLI. It only
// wires the packages together; behaviour lives in oauth, accounts, ledger and
// storage.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/authd/authd/internal/config"
)

// version is set by the build (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authd:", err)
		os.Exit(1)
	}
}

// cli holds what every command shares.
type cli struct {
	stdout, stderr io.Writer
	output         string // text | json
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "authd",
		Short:         "OAuth 2.0 / OpenID Connect server with accounts, roles and credits",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&c.output, "output", "text", "output format: text or json")
	root.AddCommand(
		c.serveCmd(), c.devCmd(), c.migrateCmd(), c.versionCmd(),
		c.userCmd(), c.roleCmd(), c.clientCmd(), c.keysCmd(), c.ledgerCmd(), c.creditsCmd(),
		c.providerCmd(),
	)
	return root
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.print(map[string]string{"version": version}, "authd "+version)
		},
	}
}

// loadConfig reads the configuration every command shares.
func loadConfig() (*config.Config, error) { return config.Load() }

// print writes v as JSON with --output json, else the text form.
func (c *cli) print(v any, text string) error {
	if c.output == "json" {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	if c.output != "text" {
		return fmt.Errorf("--output must be text or json, got %q", c.output)
	}
	_, err := fmt.Fprintln(c.stdout, text)
	return err
}

// textTable is the text form of a listing: the tab-separated header and the
// lines rows writes, in aligned columns, without the final newline.
func textTable(header string, rows func(tw io.Writer)) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	tw.Flush()
	return strings.TrimRight(b.String(), "\n")
}
