package ledger_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/authd/authd/ledger"
	"github.com/authd/authd/storage/storagetest"
)

// Seal must give what a posting stored, for every shape a bulk load writes
// (grants without a client, a service's charges with one).
func TestSeal_MatchesPostings(t *testing.T) {
	ctx := context.Background()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	g := MustGrant(t, l, u, 100)
	res, err := l.Spend(ctx, ledger.Posting{UserID: u, Amount: 7, Reference: ref("charge"), Description: "API usage",
		Origin: ledger.Origin{Actor: ledger.Actor{Type: ledger.ActorClient, ID: "svc"}, ClientID: "svc", RequestID: "req-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var acct int64
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM ledger_accounts WHERE user_id = $1`, u).Scan(&acct); err != nil {
		t.Fatal(err)
	}
	prev := ledger.Genesis()
	for _, tx := range []ledger.Transaction{g, res.Transaction} {
		var fp, prevHash, hash []byte
		if err := db.Pool.QueryRow(ctx, `SELECT fingerprint, prev_hash, hash FROM ledger_transactions WHERE id = $1`, tx.ID).
			Scan(&fp, &prevHash, &hash); err != nil {
			t.Fatal(err)
		}
		s := ledger.Seal(tx, acct, prev)
		if !bytes.Equal(s.Fingerprint, fp) || !bytes.Equal(s.PrevHash, prevHash) || !bytes.Equal(s.Hash, hash) {
			t.Fatalf("seq %d: Seal gave fingerprint %x hash %x, the posting stored %x %x", tx.Seq, s.Fingerprint, s.Hash, fp, hash)
		}
		if hex.EncodeToString(s.Hash) != tx.Hash {
			t.Fatalf("seq %d: hash %x, transaction says %s", tx.Seq, s.Hash, tx.Hash)
		}
		prev = s.Hash
	}
}

// History written in bulk with Seal verifies clean, and Verify still finds
// a loaded record altered afterwards.
func TestSeal_BulkHistoryVerifies(t *testing.T) {
	ctx := context.Background()
	db := storagetest.NewDB(t)
	l := ledger.New(db.Pool, nil)
	u := MustCreateUser(t, db.Pool)
	var acct int64
	if err := db.Pool.QueryRow(ctx, `SELECT id FROM ledger_accounts WHERE user_id = $1`, u).Scan(&acct); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-48 * time.Hour).Truncate(time.Microsecond)
	prev, bal := ledger.Genesis(), int64(0)
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 5; seq++ {
		t0 := ledger.Transaction{UserID: u, Seq: seq, Kind: ledger.KindSpend, Direction: ledger.Debit, Amount: seq,
			Reference: ref("bulk"), Description: "API usage", Actor: ledger.Actor{Type: ledger.ActorClient, ID: "svc"},
			ClientID: "svc", RequestID: "r", CreatedAt: at.Add(time.Duration(seq) * time.Minute)}
		if seq == 1 {
			t0.Kind, t0.Direction, t0.Amount, t0.ClientID = ledger.KindGrant, ledger.Credit, 1000, ""
			t0.Actor = ledger.Actor{Type: ledger.ActorAdmin, ID: "admin"}
		}
		signed := t0.Amount
		if t0.Direction == ledger.Debit {
			signed = -signed
		}
		bal += signed
		t0.BalanceAfter = bal
		t0.ID = ledger.NewIDAt(t0.CreatedAt.UnixMilli())
		s := ledger.Seal(t0, acct, prev)
		prev = s.Hash
		system := int64(1)
		if t0.Kind == ledger.KindSpend {
			system = 2
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_transactions (id, account_id, seq, kind, direction, amount, reference,
				description, balance_after, actor_type, actor_id, request_id, fingerprint, prev_hash, hash, created_at, client_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
			t0.ID, acct, t0.Seq, string(t0.Kind), string(t0.Direction), t0.Amount, t0.Reference, t0.Description, t0.BalanceAfter,
			t0.Actor.Type, t0.Actor.ID, t0.RequestID, s.Fingerprint, s.PrevHash, s.Hash, t0.CreatedAt, t0.ClientID); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ledger_entries (transaction_id, account_id, amount) VALUES ($1, $2, $3), ($1, $4, $5)`,
			t0.ID, acct, signed, system, -signed); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE ledger_accounts SET balance = $2, head_seq = 5 WHERE id = $1`, acct, bal); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	MustVerifyClean(t, l)
	// Postings continue the loaded chain.
	MustSpend(t, l, u, 1)
	MustVerifyClean(t, l)

	tamper(t, db.Pool, `UPDATE ledger_transactions SET description = 'edited' WHERE account_id = $1 AND seq = 3`, acct)
	rep := mustBroken(t, l)
	if p := rep.First(); p == nil || p.Check != "hash" || p.Seq != 3 {
		t.Fatalf("want a hash problem at seq 3, got %v", rep)
	}
}
