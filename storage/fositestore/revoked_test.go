package fositestore_test

import (
	"context"
	"testing"
	"time"

	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/fositetest"
)

// RevokedSince is what answer caches (oauth's introspection cache) rely on
// to never serve a token across a revocation made on this replica.
func TestStore_RevokedSince(t *testing.T) {
	st := newStore(t, fositestore.Options{})
	ctx := context.Background()
	client := fositetest.MustCreateClient(t, st, "client")
	now := time.Now().UTC()
	req := fositetest.NewRequest(client, fositetest.NewSession("alice", now), now)
	sig := fositetest.RandomString()
	if err := st.CreateAccessTokenSession(ctx, sig, req); err != nil {
		t.Fatal(err)
	}
	keys := fositestore.TokenKeys{RequestID: req.ID, Subject: "alice", ClientID: "client", Signature: sig}

	t.Run("NothingRevoked", func(t *testing.T) {
		if st.RevokedSince(keys, time.Now()) {
			t.Fatal("reported revoked before any revocation")
		}
	})
	t.Run("InTransactionOnlyAfterItEnds", func(t *testing.T) {
		before := time.Now()
		txCtx, err := st.BeginTX(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeAccessToken(txCtx, req.ID); err != nil {
			t.Fatal(err)
		}
		readDuringTx := time.Now()
		if st.RevokedSince(keys, before) {
			t.Fatal("announced before commit")
		}
		if err := st.Commit(txCtx); err != nil {
			t.Fatal(err)
		}
		// An answer read while the transaction was open must be dropped:
		// the revocation is stamped after the commit.
		if !st.RevokedSince(keys, readDuringTx) {
			t.Fatal("an answer read before the commit survives the revocation")
		}
		if st.RevokedSince(keys, time.Now().Add(time.Millisecond)) {
			t.Fatal("an answer read after the revocation is dropped too")
		}
	})
	for _, tc := range []struct {
		name   string
		keys   fositestore.TokenKeys
		revoke func() error
	}{
		{"BySubject", fositestore.TokenKeys{Subject: "alice"}, func() error { return st.RevokeSubject(ctx, "alice") }},
		{"ByClient", fositestore.TokenKeys{ClientID: "client"}, func() error { return st.RevokeClientTokens(ctx, "client") }},
		{"BySignature", fositestore.TokenKeys{Signature: sig}, func() error { return st.DeleteAccessTokenSession(ctx, sig) }},
		{"ByFamilyRefresh", fositestore.TokenKeys{RequestID: req.ID}, func() error { return st.RevokeRefreshToken(ctx, req.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			if err := tc.revoke(); err != nil {
				t.Fatal(err)
			}
			if !st.RevokedSince(tc.keys, before) {
				t.Fatal("revocation not reported")
			}
		})
	}
}
