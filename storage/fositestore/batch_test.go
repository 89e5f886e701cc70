package fositestore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/ory/fosite"

	"github.com/authd/authd/storage/fositestore"
	"github.com/authd/authd/storage/fositetest"
	"github.com/authd/authd/storage/storagetest"
)

// createAccessConcurrently creates one access token per request at once,
// outside any transaction (the client_credentials path), and returns each
// call's error.
func createAccessConcurrently(st *fositestore.Store, sigs []string, reqs []*fosite.Request) []error {
	errs := make([]error, len(sigs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range sigs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = st.CreateAccessTokenSession(context.Background(), sigs[i], reqs[i])
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestStore_AccessTokensBatched(t *testing.T) {
	db := storagetest.NewDB(t)
	st := fositestore.New(db.Pool, fositestore.Options{})
	client := fositetest.MustCreateClient(t, st, "client")
	now := time.Now().UTC()
	const n = 200
	sigs, reqs := make([]string, n), make([]*fosite.Request, n)
	for i := range sigs {
		sigs[i], reqs[i] = fositetest.RandomString(), fositetest.NewRequest(client, fositetest.NewSession("svc", now), now)
	}
	for i, err := range createAccessConcurrently(st, sigs, reqs) {
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	// Every caller's row is committed and readable (introspectable) as its own.
	for i, sig := range sigs {
		got, err := st.GetAccessTokenSession(context.Background(), sig, fositetest.EmptySession())
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if got.GetID() != reqs[i].GetID() {
			t.Fatalf("row %d belongs to request %q, want %q", i, got.GetID(), reqs[i].GetID())
		}
	}
	// Rows written by one multi-row INSERT share its transaction id.
	var rows, txs int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT xmin::text) FROM oauth2_access`).Scan(&rows, &txs); err != nil {
		t.Fatal(err)
	}
	if rows != n || txs >= n {
		t.Fatalf("%d rows in %d transactions; want %d rows in fewer transactions", rows, txs, n)
	}
	t.Logf("%d tokens in %d INSERTs", rows, txs)
}

// A bad row fails its own request only, even when it shares a batch.
func TestStore_AccessTokenBatchBadRows(t *testing.T) {
	db := storagetest.NewDB(t)
	st := fositestore.New(db.Pool, fositestore.Options{})
	client := fositetest.MustCreateClient(t, st, "client")
	ghost := &fositestore.Client{ID: "no-such-client"} // FK violation
	ctx := context.Background()
	now := time.Now().UTC()
	const n = 200
	sigs, reqs := make([]string, n), make([]*fosite.Request, n)
	bad := map[int]string{}
	for i := range sigs {
		sigs[i], reqs[i] = fositetest.RandomString(), fositetest.NewRequest(client, fositetest.NewSession("svc", now), now)
		switch i % 20 {
		case 7: // a signature already taken
			prior := fositetest.NewRequest(client, fositetest.NewSession("svc", now), now)
			if err := st.CreateAccessTokenSession(ctx, sigs[i], prior); err != nil {
				t.Fatal(err)
			}
			bad[i] = prior.GetID()
		case 13:
			reqs[i] = fositetest.NewRequest(ghost, fositetest.NewSession("svc", now), now)
			bad[i] = ""
		}
	}
	errs := createAccessConcurrently(st, sigs, reqs)
	for i, err := range errs {
		got, getErr := st.GetAccessTokenSession(ctx, sigs[i], nil)
		prior, isBad := bad[i]
		switch {
		case isBad && err == nil:
			t.Errorf("row %d: bad row accepted", i)
		case isBad && prior != "" && (getErr != nil || got.GetID() != prior):
			t.Errorf("row %d: the existing token changed: %v %v", i, got, getErr)
		case isBad && prior == "" && getErr == nil:
			t.Errorf("row %d: a token for a missing client was stored", i)
		case !isBad && err != nil:
			t.Errorf("row %d: good row failed: %v", i, err)
		case !isBad && (getErr != nil || got.GetID() != reqs[i].GetID()):
			t.Errorf("row %d: good row not stored as its own: %v %v", i, got, getErr)
		}
	}
}

// With no database to answer, every caller gets an error, none hangs.
func TestStore_AccessTokenBatchNoDatabase(t *testing.T) {
	db := storagetest.NewDB(t)
	pool, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	st := fositestore.New(pool, fositestore.Options{})
	client := fositetest.MustCreateClient(t, st, "client")
	pool.Close()
	now := time.Now().UTC()
	const n = 100
	sigs, reqs := make([]string, n), make([]*fosite.Request, n)
	for i := range sigs {
		sigs[i], reqs[i] = fositetest.RandomString(), fositetest.NewRequest(client, fositetest.NewSession("svc", now), now)
	}
	done := make(chan []error, 1)
	go func() { done <- createAccessConcurrently(st, sigs, reqs) }()
	select {
	case errs := <-done:
		for i, err := range errs {
			if err == nil {
				t.Fatalf("create %d succeeded on a closed pool", i)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("creates still waiting 30s after the database went away")
	}
}
