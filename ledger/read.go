package ledger

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/authd/authd/storage"
)

// Lock and read: the first step of every posting transaction. It locks the
// accounts the postings move and reads, in the same round trip, all that
// decide needs into a book. Each statement of the pipeline takes its own
// snapshot (READ COMMITTED) when it starts, which is after the locks were
// granted: every earlier posting of these accounts has committed and is
// visible to the reads.

// lockOne locks and reads for o alone (the single path), creating the
// user's account first if it has none. Errors: ErrUserNotFound.
func lockOne(ctx context.Context, tx pgx.Tx, o *op) (*book, error) {
	b := newBook()
	rb := &pgx.Batch{}
	rb.Queue(`SELECT id, user_id::text, balance, head_seq FROM ledger_accounts WHERE user_id = $1 FOR UPDATE`, o.UserID).
		Query(b.scanAccounts)
	rb.Queue(`SELECT a.id, t.hash FROM ledger_transactions t JOIN ledger_accounts a ON a.id = t.account_id AND t.seq = a.head_seq
		WHERE a.user_id = $1`, o.UserID).Query(b.scanHeads)
	rb.Queue(`SELECT `+txColumns+` FROM ledger_transactions t JOIN ledger_accounts a ON a.id = t.account_id
		WHERE a.user_id = $1 AND t.reference = $2`, o.UserID, o.Reference).Query(b.scanRefs)
	b.queueSpendsAndCharges(rb, []*op{o})
	rb.Queue(`SELECT clock_timestamp()`).QueryRow(b.scanClock)
	if err := tx.SendBatch(ctx, rb).Close(); err != nil {
		return nil, fmt.Errorf("ledger: lock account: %w", err)
	}
	if b.accounts[o.UserID] == nil {
		// No account yet: create it (or report the missing user), then read
		// again under its lock, as another posting may have created the
		// account and committed to it while we waited.
		if err := createAccount(ctx, tx, o.UserID); err != nil {
			return nil, err
		}
		return lockOne(ctx, tx, o)
	}
	return b, b.checkHeads()
}

// lockGroup locks and reads for the postings of one group commit. Users
// without an account row are left out of the book (decide answers solo).
func lockGroup(ctx context.Context, tx pgx.Tx, ops []*op) (*book, error) {
	users := make([]string, 0, len(ops))
	refs := make([]any, 0, 2*len(ops))
	for _, o := range ops {
		if !slices.Contains(users, o.UserID) {
			users = append(users, o.UserID)
		}
		refs = append(refs, o.UserID, o.Reference)
	}
	b := newBook()
	rb := &pgx.Batch{}
	// Every statement of a batch reaches its rows by key. Once ANALYZE has
	// seen how small ledger_accounts is, the planner prefers sequential scans
	// (and hash joins over them) for the ANY/VALUES lists, and each one then
	// wades through the hot account's row versions: measured, hot-account
	// spends fell from ~3,400/s to ~1,400/s and Postgres' CPU per spend rose
	// 4x after an ANALYZE, which autovacuum runs on its own. Index paths
	// only, for this transaction alone.
	rb.Queue(`SET LOCAL enable_seqscan = off`)
	rb.Queue(`SET LOCAL enable_hashjoin = off`)
	// In id order, so that two batches cannot deadlock.
	rb.Queue(`SELECT id, user_id::text, balance, head_seq FROM ledger_accounts
		WHERE user_id = ANY($1::uuid[]) ORDER BY id FOR UPDATE`, users).Query(b.scanAccounts)
	// Each lookup is a LATERAL … LIMIT 1 (the key is unique anyway) so that
	// the planner probes the unique index per account instead of hashing a
	// hot account's whole history.
	rb.Queue(`SELECT a.id, t.hash FROM ledger_accounts a
		CROSS JOIN LATERAL (SELECT t.hash FROM ledger_transactions t
			WHERE t.account_id = a.id AND t.seq = a.head_seq LIMIT 1) t
		WHERE a.user_id = ANY($1::uuid[])`, users).Query(b.scanHeads)
	rb.Queue(`SELECT `+txColumns+` FROM (VALUES `+storage.Values(len(ops), 2, "uuid", "text")+`) r(user_id, reference)
		JOIN ledger_accounts a ON a.user_id = r.user_id
		CROSS JOIN LATERAL (SELECT * FROM ledger_transactions t
			WHERE t.account_id = a.id AND t.reference = r.reference LIMIT 1) t`, refs...).Query(b.scanRefs)
	b.queueSpendsAndCharges(rb, ops)
	rb.Queue(`SELECT clock_timestamp()`).QueryRow(b.scanClock)
	if err := tx.SendBatch(ctx, rb).Close(); err != nil {
		return nil, fmt.Errorf("ledger: lock accounts: %w", err)
	}
	return b, b.checkHeads()
}

// queueSpendsAndCharges queues the reads only some postings need: what is
// left of the spends they refund, and their clients' charges today where a
// daily cap applies. They go after the locks and before the clock (see
// dayStartSQL).
func (b *book) queueSpendsAndCharges(rb *pgx.Batch, ops []*op) {
	var spends []string
	var pairs []any
	seen := map[[2]string]bool{}
	for _, o := range ops {
		if o.kind == KindRefund && !slices.Contains(spends, o.refundOf) {
			spends = append(spends, o.refundOf)
		}
		if k := [2]string{o.UserID, o.Origin.ClientID}; o.caps.PerUserPerDay > 0 && !seen[k] {
			seen[k] = true
			pairs = append(pairs, k[0], k[1])
		}
	}
	if len(spends) > 0 {
		rb.Queue(`SELECT s.id::text, s.account_id,
				s.amount - COALESCE((SELECT sum(r.amount) FROM ledger_transactions r WHERE r.refund_of = s.id), 0)
			FROM ledger_transactions s WHERE s.id = ANY($1::uuid[]) AND s.kind = 'spend'`, spends).Query(b.scanSpends)
	}
	if len(pairs) > 0 {
		rb.Queue(fmt.Sprintf(chargedTodaySQL, storage.Values(len(pairs)/2, 2, "uuid", "text")), pairs...).Query(b.scanCharged)
	}
}

// scanAccounts takes the locked accounts: id, user_id, balance, head_seq.
func (b *book) scanAccounts(rows pgx.Rows) error {
	for rows.Next() {
		a := &lockedAccount{}
		if err := rows.Scan(&a.id, &a.userID, &a.balance, &a.headSeq); err != nil {
			return fmt.Errorf("ledger: lock accounts: %w", err)
		}
		a.lockedBalance, a.lockedSeq = a.balance, a.headSeq
		b.accounts[a.userID], b.byID[a.id] = a, a
	}
	return rows.Err()
}

// scanHeads takes each account's chain head: account id, hash.
func (b *book) scanHeads(rows pgx.Rows) error {
	for rows.Next() {
		var id int64
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			return fmt.Errorf("ledger: read chain heads: %w", err)
		}
		if a := b.byID[id]; a != nil {
			a.head = h
		}
	}
	return rows.Err()
}

// scanRefs takes the transactions already holding the postings' references.
func (b *book) scanRefs(rows pgx.Rows) error {
	for rows.Next() {
		t, err := scanTransaction(rows, "")
		if err != nil {
			return fmt.Errorf("ledger: look up references: %w", err)
		}
		if a := b.byID[t.accountID]; a != nil {
			t.UserID = a.userID
		}
		b.refs[refKey{t.accountID, t.Reference}] = t
	}
	return rows.Err()
}

// scanSpends takes what is left of each refunded spend: id, account, remaining.
func (b *book) scanSpends(rows pgx.Rows) error {
	for rows.Next() {
		var id string
		s := &spendLeft{}
		if err := rows.Scan(&id, &s.account, &s.remaining); err != nil {
			return fmt.Errorf("ledger: read spends: %w", err)
		}
		b.spends[id] = s
	}
	return rows.Err()
}

// scanCharged takes the clients' charges today: account, client, total.
func (b *book) scanCharged(rows pgx.Rows) error {
	for rows.Next() {
		var k chargeKey
		var total int64
		if err := rows.Scan(&k.account, &k.client, &total); err != nil {
			return fmt.Errorf("ledger: read charges today: %w", err)
		}
		b.charged[k] = total
	}
	return rows.Err()
}

func (b *book) scanClock(row pgx.Row) error {
	if err := row.Scan(&b.now); err != nil {
		return fmt.Errorf("ledger: read clock: %w", err)
	}
	b.now = b.now.UTC()
	return nil
}

// checkHeads gives empty accounts the genesis hash as their head, and
// refuses an account whose head transaction was not found.
func (b *book) checkHeads() error {
	for _, a := range b.byID {
		switch {
		case a.headSeq == 0:
			a.head = genesisHash
		case len(a.head) != len(genesisHash):
			return fmt.Errorf("ledger: account %d: chain head seq %d has no hash", a.id, a.headSeq)
		}
	}
	return nil
}
