// Package ledger owns authd's credit ledger: one account per user (created
// with the user by a trigger in migration 0007) and two system accounts,
// issuance and revenue; double-entry transactions (grant, spend, refund,
// adjust); idempotent references; paginated history; a per-account SHA-256
// hash chain; and Verify, which recomputes all of it.
//
// Flow of every posting (Ledger.Grant, Spend, Refund, Adjust), in one
// database transaction:
//
//  1. lock the user's account row (SELECT … FOR UPDATE): this serialises all
//     postings of one user and nothing else, so contention stays local;
//  2. look the reference up: a previous transaction with the same request
//     fingerprint is returned as is (Result.Replayed), another fingerprint is
//     ErrReferenceConflict;
//  3. move the balance with a guarded UPDATE (balance >= amount for debits,
//     what is left of the spend for refunds), backed by CHECK (balance >= 0);
//  4. insert the transaction, chained to the account's previous hash, and its
//     two entries (which a deferred constraint trigger checks sum to zero);
//  5. record an audit event.
//
// Grants, spends and adjustments go through group commit (batch.go):
// postings that arrive while earlier ones are in the database share the next
// database transaction, which locks all their accounts in id order, decides
// each posting in arrival order exactly as above, writes them with one
// statement per table and commits once. Refunds take the single path.
//
// The HTTP layer (Handler) maps principals to actors and errors to RFC 9457
// problems; it holds no ledger logic.
package ledger
