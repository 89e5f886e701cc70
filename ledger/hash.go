package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
)

// genesisHash is the prev_hash of the first transaction of every account.
var genesisHash = make([]byte, sha256.Size)

// Domain-separation tags: bump the version if the canonical form changes.
const (
	hashTag        = "authd-ledger-tx-v1"
	hashTagClient  = "authd-ledger-tx-v2" // v1 and the client id
	fingerprintTag = "authd-ledger-request-v1"
)

// canon collects length-prefixed fields, so no two field lists encode
// alike, into one buffer that is hashed once: a hash.Hash written field by
// field cost an allocation per field (this runs for every posting, and for
// every transaction `ledger verify` reads).
type canon []byte

func (c *canon) str(s string) {
	*c = binary.BigEndian.AppendUint32(*c, uint32(len(s)))
	*c = append(*c, s...)
}

func (c *canon) bytes(b []byte) {
	*c = binary.BigEndian.AppendUint32(*c, uint32(len(b)))
	*c = append(*c, b...)
}

func (c *canon) int(v int64) {
	var d [20]byte
	c.bytes(strconv.AppendInt(d[:0], v, 10))
}

func (c canon) sum() []byte {
	h := sha256.Sum256(c)
	return h[:]
}

// computeHash is SHA-256 over t's canonical fields and the previous hash of
// the same account. Every field a client or auditor relies on is covered;
// created_at is taken at microsecond precision, as Postgres stores it. The
// client id came later: a transaction without one hashes as before it, so
// the chains written then stay valid.
func computeHash(t *Transaction) []byte {
	c := make(canon, 0, 512)
	if t.ClientID == "" {
		c.str(hashTag)
	} else {
		c.str(hashTagClient)
	}
	c.str(t.ID)
	c.int(t.accountID)
	c.str(t.UserID)
	c.int(t.Seq)
	c.str(string(t.Kind))
	c.str(string(t.Direction))
	c.int(t.Amount)
	c.str(t.Reference)
	c.str(t.Description)
	c.str(t.Reason)
	c.str(t.RefundOf)
	c.int(t.BalanceAfter)
	c.str(t.Actor.Type)
	c.str(t.Actor.ID)
	c.str(t.RequestID)
	c.int(t.CreatedAt.UnixMicro())
	c.bytes(t.fingerprint)
	c.bytes(t.prevHash)
	if t.ClientID != "" {
		c.str(t.ClientID)
	}
	return c.sum()
}

// fingerprint identifies the body of a posting request: two requests with
// the same reference are "the same" exactly when their fingerprints match.
// The actor and request id are deliberately left out, so a retry through
// another replica or on behalf of the same user still replays.
func (o *op) fingerprint() []byte {
	c := make(canon, 0, 256)
	c.str(fingerprintTag)
	c.str(string(o.kind))
	c.str(string(o.direction))
	c.int(o.Amount)
	c.str(o.Reference)
	c.str(o.Description)
	c.str(o.reason)
	c.str(o.refundOf)
	return c.sum()
}
