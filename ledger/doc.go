// Package ledger owns authd's credit ledger: one account per user (created
// with the user by a trigger in migration 0007) and two system accounts,
// issuance and revenue; double-entry transactions (grant, spend, refund,
// adjust); idempotent references; paginated history; a per-account SHA-256
// hash chain; and Verify, which recomputes all of it.
//
// Flow of every posting (Ledger.Grant, Spend, Charge, Refund, Adjust), in
// one database transaction, in three steps:
//
//  1. lock and read (read.go): lock the user's account row (SELECT … FOR
//     UPDATE), which serialises all postings of one user and nothing else,
//     and read in the same round trip the transaction holding the posting's
//     reference, the chain head, what is left of a refunded spend, the
//     client's charges today (capped charges) and the database clock;
//  2. decide (decide.go, book.decide, the one home of the posting rule): a
//     reference used before replays (same request fingerprint,
//     Result.Replayed) or is ErrReferenceConflict; otherwise the posting must
//     fit its client's caps, what is left of the spend it refunds, the
//     balance (debits) and int64 (credits), and becomes a transaction chained
//     to the account's previous hash;
//  3. write (write.go) in one round trip: the account's new balance and head,
//     guarded by the balance and seq it was locked with and backed by CHECK
//     (balance >= 0); the transaction and its two entries (which a deferred
//     constraint trigger checks sum to zero); the audit event, refusals
//     included.
//
// Every posting goes through group commit (batch.go, postGrouped): postings
// that arrive while earlier ones are in the database share the next
// database transaction, which locks all their accounts in id order, decides
// each posting in arrival order with the same rule, and writes them with one
// statement per table. A posting alone in the queue is posted alone
// (postAlone), with the leaner reads of lockOne.
//
// The HTTP layer (Handler) maps principals to actors and errors to RFC 9457
// problems; it holds no ledger logic.
package ledger
