package ledger

import (
	"encoding/hex"
	"testing"
	"time"
)

// The canonical form is a stored commitment: every chain written so far
// verifies only while these bytes hash exactly as they did. A change to
// canon or computeHash that alters a single byte fails here.
func TestHash_CanonicalFormIsStable(t *testing.T) {
	tx := Transaction{ID: "01JEXAMPLE0000000000000000", UserID: "5f0c6d3e-1b7a-4c1e-9a55-0d4bb0c1a001", Seq: 42,
		Kind: KindSpend, Direction: Debit, Amount: 1234, Reference: "order-7", Description: "API usage ✓",
		Reason: "", RefundOf: "", BalanceAfter: -99, Actor: Actor{Type: ActorClient, ID: "svc"}, RequestID: "req-1",
		CreatedAt: time.Date(2026, 12, 3, 22, 50, 1, 123456000, time.UTC)}
	tx.accountID = 1000
	tx.fingerprint = []byte{1, 2, 3}
	tx.prevHash = genesisHash
	o := &op{Posting: Posting{Amount: 1234, Reference: "order-7", Description: "API usage ✓"}, kind: KindSpend, direction: Debit, reason: "r", refundOf: "x"}
	withClient := tx
	withClient.ClientID = "svc"
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"v1", computeHash(&tx), "d41bc5b46a0d9a6d7913a88cfb9fe9ecc20ea34f67b03ad2997d11ddee973ea1"},
		{"v2 (client)", computeHash(&withClient), "752d7cdbd0f985c0491124400a55075e9dca139395102a9c5985e6f120cb3355"},
		{"fingerprint", o.fingerprint(), "1b191507b75f81bd4ddd2b7ef127b8f7490ba264ccfc6e0783ea42bc397d1745"},
	} {
		if hex.EncodeToString(c.got) != c.want {
			t.Errorf("%s: %x, want %s", c.name, c.got, c.want)
		}
	}
}

func BenchmarkComputeHash(b *testing.B) {
	tx := Transaction{ID: "01JEXAMPLE0000000000000000", UserID: "5f0c6d3e-1b7a-4c1e-9a55-0d4bb0c1a001", Seq: 42,
		Kind: KindSpend, Direction: Debit, Amount: 1234, Reference: "order-7", Description: "API usage",
		BalanceAfter: 99, Actor: Actor{Type: ActorClient, ID: "svc"}, RequestID: "req-1", ClientID: "svc",
		CreatedAt: time.Date(2026, 12, 3, 22, 50, 1, 123456000, time.UTC)}
	tx.accountID, tx.fingerprint, tx.prevHash = 1000, genesisHash, genesisHash
	b.ReportAllocs()
	for b.Loop() {
		computeHash(&tx)
	}
}
