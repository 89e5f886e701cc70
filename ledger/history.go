package ledger

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// txColumns are the columns scanTransaction reads, from alias t.
const txColumns = `t.id::text, t.account_id, t.seq, t.kind, t.direction, t.amount, t.reference, t.description,
	t.reason, COALESCE(t.refund_of::text, ''), t.balance_after, t.actor_type, t.actor_id, t.client_id, t.request_id,
	t.created_at, t.fingerprint, t.prev_hash, t.hash`

func scanTransaction(row pgx.Row, userID string) (*Transaction, error) {
	t := &Transaction{UserID: userID}
	if err := scanTransactionAnd(row, t); err != nil {
		return nil, err
	}
	t.Hash = fmt.Sprintf("%x", t.hash)
	return t, nil
}

// scanTransactionAnd scans txColumns into t, then the row's further columns
// into more.
func scanTransactionAnd(row pgx.Row, t *Transaction, more ...any) error {
	var kind, dir string
	dst := append([]any{&t.ID, &t.accountID, &t.Seq, &kind, &dir, &t.Amount, &t.Reference, &t.Description,
		&t.Reason, &t.RefundOf, &t.BalanceAfter, &t.Actor.Type, &t.Actor.ID, &t.ClientID, &t.RequestID,
		&t.CreatedAt, &t.fingerprint, &t.prevHash, &t.hash}, more...)
	if err := row.Scan(dst...); err != nil {
		return err
	}
	t.Kind, t.Direction = Kind(kind), Direction(dir)
	t.CreatedAt = t.CreatedAt.UTC()
	return nil
}

// Page limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Page selects one page of a user's history, newest first.
type Page struct {
	// Cursor is NextCursor of the previous page; "" for the first page.
	Cursor string
	// Limit is the page size; 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
	// Kind, if set, keeps only transactions of that kind.
	Kind Kind
}

// History is one page of transactions, newest first. NextCursor is nil on
// the last page.
type History struct {
	Items      []Transaction `json:"items"`
	NextCursor *string       `json:"next_cursor"`
}

// cursors are opaque to clients: base64url("v1:<seq>"). Paging by the
// account's chain position (not time, not a global id) is stable under
// concurrent inserts: a new transaction always gets a higher seq, so it can
// only appear before the first page, never inside a later one.
const cursorPrefix = "v1:"

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), cursorPrefix) {
		return 0, false
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(string(b), cursorPrefix), 10, 64)
	if err != nil || seq <= 0 {
		return 0, false
	}
	return seq, true
}

// List returns one page of the user's transactions, newest first.
// Errors: ErrUserNotFound, *ValidationError (cursor, limit, kind).
func (l *Ledger) List(ctx context.Context, userID string, p Page) (History, error) {
	userID, ok := normUserID(userID)
	if !ok {
		return History{}, ErrUserNotFound
	}
	before := maxInt64
	if p.Cursor != "" {
		if before, ok = decodeCursor(p.Cursor); !ok {
			return History{}, &ValidationError{Field: "cursor", Detail: "is not a cursor this server issued"}
		}
	}
	switch {
	case p.Limit == 0:
		p.Limit = DefaultPageSize
	case p.Limit < 0 || p.Limit > MaxPageSize:
		return History{}, &ValidationError{Field: "limit", Detail: fmt.Sprintf("must be between 1 and %d", MaxPageSize)}
	}
	if p.Kind != "" {
		if _, ok := ParseKind(string(p.Kind)); !ok {
			return History{}, &ValidationError{Field: "kind", Detail: "must be one of grant, spend, refund, adjust"}
		}
	}
	var acctID int64
	err := l.pool.QueryRow(ctx, `SELECT id FROM ledger_accounts WHERE user_id = $1`, userID).Scan(&acctID)
	if errors.Is(err, pgx.ErrNoRows) {
		ok, err := userExists(ctx, l.pool, userID)
		if err != nil {
			return History{}, err
		}
		if !ok {
			return History{}, ErrUserNotFound
		}
		return History{Items: []Transaction{}}, nil
	}
	if err != nil {
		return History{}, fmt.Errorf("ledger: list: %w", err)
	}
	rows, err := l.pool.Query(ctx, `SELECT `+txColumns+` FROM ledger_transactions t
		WHERE t.account_id = $1 AND t.seq < $2 AND ($3 = '' OR t.kind = $3)
		ORDER BY t.seq DESC LIMIT $4`, acctID, before, string(p.Kind), p.Limit+1)
	if err != nil {
		return History{}, fmt.Errorf("ledger: list: %w", err)
	}
	defer rows.Close()
	h := History{Items: make([]Transaction, 0, p.Limit)}
	for rows.Next() {
		t, err := scanTransaction(rows, userID)
		if err != nil {
			return History{}, fmt.Errorf("ledger: list: %w", err)
		}
		h.Items = append(h.Items, *t)
	}
	if err := rows.Err(); err != nil {
		return History{}, fmt.Errorf("ledger: list: %w", err)
	}
	if len(h.Items) > p.Limit {
		h.Items = h.Items[:p.Limit]
		c := encodeCursor(h.Items[p.Limit-1].Seq)
		h.NextCursor = &c
	}
	return h, nil
}

// Get returns one of the user's transactions by id.
// Errors: ErrUserNotFound, ErrTransactionNotFound.
func (l *Ledger) Get(ctx context.Context, userID, txID string) (Transaction, error) {
	userID, ok := normUserID(userID)
	if !ok {
		return Transaction{}, ErrUserNotFound
	}
	if !validUUID(txID) {
		return Transaction{}, ErrTransactionNotFound
	}
	t, err := scanTransaction(l.pool.QueryRow(ctx, `SELECT `+txColumns+` FROM ledger_transactions t
		JOIN ledger_accounts a ON a.id = t.account_id WHERE a.user_id = $1 AND t.id = $2`, userID, txID), userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Transaction{}, ErrTransactionNotFound
	}
	if err != nil {
		return Transaction{}, fmt.Errorf("ledger: get transaction: %w", err)
	}
	return *t, nil
}
