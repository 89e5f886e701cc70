package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/authd/authd/internal/audit"
	"github.com/authd/authd/storage"
)

// Kind is the kind of a ledger transaction.
type Kind string

// Transaction kinds.
const (
	KindGrant  Kind = "grant"  // issuance → user
	KindSpend  Kind = "spend"  // user → revenue
	KindRefund Kind = "refund" // revenue → user, against one spend
	KindAdjust Kind = "adjust" // admin correction, either way, with a reason
)

// ParseKind returns the Kind named s, or false.
func ParseKind(s string) (Kind, bool) {
	switch k := Kind(s); k {
	case KindGrant, KindSpend, KindRefund, KindAdjust:
		return k, true
	}
	return "", false
}

// Direction says which way a transaction moved credits for the user.
type Direction string

// Directions.
const (
	Credit Direction = "credit"
	Debit  Direction = "debit"
)

// System account ids, fixed by migration 0007.
const (
	issuanceAccount int64 = 1
	revenueAccount  int64 = 2
)

// Limits on request fields.
const (
	MaxReferenceLen   = 128
	MaxDescriptionLen = 1000
	MaxReasonLen      = 1000
)

// Actor types recorded on transactions (the audit package's names).
const (
	ActorUser   = audit.ActorUser
	ActorClient = audit.ActorClient
	ActorAdmin  = audit.ActorAdmin
	ActorSystem = audit.ActorSystem
)

// Actor is who asked for a transaction: a user acting for themself, a
// service client, an administrator, or the system.
type Actor struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Origin is where a posting came from, for the transaction and its audit event.
type Origin struct {
	Actor Actor
	// ClientID is the OAuth client the request came through: the app of a
	// user's token, the service of a client's token. Recorded on the
	// transaction; a capped charge counts against it.
	ClientID  string
	RequestID string
	IP        string
	UserAgent string
}

// Transaction is one recorded posting as clients see it. Amount is always
// positive; Direction says whether it credited or debited the user.
type Transaction struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	Kind         Kind      `json:"kind"`
	Direction    Direction `json:"direction"`
	Amount       int64     `json:"amount"`
	Reference    string    `json:"reference"`
	Description  string    `json:"description"`
	Reason       string    `json:"reason,omitempty"`
	RefundOf     string    `json:"refund_of,omitempty"`
	BalanceAfter int64     `json:"balance_after"`
	Actor        Actor     `json:"actor"`
	ClientID     string    `json:"client_id,omitempty"` // the client the request came through
	RequestID    string    `json:"request_id,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	// Seq is the transaction's position in its account's chain, from 1.
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"` // hex SHA-256, see hash.go

	accountID   int64
	fingerprint []byte
	prevHash    []byte
	hash        []byte
}

// Result is the outcome of a posting. Replayed is true when the reference
// had already been used with the same request, and Transaction is that
// original transaction (no money moved this time).
type Result struct {
	Transaction Transaction
	Replayed    bool
	// Balance is the user's balance when the posting committed (for a replay,
	// the current balance, which later postings may have moved).
	Balance int64
}

// Errors returned by the ledger (possibly wrapped; test with errors.Is / As).
var (
	ErrUserNotFound        = errors.New("ledger: user not found")
	ErrInsufficientCredits = errors.New("ledger: insufficient credits")
	ErrReferenceConflict   = errors.New("ledger: reference already used for a different request")
	ErrSpendNotFound       = errors.New("ledger: no such spend for this user")
	ErrRefundExceedsSpend  = errors.New("ledger: refund exceeds what is left of the spend")
	ErrBalanceOverflow     = errors.New("ledger: balance would exceed the largest int64")
	ErrTransactionNotFound = errors.New("ledger: transaction not found")
)

// InsufficientCreditsError is ErrInsufficientCredits with the balance seen
// under the account lock.
type InsufficientCreditsError struct {
	Balance int64
	Amount  int64
}

func (e *InsufficientCreditsError) Error() string {
	return fmt.Sprintf("ledger: insufficient credits: balance %d, requested %d", e.Balance, e.Amount)
}

// Is makes errors.Is(err, ErrInsufficientCredits) true.
func (e *InsufficientCreditsError) Is(target error) bool { return target == ErrInsufficientCredits }

// RefundExceedsError is ErrRefundExceedsSpend with what was left to refund.
type RefundExceedsError struct {
	Remaining int64
	Amount    int64
}

func (e *RefundExceedsError) Error() string {
	return fmt.Sprintf("ledger: refund of %d exceeds the %d left of the spend", e.Amount, e.Remaining)
}

// Is makes errors.Is(err, ErrRefundExceedsSpend) true.
func (e *RefundExceedsError) Is(target error) bool { return target == ErrRefundExceedsSpend }

// ValidationError is a request field the ledger refuses; nothing was written.
type ValidationError struct {
	Field  string
	Detail string
}

func (e *ValidationError) Error() string { return "ledger: invalid " + e.Field + ": " + e.Detail }

// Ledger posts and reads credit transactions. It is safe for concurrent use.
type Ledger struct {
	pool  *pgxpool.Pool
	log   *zap.Logger
	batch batcher // group commit of grants, spends and adjustments (batch.go)
}

// New returns a Ledger over pool. log may be nil.
func New(pool *pgxpool.Pool, log *zap.Logger) *Ledger {
	if log == nil {
		log = zap.NewNop()
	}
	return &Ledger{pool: pool, log: log, batch: batcher{maxBatch: defaultMaxBatch, maxInFlight: defaultMaxInFlight}}
}

// Balance returns the user's balance. Errors: ErrUserNotFound.
func (l *Ledger) Balance(ctx context.Context, userID string) (int64, error) {
	userID, ok := normUserID(userID)
	if !ok {
		return 0, ErrUserNotFound
	}
	var bal int64
	err := l.pool.QueryRow(ctx, `SELECT balance FROM ledger_accounts WHERE user_id = $1`, userID).Scan(&bal)
	if errors.Is(err, pgx.ErrNoRows) {
		// An account is created with its user; none means no such user, or a
		// user that predates the trigger, whose balance is 0.
		ok, err := userExists(ctx, l.pool, userID)
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, ErrUserNotFound
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: balance: %w", err)
	}
	return bal, nil
}

func userExists(ctx context.Context, q storage.Querier, userID string) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, userID).Scan(&ok); err != nil {
		return false, fmt.Errorf("ledger: look up user: %w", err)
	}
	return ok, nil
}

// createAccount creates the user's account if the user has none (one
// predating the trigger of migration 0007). Errors: ErrUserNotFound.
func createAccount(ctx context.Context, tx pgx.Tx, userID string) error {
	ok, err := userExists(ctx, tx, userID)
	if err != nil {
		return err
	}
	if !ok {
		return ErrUserNotFound
	}
	if _, err := tx.Exec(ctx, `INSERT INTO ledger_accounts (kind, user_id, balance) VALUES ('user', $1, 0)
		ON CONFLICT (user_id) DO NOTHING`, userID); err != nil {
		return fmt.Errorf("ledger: create account: %w", err)
	}
	return nil
}

// normUserID returns id in Postgres' canonical (lower-case) form, or false if
// id is not a hyphenated UUID, so that a malformed path id is a 404 rather
// than a database error, and hashes always see one spelling.
func normUserID(id string) (string, bool) {
	if !validUUID(id) {
		return "", false
	}
	return strings.ToLower(id), true
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// newID returns a time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix
// milliseconds, then 74 random bits. Ordered ids land on the rightmost leaf
// of ledger_transactions' primary key and of ledger_entries' transaction
// index; random (version 4) ids touched a random leaf per posting, and after
// every checkpoint each first touch of a leaf writes a full 8 KiB page image
// to the WAL. The time in the id is no secret: created_at is public too.
func newID() string { return newIDAt(time.Now().UnixMilli()) }

func newIDAt(unixMilli int64) string {
	var b [16]byte
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand documents it)
	ms := uint64(unixMilli)
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
