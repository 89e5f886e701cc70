package main

import "github.com/spf13/cobra"

// Commands whose packages are still landing; each gets its own file when wired.
func (c *cli) clientCmd() *cobra.Command {
	return &cobra.Command{Use: "client", Short: "Manage OAuth clients", Hidden: true}
}
func (c *cli) keysCmd() *cobra.Command {
	return &cobra.Command{Use: "keys", Short: "Manage signing keys", Hidden: true}
}
func (c *cli) ledgerCmd() *cobra.Command {
	return &cobra.Command{Use: "ledger", Short: "Credit ledger tools", Hidden: true}
}
