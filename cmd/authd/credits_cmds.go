package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/authd/authd/accounts"
	"github.com/authd/authd/ledger"
)

// withLedger runs fn with the ledger and the user ref names.
func withLedger(ctx context.Context, ref string, fn func(l *ledger.Ledger, u *accounts.User) error) error {
	return withAccounts(ctx, func(svc *accounts.Service, pool *pgxpool.Pool) error {
		u, err := findUser(ctx, svc, ref)
		if err != nil {
			return err
		}
		return fn(ledger.New(pool, zap.NewNop()), u)
	})
}

// creditsCmd is the CLI twin of the admin credit routes.
func (c *cli) creditsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "credits", Short: "Grant credits and inspect balances"}
	var reference, description string
	grant := &cobra.Command{Use: "grant EMAIL_OR_ID AMOUNT [--reference R] [--description D]",
		Short: "Grant credits to a user; the same --reference again changes nothing", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || amount <= 0 {
				return fmt.Errorf("AMOUNT must be a positive whole number of credits, got %q", args[1])
			}
			ref := reference
			if ref == "" {
				ref = newReference()
			}
			return withLedger(cmd.Context(), args[0], func(l *ledger.Ledger, u *accounts.User) error {
				res, err := l.Grant(cmd.Context(), ledger.Posting{UserID: u.ID, Amount: amount, Reference: ref,
					Description: description, Origin: ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorSystem, ID: "authd-cli"}}})
				if err != nil {
					return err
				}
				out := struct {
					ledger.Transaction
					Balance  int64 `json:"balance"`
					Replayed bool  `json:"replayed"`
				}{res.Transaction, res.Balance, res.Replayed}
				text := fmt.Sprintf("granted %d credits to %s (reference %s, transaction %s); balance %d", amount, u.Email, ref, res.Transaction.ID, res.Balance)
				if res.Replayed {
					text = fmt.Sprintf("reference %s was already granted (transaction %s); balance %d", ref, res.Transaction.ID, res.Balance)
				}
				return c.print(out, text)
			})
		}}
	grant.Flags().StringVar(&reference, "reference", "", "idempotency reference, unique per user (default: a new random one)")
	grant.Flags().StringVar(&description, "description", "", "why the credits were granted")

	balance := &cobra.Command{Use: "balance EMAIL_OR_ID", Short: "Show a user's balance", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withLedger(cmd.Context(), args[0], func(l *ledger.Ledger, u *accounts.User) error {
				b, err := l.Balance(cmd.Context(), u.ID)
				if err != nil {
					return err
				}
				return c.print(map[string]any{"user_id": u.ID, "balance": b}, fmt.Sprintf("%s has %d credits", u.Email, b))
			})
		}}

	var page ledger.Page
	var kind string
	history := &cobra.Command{Use: "history EMAIL_OR_ID [--limit N] [--cursor C] [--kind K]",
		Short: "List a user's transactions, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "" {
				k, ok := ledger.ParseKind(kind)
				if !ok {
					return fmt.Errorf("--kind %q: unknown transaction kind", kind)
				}
				page.Kind = k
			}
			return withLedger(cmd.Context(), args[0], func(l *ledger.Ledger, u *accounts.User) error {
				h, err := l.List(cmd.Context(), u.ID, page)
				if err != nil {
					return err
				}
				text := textTable("ID\tKIND\tAMOUNT\tBALANCE_AFTER\tREFERENCE\tCREATED", func(tw io.Writer) {
					for _, t := range h.Items {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.Kind, signed(t), t.BalanceAfter, t.Reference, t.CreatedAt.UTC().Format(time.RFC3339))
					}
				})
				if h.NextCursor != nil {
					text += fmt.Sprintf("\nmore: --cursor %s", *h.NextCursor)
				}
				return c.print(h, text)
			})
		}}
	history.Flags().IntVar(&page.Limit, "limit", 0, "page size")
	history.Flags().StringVar(&page.Cursor, "cursor", "", "continue a previous listing")
	history.Flags().StringVar(&kind, "kind", "", "only transactions of this kind (grant, spend, refund, adjust)")
	cmd.AddCommand(grant, balance, history)
	return cmd
}

// signed is a transaction's amount with its direction's sign.
func signed(t ledger.Transaction) string {
	if t.Direction == ledger.Debit {
		return "-" + strconv.FormatInt(t.Amount, 10)
	}
	return "+" + strconv.FormatInt(t.Amount, 10)
}

// newReference is a fresh idempotency reference for a grant made without one.
func newReference() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "cli-" + hex.EncodeToString(b)
}
