package ledger

// Sealed is a transaction's chain fields as stored: what a bulk load (the
// bench's production-size world) writes beside the record's own columns so
// that Verify accepts history it did not post through the ledger.
type Sealed struct {
	Fingerprint []byte // ledger_transactions.fingerprint
	PrevHash    []byte // ledger_transactions.prev_hash
	Hash        []byte // ledger_transactions.hash
}

// Genesis returns the prev_hash of an account's first transaction.
func Genesis() []byte { return append([]byte(nil), genesisHash...) }

// Seal computes t's fingerprint and its hash chained to prevHash (the hash
// of the account's previous transaction, or Genesis), with the same
// canonical forms as a posting, so the ledger's rules for both stay here.
// t must be complete: ID, UserID, Seq, Kind, Direction, Amount, Reference,
// Description, Reason, RefundOf, BalanceAfter, Actor, ClientID, RequestID
// and CreatedAt (stored at microsecond precision). accountID is the ledger
// account of t.UserID.
func Seal(t Transaction, accountID int64, prevHash []byte) Sealed {
	o := op{Posting: Posting{Amount: t.Amount, Reference: t.Reference, Description: t.Description},
		kind: t.Kind, direction: t.Direction, refundOf: t.RefundOf, reason: t.Reason}
	t.accountID = accountID
	t.fingerprint = o.fingerprint()
	t.prevHash = prevHash
	return Sealed{Fingerprint: t.fingerprint, PrevHash: prevHash, Hash: computeHash(&t)}
}

// NewIDAt returns a time-ordered transaction id as postings get, for a
// transaction recorded at ms (Unix milliseconds) with random low bits.
func NewIDAt(ms int64) string { return newIDAt(ms) }
