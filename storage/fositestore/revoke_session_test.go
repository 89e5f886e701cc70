package fositestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/fositetest"
	"github.com/authd/authd/storage/storagetest"
)

// Ending one browser session revokes the grants obtained through it and
// nothing else of the user's.
func TestStore_RevokeSessionTokens(t *testing.T) {
	st := fositestore.New(storagetest.NewDB(t).Pool, fositestore.Options{})
	ctx := context.Background()
	client := fositetest.MustCreateClient(t, st, "client")
	now := time.Now().UTC()
	mint := func(subject, browserSession string) (refreshSig, accessSig string) {
		sess := fositetest.NewSession(subject, now)
		sess.BrowserSessionID = browserSession
		req := fositetest.NewRequest(client, sess, now)
		refreshSig, accessSig = fositetest.RandomString(), fositetest.RandomString()
		if err := st.CreateAccessTokenSession(ctx, accessSig, req); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateRefreshTokenSession(ctx, refreshSig, accessSig, req); err != nil {
			t.Fatal(err)
		}
		return refreshSig, accessSig
	}
	endedRT, endedAT := mint("alice", "session-1")
	keptRT, keptAT := mint("alice", "session-2")
	otherRT, _ := mint("bob", "session-1") // same id, other user: untouched

	if err := st.RevokeSessionTokens(ctx, "alice", "session-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetRefreshTokenSession(ctx, endedRT, fositetest.EmptySession()); !errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("refresh token of the ended session: %v, want ErrInactiveToken", err)
	}
	if _, err := st.GetAccessTokenSession(ctx, endedAT, fositetest.EmptySession()); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("access token of the ended session: %v, want ErrNotFound", err)
	}
	for name, sig := range map[string]string{"other session": keptRT, "other user": otherRT} {
		if _, err := st.GetRefreshTokenSession(ctx, sig, fositetest.EmptySession()); err != nil {
			t.Fatalf("refresh token of %s was revoked: %v", name, err)
		}
	}
	if _, err := st.GetAccessTokenSession(ctx, keptAT, fositetest.EmptySession()); err != nil {
		t.Fatalf("access token of the other session was revoked: %v", err)
	}
}
